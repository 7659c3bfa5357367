"""The recorder under `hakisa record` (hakisa/phases/teacher.py): capture a live window at a fixed rate and log
what the person pressed, cut into episodes by the game's screen rules.

Three threads, none of which waits for another:
  * pynput listeners (keyboard + mouse) log every event with its time into `InputState`;
  * the capture loop (this thread) grabs on a fixed clock, snapshots the input state, and turns it into
    the frame's action with `InputMap.encode` (an explicit noop when nothing is pressed). It never waits
    for input, and a tick it missed is counted as dropped instead of shifting the clock;
  * a writer thread feeds the EpisodeWriter, so chunk compression and fsyncs never stall the capture.

Alignment (the store's contract): frames[t] is what was on screen at tick t; actions[t] is what was held
at that moment (plus anything pressed since the previous tick, so a quick tap is never lost); the
reward and done of step t are read from frame t+1, which is why a step is written one tick late.
"""
from __future__ import annotations

import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hakisa.backends import on_display, stop_listeners
from hakisa.input_map import InputState
from hakisa.live import TickClock
from hakisa.preprocess import ObsSpec, preprocess


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


def start_listeners(state: InputState, display: str | None = None) -> list:
    """pynput keyboard + mouse listener threads feeding `state`, on X display `display` (default $DISPLAY).
    pynput connects to $DISPLAY when imported and when a listener starts: both happen inside `on_display`."""
    with on_display(display):
        return _listen(state)


def _listen(state: InputState) -> list:
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
    """What `record` returns and its status line shows, counted as it runs.

    frames: frames written into episodes; episodes: episodes ended (by the rules, a hotkey or a pause);
    dropped: whole ticks lost because the loop fell behind; wins/losses: outcomes the rules judged;
    fps: the measured tick rate (refreshed every 0.5 s); takeovers: the person taking over from `--agent`."""

    frames: int = 0
    episodes: int = 0
    dropped: int = 0
    wins: int = 0
    losses: int = 0
    fps: float = 0.0
    paused: bool = False
    takeovers: int = 0


class _Episodes:
    """What the recorder writes, frame by frame: the episode it is in, the step whose reward and done the
    next frame tells (written one tick late), the pause and split hotkeys, and the status line."""

    def __init__(self, writer: _WriterThread, judge, agent, stats: Stats, bar):
        self.writer, self.judge, self.agent, self.stats, self.bar = writer, judge, agent, stats, bar
        self.in_episode, self.paused = False, False
        self.pending: tuple | None = None  # (frame, action, t, extras) of the step whose outcome the next frame tells
        self.pending_reward = 0.0  # reward read on skipped (not in play) frames, paid to the pending step

    def close_step(self, reward: float, done: bool) -> None:
        if self.pending is not None:
            p = self.pending
            self.writer("add", p[0], p[1], reward=reward, done=done, t=p[2], **p[3])
            self.pending = None

    def step(self, frame, person_action, t, playing=True, new=False, restart=True) -> tuple:
        """The frame's pending step: the agent's action when it acted, else the person's (and who acted)."""
        if self.agent is None:
            return frame, person_action, t, {}
        a, extras = self.agent.tick(frame, playing, new, restart)
        return frame, (person_action if a is None else a), t, extras

    def end_episode(self, **info) -> None:
        self.writer("end_episode", **info)
        self.in_episode = False
        self.stats.episodes += 1

    def hotkeys(self, toggles: dict) -> None:
        if toggles["pause"]:
            toggles["pause"] = False
            self.paused = self.stats.paused = not self.paused
            if self.paused and self.in_episode:  # a pause ends the episode: no time gap inside one
                self.close_step(0.0, False)
                self.end_episode(reason="pause")
        if toggles["split"]:
            toggles["split"] = False
            if self.in_episode:
                self.close_step(0.0, False)
                self.end_episode(reason="hotkey")

    def frame(self, frame, action, t, view, events) -> None:
        """One grabbed frame: begin, continue or end the episode as the rules (or the hotkeys) say."""
        judge, stats, step = self.judge, self.stats, self.step
        if self.paused:
            step(frame, action, t, playing=False, restart=False)
            return
        self.writer("add_events", events)
        if self.in_episode and judge is not None:
            reward, done, info = judge.step(view)
            if done:  # the game ended: the step before this frame gets the outcome
                self.close_step(reward + (self.pending_reward if self.pending else 0.0), True)
                self.end_episode(reason="done", **{k: info[k] for k in ("winner", "score") if k in info})
                stats.wins += info.get("winner") == judge.win_winner
                stats.losses += info.get("winner", 0) not in (0, judge.win_winner)
                step(frame, action, t, playing=False)
            elif info["in_play"]:
                self.close_step(reward + self.pending_reward, False)
                self.pending, self.pending_reward = step(frame, action, t), 0.0
                stats.frames += 1
            else:  # a menu or overlay inside the episode: not a frame to learn from, its reward carries on
                self.pending_reward += reward
                step(frame, action, t, playing=False)
        elif self.in_episode:
            self.close_step(0.0, False)
            self.pending = step(frame, action, t)
            stats.frames += 1
        elif judge is None or _starts(judge, view):
            self.writer("begin_episode")
            self.in_episode, self.pending, self.pending_reward = True, step(frame, action, t, new=True), 0.0
            stats.frames += 1
        else:
            step(frame, action, t, playing=False)

    def show(self) -> None:
        stats, agent = self.stats, self.agent
        if self.bar is not None:
            self.bar.n = stats.frames
            self.bar.set_postfix(
                fps=f"{stats.fps:.1f}",
                episodes=stats.episodes,
                dropped=stats.dropped,
                W=stats.wins,
                L=stats.losses,
                paused=self.paused,
                **({"control": agent.control.upper(), "takeovers": agent.takeovers} if agent else {}),
            )

    def stop(self) -> None:
        if self.in_episode:
            self.close_step(0.0, False)
            self.end_episode(reason="stop")


