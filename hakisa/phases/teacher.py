"""`hakisa record`: the human teacher. Capture a live window at a fixed rate and log what the person pressed.

    hakisa record --window "Hakisa Duel" --map duel --fps 30 --out datasets/me
    hakisa record --region 12,76,640,360 --map duel --fps 30 --out datasets/me

Three threads, none of which waits for another:
  * pynput listeners (keyboard + mouse) log every event with its time into `InputState`;
  * the capture loop (this thread) grabs on a fixed clock, snapshots the input state, and turns it into
    the frame's action with `InputMap.encode` (an explicit noop when nothing is pressed). It never waits
    for input, and a tick it missed is counted as dropped instead of shifting the clock;
  * a writer thread feeds the EpisodeWriter, so chunk compression and fsyncs never stall the capture.
Episodes end when the done detector fires (the duel page's result band) or on the split hotkey.
Hotkeys (pynput names): F8 split the episode, F9 pause/resume, F10 stop. Ctrl-C / SIGTERM stop cleanly;
a `kill -9` loses at most the last ~1 s (see hakisa/data/store.py).

Alignment (the store's contract): frames[t] is what was on screen at tick t; actions[t] is what was held
at that moment (plus anything pressed since the previous tick, so a quick tap is never lost); the
reward and done of step t are read from frame t+1, which is why a step is written one tick late.
"""
from __future__ import annotations

import argparse
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hakisa.capture import ObsSpec, preprocess

# ---- done detection ------------------------------------------------------------------------------
# The duel page's result overlay is an opaque full-width band over canvas rows 132..228: gold on a
# victory, crimson on a defeat / time-up (hakisa/envs/duel/web/style.css). Its text sits in the middle,
# so the left and right tenths of the band are pure colour. Plain pixel maths, replaceable by any
# function frame_bgra -> winner (e.g. one built on hakisa.rewards.game.GameJudge).
_VICTORY_BGR = np.array([0, 215, 255])
_DEFEAT_BGR = np.array([0, 0, 176])


