"""Videos of what an agent did: the game at its own size with the actions drawn on it (a replay), and the
small observation GIF. `hakisa play --replay PATH` writes the first (hakisa.replay plays a checkpoint for
it); `hakisa play` on a window always writes the second (live_play.gif).

    with Replay("runs/x/replay.mp4", imap, fps=15) as rep:   # .mp4 (opencv, mp4v) or .gif
        rep.add(env.frame, action, reward, done)          # BGRA or RGB, any size (the first sets it)
    env = RecordingVecEnv(sim_envs, rep, episodes=1)      # a simulator's sub-env 0 filmed through render()

The drawing is the data viewer's (hakisa/data/view_web/view.js), so a replay and a recorded frame read
the same: held keys as yellow labels at the top left ("tap K" for a tap), a click as a filled disc at its
cell's centre inside the cell's outline (left magenta, right orange), a mouse move as a cyan ring, a relative
move as a label, the step's reward at the top right, and game over as a red border. A marker colour is no
gray, so on a game's pixels it is found by its colour (tests/test_replay.py does).
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import gymnasium as gym
import numpy as np

# RGB; the same as view.js's COLOR
COLORS = {"click_left": (255, 0, 255), "click_right": (255, 128, 0), "move": (0, 229, 255), "over": (255, 48, 48)}
KEY_COLOR, TEXT_COLOR, GOOD, BAD = (255, 224, 102), (255, 255, 255), (125, 255, 125), (255, 107, 107)
FULL = (0.0, 0.0, 1.0, 1.0)


def _label(img: np.ndarray, text: str, x: int, y: int, color, s: float = 1.0) -> int:
    """Text on a dark box at (x, y), its top left; returns the box's width."""
    import cv2

    scale, th = 0.45 * s, max(1, round(s))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    pad = max(2, round(3 * s))
    cv2.rectangle(img, (x, y), (x + w + 2 * pad, y + h + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(img, text, (x + pad, y + pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, color, th, cv2.LINE_AA)
    return w + 2 * pad


def cell_rect(imap, x: int, y: int, w: int, h: int, box=FULL) -> tuple[float, float, float, float]:
    """Mouse cell (x, y) on a w x h image showing `box` of the capture region (fractions; all of it unless
    the image is a crop): its centre and size in image pixels. The cells divide the capture region."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx = ((x + 0.5) / imap.x_bins - box[0]) / bw * w
    cy = ((y + 0.5) / imap.y_bins - box[1]) / bh * h
    return cx, cy, w / (bw * imap.x_bins), h / (bh * imap.y_bins)


def draw_action(img: np.ndarray, imap, action, *, box=FULL, reward: float = 0.0, done: bool = False) -> np.ndarray:
    """Draw `action` ([command, x, y]) and the step's reward / game over on an RGB uint8 [H, W, 3] image, in place."""
    import cv2

    h, w = img.shape[:2]
    s = max(0.6, min(2.0, w / 480))  # labels readable on a small observation and a large window alike
    cmd = imap.commands[int(action[0])]
    if cmd.kind in ("keys", "tap"):
        x = 4
        for k in cmd.keys:
            x += _label(img, f"tap {k}" if cmd.kind == "tap" else k, x, 4, KEY_COLOR, s) + 4
    elif cmd.kind in ("move", "click_left", "click_right"):
        # the label in white: the marker's colour stays the marker's alone
        _label(img, f"{cmd.name} ({int(action[1])}, {int(action[2])})", 4, 4, TEXT_COLOR, s)
        cx, cy, cw, ch = cell_rect(imap, int(action[1]), int(action[2]), w, h, box)
        color = COLORS[cmd.kind]
        cv2.rectangle(img, (round(cx - cw / 2), round(cy - ch / 2)), (round(cx + cw / 2), round(cy + ch / 2)),
                      color, 2)
        r = max(3, round(min(7 * s, cw / 3, ch / 3)))
        cv2.circle(img, (round(cx), round(cy)), r, color, 2 if cmd.kind == "move" else -1, cv2.LINE_AA)
    elif cmd.kind == "rel_move":
        _label(img, f"{cmd.name} bins ({int(action[1])}, {int(action[2])})", 4, 4, COLORS["move"], s)
    if reward:
        text = f"{reward:+g}"
        tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s, max(1, round(s)))[0][0]
        _label(img, text, w - tw - round(12 * s), 4, GOOD if reward > 0 else BAD, s)
    if done:
        cv2.rectangle(img, (2, 2), (w - 3, h - 3), COLORS["over"], 4)
        _label(img, "GAME OVER", w // 2 - round(40 * s), 4, COLORS["over"], s)
    return img


def to_rgb(frame: np.ndarray, bgra: bool) -> np.ndarray:
    """A grab (BGRA [H, W, 4]), an RGB render [H, W, 3], or gray [H, W] -> a fresh contiguous RGB uint8 image."""
    f = np.asarray(frame, np.uint8)
    if f.ndim == 2:
        return np.repeat(f[..., None], 3, 2)
    return np.ascontiguousarray(f[..., 2::-1] if bgra else f[..., :3])


class VideoWriter:
    """RGB frames of one size -> an MP4 (opencv's mp4v, written as they come) or a GIF (imageio)."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps, self.frames, self._w, self._size = Path(path), float(fps), 0, None, None
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"{self.path}: a replay is an .mp4 or a .gif")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        h, w = rgb.shape[:2]
        if self._w is None:
            self._size = (w, h)
            if self.path.suffix.lower() == ".gif":
                import imageio.v2 as imageio

                self._w = imageio.get_writer(self.path, mode="I", duration=1000 / self.fps, loop=0)
            else:
                # mp4v wants even sides: an odd one gets a black pixel row/column (the game keeps its size)
                self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (w + w % 2, h + h % 2))
                if not self._w.isOpened():
                    raise OSError(f"{self.path}: opencv cannot write mp4v here; ask for a .gif")
        if (w, h) != self._size:  # a window resized mid-episode: keep the video's size
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        if isinstance(self._w, cv2.VideoWriter):
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if w % 2 or h % 2:
                bgr = cv2.copyMakeBorder(bgr, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT)
            self._w.write(bgr)
        else:
            self._w.append_data(rgb)
        self.frames += 1

    def close(self) -> Path:
        if self._w is not None:
            self._w.release() if hasattr(self._w, "release") else self._w.close()
            self._w = None
        return self.path


class Replay:
    """The game at its own size with the agent's actions drawn, encoded on a thread of its own so that a live
    loop never waits on the encoder. On a live window (block=False) a frame that finds the queue full is dropped
    and counted (`dropped`): the agent's timing matters more than a complete video. A simulator waits (block)."""

    def __init__(self, path: str | Path, imap, fps: float, *, box=FULL, bgra: bool = True, queue_frames: int = 64,
                 block: bool = False):
        self.video, self.imap, self.box, self.bgra, self.dropped = VideoWriter(path, fps), imap, box, bgra, 0
        self.block = block
        self._q: queue.Queue = queue.Queue(queue_frames)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hakisa-replay", daemon=True)
        self._thread.start()

    def add(self, frame: np.ndarray, action, reward: float = 0.0, done: bool = False) -> None:
        """One step: the frame the action was chosen on, then the reward and game over that followed it."""
        try:
            self._q.put((np.array(frame, np.uint8), np.asarray(action).copy(), float(reward), bool(done)),
                        block=self.block)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            if self._error is not None:
                continue  # keep draining, so add() never blocks on a dead writer
            try:
                frame, action, reward, done = item
                self.video.write(draw_action(to_rgb(frame, self.bgra), self.imap, action, box=self.box,
                                             reward=reward, done=done))
            except BaseException as e:  # noqa: BLE001  (raised again in close(), on the caller's thread)
                self._error = e

    def close(self) -> dict:
        """Finish the file; {path, frames, dropped, size} (size: the video's [width, height])."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()
        self.video.close()
        if self._error is not None:
            raise self._error
        return {"path": str(self.video.path), "frames": self.video.frames, "dropped": self.dropped,
                "size": list(self.video._size) if self.video._size else None}

    def __enter__(self) -> "Replay":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def observation_gif(path: str | Path, frames: list[np.ndarray], actions: list, captions: list[str], imap,
                    fps: float, *, box=FULL, scale: int = 2, every: int = 2) -> Path:
    """What the agent saw (the newest preprocessed frame [C, h, w]), enlarged, its action drawn as on a replay,
    and a caption in a bar UNDER the frame (a bar over it hid the bottom of the screen, where a paddle is)."""
    import cv2

    video = VideoWriter(path, fps / every)
    for f, a, text in zip(frames[::every], actions[::every], captions[::every]):
        img = f[0] if f.shape[0] == 1 else f.transpose(1, 2, 0)
        img = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        img = draw_action(to_rgb(img, bgra=False), imap, a, box=box)
        bar = np.zeros((18, img.shape[1], 3), np.uint8)
        cv2.putText(bar, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        video.write(np.concatenate([img, bar]))
    return video.close()


def obs_box(crop, region_size) -> tuple[float, float, float, float]:
    """Where an observation lies in the capture region, as fractions (left, top, right, bottom), which is what
    the mouse bins divide: all of it unless the observation is a crop ([left, top, w, h] of the region, whose
    size is [w, h]) and the region's size is known."""
    if not crop or not region_size:
        return FULL
    left, top, w, h = crop
    rw, rh = region_size
    return (left / rw, top / rh, (left + w) / rw, (top + h) / rh)


class RecordingVecEnv(gym.vector.VectorWrapper):
    """A simulator's vector env whose sub-env 0 is filmed for its first `episodes` episodes: its render() (the
    game at the simulator's canvas size, RGB) before each step, with the action it was given drawn on it.
    The sim must be made with render_mode="rgb_array"."""

    def __init__(self, env, replay: Replay, episodes: int = 1):
        super().__init__(env)
        self.replay, self.left = replay, episodes
        self.obs_spec, self.input_map = env.obs_spec, env.input_map

    def step(self, actions):
        frame = None
        if self.left > 0:
            frame = self.env.render()
            frame = frame[0] if isinstance(frame, (tuple, list)) else frame
            if frame is None:
                raise ValueError("this simulator renders no frames (render_mode is not rgb_array)")
        obs, r, term, trunc, info = self.env.step(actions)
        if frame is not None:
            a = np.asarray(actions)[0]
            a = np.array([a, 0, 0]) if a.ndim == 0 else a  # a vector of commands (keyboard sims)
            self.replay.add(frame, a, float(np.asarray(r)[0]), bool(np.asarray(term)[0]))
            self.left -= bool(np.asarray(term)[0] or np.asarray(trunc)[0])
        return obs, r, term, trunc, info