def _meta(imap, spec: ObsSpec, fps: float, cap, window, judge, game, game_file, keys: dict, agent) -> dict:
    return {
        "input_map": imap,
        "obs_spec": spec,
        "fps": fps,
        "source": "teacher",
        "game": game or imap.meta.get("game", imap.name),
        # the file itself, so that study and the viewer find a user's game without being told
        "game_file": game_file,
        "window": cap.title if window else None,
        "region": list(cap.region),
        "episode_ends": "rules" if judge is not None else "hotkey",
        "hotkeys": keys,
        **(agent.meta() if agent is not None else {}),
    }


def _input_state(split_key: str, pause_key: str, stop_key: str, stop: threading.Event):
    """(the InputState the listeners feed, the split/pause flags its hotkeys raise for the capture loop)."""
    toggles = {"split": False, "pause": False}

    def on_split():
        toggles["split"] = True

    def on_pause():
        toggles["pause"] = True

    return InputState(hotkeys={split_key: on_split, pause_key: on_pause, stop_key: stop.set}), toggles


def _status_bar(out):
    from tqdm import tqdm

    return tqdm(unit="frame", desc=f"record {Path(out).name}", dynamic_ncols=True)


def _stop_on_signals(stop: threading.Event) -> dict:
    """Ctrl-C / SIGTERM set `stop` (the loop ends cleanly); returns the handlers to put back."""
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    return old_handlers


def record(out: str | Path, imap, *, window: str | None = None, region=None, fps: float = 30.0,
           spec: ObsSpec | None = None, judge=None, display: str | None = None,
           split_key: str = "f8", pause_key: str = "f9", stop_key: str = "f10",
           max_seconds: float | None = None, max_episodes: int | None = None, status: bool = True,
           stop_event: threading.Event | None = None, game: str | None = None,
           game_file: str | None = None, agent=None) -> Stats:
    """Record until the stop hotkey, Ctrl-C/SIGTERM, `stop_event`, max_seconds or max_episodes.

    judge: a game's GameJudge (`Game.judge()`): episode starts, ends, rewards and outcomes from its rules;
    None records everything and splits episodes only on the hotkey. agent: a `hakisa.takeover.Takeover`
    that plays while the person does not (its net's obs spec must be `spec`)."""
    from hakisa.capture import Capture
    from hakisa.data import EpisodeWriter

    spec = spec or ObsSpec()
    stop = stop_event or threading.Event()
    stats = Stats()
    cap = (
        Capture(region=region, title=window, spec=spec, display=display)
        if region
        else Capture(title=window, spec=spec, display=display)
    )
    inp, toggles = _input_state(split_key, pause_key, stop_key, stop)
    try:
        listeners = start_listeners(agent.start(cap, inp) if agent is not None else inp, cap.display_name)
    except BaseException:
        if agent is not None:
            agent.close()
        raise
    meta = _meta(imap, spec, fps, cap, window, judge, game, game_file,
                 {"split": split_key, "pause": pause_key, "stop": stop_key}, agent)
    # 0.8 s chunks: with the write itself, a kill -9 then loses comfortably less than 1 s
    writer = _WriterThread(EpisodeWriter(out, meta, chunk_seconds=0.8))
    bar = _status_bar(out) if status else None
    eps = _Episodes(writer, judge, agent, stats, bar)
    clock = TickClock(fps)
    t_start = time.monotonic()
    ticks, last_status, ticks_at_status = 0, t_start, 0
    old_handlers = _stop_on_signals(stop)
    try:
        while not stop.is_set():
            if agent is not None and agent.navigated:  # the agent restarted the game: not a late tick
                agent.navigated = False
                clock.restart()
            if ticks:  # we fell behind (a slow grab, a busy machine): whole ticks with no frame are dropped
                stats.dropped += int(clock.tick(time.perf_counter())[0] * fps)
            now, t = time.monotonic(), time.time()
            bgra = cap.grab()
            frame = preprocess(bgra, spec)
            action, events = inp.snapshot(imap, cap.region)
            if agent is not None:  # everything that reached the game, the agent's own input too
                events = agent.events()
            view = bgra if spec.crop is None else _crop(bgra, spec.crop)  # what the rules judge
            ticks += 1
            eps.hotkeys(toggles)
            eps.frame(frame, action, t, view, events)
            if now - last_status >= 0.5:
                stats.fps = (ticks - ticks_at_status) / (now - last_status)
                last_status, ticks_at_status = now, ticks
                eps.show()
            if (max_seconds and now - t_start >= max_seconds) or (max_episodes and stats.episodes >= max_episodes):
                break
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        eps.stop()
        writer.close()
        stop_listeners(*listeners)  # before a display opened for this recording goes away under their threads
        if agent is not None:
            stats.takeovers = agent.takeovers
            agent.close()
        cap.close()
        if bar is not None:
            bar.n = stats.frames
            bar.close()
    return stats


def _starts(judge, view: np.ndarray) -> bool:
    """A new episode starts on a frame that is in play and not already done (for the rules' `start_frames` looks
    in a row); the rules' deltas start here."""
    if judge.starts(judge.read(view)):
        judge.reset(view)
        return True
    return False