def duel_result(frame: np.ndarray) -> int:
    """0 while fighting, 1 if the page shows VICTORY, 2 for DEFEAT / TIME UP. frame: BGRA of the canvas."""
    h, w = frame.shape[:2]
    rows = slice(int(h * 0.40), int(h * 0.60))
    edges = np.concatenate([frame[rows, : w // 10, :3], frame[rows, w - w // 10:, :3]], axis=1).reshape(-1, 3).astype(np.int32)
    for winner, colour in ((1, _VICTORY_BGR), (2, _DEFEAT_BGR)):
        if (((edges - colour) ** 2).sum(-1) <= 40 ** 2).mean() > 0.9:
            return winner
    return 0


def duel_in_play(frame: np.ndarray) -> bool:
    """The knight's green HP bar (canvas 16,16,200x12) is visible: not the dimmed start/pause overlay."""
    h, w = frame.shape[:2]
    bar = frame[int(h * 16 / 360): int(h * 28 / 360), int(w * 16 / 640): int(w * 216 / 640), :3].astype(np.int32)
    green = ((bar - np.array([90, 200, 60])) ** 2).sum(-1) <= 60 ** 2
    return bool(green.mean() > 0.02)


DONE_DETECTORS: dict[str, tuple[Callable | None, Callable | None]] = {
    "duel": (duel_result, duel_in_play),
    "none": (None, None),
}


def _crop(frame: np.ndarray, crop) -> np.ndarray:
    left, top, w, h = crop
    return frame[top:top + h, left:left + w]


# ---- input -----------------------------------------------------------------------------------------
def key_name(key) -> str:
    """pynput key -> the input map's name: Key.left -> "left", KeyCode('J') -> "j"."""
    name = getattr(key, "name", None)  # pynput.keyboard.Key members
    if name:
        return name
    ch = getattr(key, "char", None)
    if ch:
        return ch.lower()
    return f"<{getattr(key, 'vk', '?')}>"


@dataclass
class InputState:
    """What the listener threads saw, as of now. Callbacks are cheap (a lock and an append)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: set = field(default_factory=set)
    pressed: set = field(default_factory=set)  # went down since the last snapshot
    tapped: set = field(default_factory=set)  # went down AND up since the last snapshot
    mouse: tuple[float, float] | None = None  # absolute screen pixels
    moved: bool = False
    click: str | None = None
    rel: list = field(default_factory=lambda: [0.0, 0.0])
    events: list = field(default_factory=list)  # (t, type, key, x, y) since the last drain
    hotkeys: dict = field(default_factory=dict)  # key name -> callback (not logged as game input)

    def key(self, down: bool, name: str, t: float | None = None) -> None:
        t = time.time() if t is None else t
        if name in self.hotkeys:
            if down:
                self.hotkeys[name]()
            return
        with self.lock:
            self.events.append((t, "down" if down else "up", name, np.nan, np.nan))
            if down:
                if name not in self.held:
                    self.pressed.add(name)
                self.held.add(name)
            else:
                self.held.discard(name)
                if name in self.pressed:
                    self.tapped.add(name)

    def move(self, x: float, y: float, t: float | None = None) -> None:
        with self.lock:
            if self.mouse is not None:
                self.rel[0] += x - self.mouse[0]
                self.rel[1] += y - self.mouse[1]
            self.mouse, self.moved = (x, y), True
            self.events.append((time.time() if t is None else t, "move", "", x, y))

    def button(self, x: float, y: float, button: str, down: bool, t: float | None = None) -> None:
        with self.lock:
            if down:
                self.click = button
            self.mouse = (x, y)
            self.events.append((time.time() if t is None else t, "press" if down else "release", button, x, y))

    def scroll(self, x: float, y: float, dx: float, dy: float, t: float | None = None) -> None:
        with self.lock:
            self.events.append((time.time() if t is None else t, "scroll", "", dx, dy))

    def snapshot(self, imap, region) -> tuple[np.ndarray, list]:
        """(this tick's action triple, the raw events since the last snapshot); resets the 'since' parts."""
        with self.lock:
            keys = self.held | self.pressed
            taps = tuple(sorted(self.tapped))
            mouse = None
            if self.mouse is not None:
                left, top, w, h = region
                mouse = ((self.mouse[0] - left) / w, (self.mouse[1] - top) / h)
            click, moved, rel = self.click, self.moved, tuple(self.rel)
            events, self.events = self.events, []
            self.pressed, self.tapped, self.click, self.moved, self.rel = set(), set(), None, False, [0.0, 0.0]
        action = imap.encode(keys_down=keys, mouse=mouse, click=click, taps=taps, rel=rel, mouse_moved=moved)
        return action, events


def start_listeners(state: InputState) -> list:
    """pynput keyboard + mouse listener threads feeding `state`. Imported here: pynput needs a DISPLAY."""
    from pynput import keyboard, mouse

    kb = keyboard.Listener(on_press=lambda k: state.key(True, key_name(k)),
                           on_release=lambda k: state.key(False, key_name(k)))
    ms = mouse.Listener(on_move=lambda x, y: state.move(x, y),
                        on_click=lambda x, y, b, down: state.button(x, y, getattr(b, "name", str(b)), down),
                        on_scroll=lambda x, y, dx, dy: state.scroll(x, y, dx, dy))
    for listener in (kb, ms):
        listener.daemon = True
        listener.start()
    for listener in (kb, ms):
        listener.wait()  # the X RECORD context is live: nothing pressed from now on is missed
    return [kb, ms]


# ---- the writer thread -------------------------------------------------------------------------------
class _WriterThread:
    """Runs EpisodeWriter calls in order on its own thread: capture never waits for compression or fsync."""

    def __init__(self, writer):
        self.writer, self.q = writer, queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self.thread.start()

    def __call__(self, method: str, *args, **kw) -> None:
        if self.error:
            raise RuntimeError(f"episode writer failed: {self.error}") from self.error
        self.q.put((method, args, kw))

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            method, args, kw = item
            try:
                getattr(self.writer, method)(*args, **kw)
            except BaseException as e:  # surfaced on the next call from the capture loop
                self.error = e
                return

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        self.writer.close()


# ---- the recorder ----------------------------------------------------------------------------------
@dataclass
class Stats:
    frames: int = 0
    episodes: int = 0
    dropped: int = 0
    wins: int = 0
    losses: int = 0
    fps: float = 0.0
    paused: bool = False


def record(out: str | Path, imap, *, window: str | None = None, region=None, fps: float = 30.0,
           spec: ObsSpec | None = None, done: str = "auto", display: str | None = None,
           split_key: str = "f8", pause_key: str = "f9", stop_key: str = "f10",
           max_seconds: float | None = None, max_episodes: int | None = None, status: bool = True,
           stop_event: threading.Event | None = None) -> Stats:
    """Record until the stop hotkey, Ctrl-C/SIGTERM, `stop_event`, max_seconds or max_episodes."""
    from hakisa.capture import Capture
    from hakisa.data import EpisodeWriter

    spec = spec or ObsSpec()
    if done == "auto":
        done = "duel" if imap.name == "duel" else "none"
    result_fn, in_play_fn = DONE_DETECTORS[done]
    stop = stop_event or threading.Event()
    stats = Stats()
    cap = Capture(region=region, title=window, spec=spec, display=display) if region else Capture(title=window, spec=spec, display=display)
    toggles = {"split": False, "pause": False}

    def on_split():
        toggles["split"] = True

    def on_pause():
        toggles["pause"] = True

    inp = InputState(hotkeys={split_key: on_split, pause_key: on_pause, stop_key: stop.set})
    listeners = start_listeners(inp)
    meta = {"input_map": imap, "obs_spec": spec, "fps": fps, "source": "teacher", "game": imap.meta.get("game", imap.name),
            "window": cap.title if window else None, "region": list(cap.region), "done_detector": done,
            "hotkeys": {"split": split_key, "pause": pause_key, "stop": stop_key}}
    # 0.8 s chunks: with the write itself, a kill -9 then loses comfortably less than 1 s
    writer = _WriterThread(EpisodeWriter(out, meta, chunk_seconds=0.8))
    bar = None
    if status:
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=f"record {Path(out).name}", dynamic_ncols=True)
    in_episode, paused = False, False
    pending: tuple | None = None  # (frame, action, t) of the step whose outcome the next frame tells

    def close_step(reward: float, done: bool) -> None:
        nonlocal pending
        if pending is not None:
            writer("add", pending[0], pending[1], reward=reward, done=done, t=pending[2])
            pending = None

    def end_episode(**info) -> None:
        nonlocal in_episode
        writer("end_episode", **info)
        in_episode = False
        stats.episodes += 1

    period = 1.0 / fps
    t_start = time.monotonic()
    next_tick = t_start
    ticks, last_status, ticks_at_status = 0, t_start, 0
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now < next_tick:
                time.sleep(next_tick - now)
                now = time.monotonic()
            missed = int((now - next_tick) // period)
            if missed > 0:  # we fell behind (a slow grab, a busy machine): skip ticks, don't drift
                stats.dropped += missed
                next_tick += missed * period
            next_tick += period
            t = time.time()
            bgra = cap.grab()
            frame = preprocess(bgra, spec)
            action, events = inp.snapshot(imap, cap.region)
            view = bgra if spec.crop is None else _crop(bgra, spec.crop)  # what the detectors judge
            winner = result_fn(view) if result_fn else 0
            ticks += 1
            if toggles["pause"]:
                toggles["pause"] = False
                paused = stats.paused = not paused
                if paused and in_episode:  # a pause ends the episode: no time gap inside one
                    close_step(0.0, False)
                    end_episode(reason="pause")
            if toggles["split"]:
                toggles["split"] = False
                if in_episode:
                    close_step(0.0, False)
                    end_episode(reason="hotkey")
            if not paused:
                writer("add_events", events)
                if in_episode and winner:  # the fight ended: the step before this frame gets the outcome
                    close_step(1.0 if winner == 1 else -1.0, True)
                    end_episode(winner=winner, reason="done")
                    stats.wins += winner == 1
                    stats.losses += winner == 2
                elif in_episode:
                    close_step(0.0, False)
                    pending = (frame, action, t)
                    stats.frames += 1
                elif not winner and (in_play_fn is None or in_play_fn(view)):
                    writer("begin_episode")
                    in_episode, pending = True, (frame, action, t)
                    stats.frames += 1
            if now - last_status >= 0.5:
                stats.fps = (ticks - ticks_at_status) / (now - last_status)
                last_status, ticks_at_status = now, ticks
                if bar is not None:
                    bar.n = stats.frames
                    bar.set_postfix(fps=f"{stats.fps:.1f}", episodes=stats.episodes, dropped=stats.dropped,
                                    W=stats.wins, L=stats.losses, paused=paused)
            if (max_seconds and now - t_start >= max_seconds) or (max_episodes and stats.episodes >= max_episodes):
                break
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        if in_episode:
            close_step(0.0, False)
            end_episode(reason="stop")
        writer.close()
        for listener in listeners:
            listener.stop()
        cap.close()
        if bar is not None:
            bar.n = stats.frames
            bar.close()
    return stats


# ---- CLI -----------------------------------------------------------------------------------------------
def _region(text: str) -> tuple[int, int, int, int]:
    parts = [int(v) for v in text.replace("x", ",").split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("region is LEFT,TOP,WIDTH,HEIGHT in screen pixels")
    return tuple(parts)


def add_args(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--window", help="capture the window whose title contains this text")
    target.add_argument("--region", type=_region, help="capture LEFT,TOP,WIDTH,HEIGHT of the screen")
    p.add_argument("--map", default="duel", help="input map: a shipped name or a .json/.yaml path")
    p.add_argument("--fps", type=float, default=30.0, help="capture rate (frames per second)")
    p.add_argument("--out", required=True, help="episode store directory (appended to if it exists)")
    p.add_argument("--width", type=int, default=ObsSpec.width, help="observation width")
    p.add_argument("--height", type=int, default=ObsSpec.height, help="observation height")
    p.add_argument("--rgb", action="store_true", help="keep colour (default gray)")
    p.add_argument("--crop", type=_region, default=None,
                   help="LEFT,TOP,WIDTH,HEIGHT inside the captured window/region to keep (e.g. the game canvas)")
    p.add_argument("--stack", type=int, default=ObsSpec.stack, help="frames per observation (stored as meta; frames are stored once)")
    p.add_argument("--done", choices=["auto", *DONE_DETECTORS], default="auto",
                   help="episode-end detector (auto: 'duel' for the duel map, else none: split with the hotkey)")
    p.add_argument("--split-key", default="f8", help="hotkey: end the episode here and start the next")
    p.add_argument("--pause-key", default="f9", help="hotkey: pause / resume recording")
    p.add_argument("--stop-key", default="f10", help="hotkey: stop recording")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--episodes", type=int, default=None, help="stop after this many episodes")
    p.add_argument("--display", default=None, help="X display (default $DISPLAY)")
    p.add_argument("--quiet", action="store_true", help="no live status line")


def main(args) -> int:
    import json

    from hakisa.input_map import InputMap

    imap = InputMap.load(args.map)
    spec = ObsSpec(width=args.width, height=args.height, gray=not args.rgb, stack=args.stack, crop=args.crop)
    stats = record(args.out, imap, window=args.window, region=args.region, fps=args.fps, spec=spec, done=args.done,
                   display=args.display, split_key=args.split_key, pause_key=args.pause_key, stop_key=args.stop_key,
                   max_seconds=args.seconds, max_episodes=args.episodes, status=not args.quiet)
    print(json.dumps({"out": str(args.out), "frames": stats.frames, "episodes": stats.episodes, "dropped": stats.dropped,
                      "wins": stats.wins, "losses": stats.losses, "fps": round(stats.fps, 2)}), flush=True)
    return 0
