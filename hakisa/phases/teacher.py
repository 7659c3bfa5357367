"""`hakisa record`: the human teacher. Capture a live window at a fixed rate and log what the person pressed.

    hakisa record --game pop --out datasets/me                   # the game file says where, what and when
    hakisa record --game pop --launch --out datasets/me          # ... and opens the game first
    hakisa record --window "Some Game" --map mymap.json --fps 30 --out datasets/me   # no game file: split with F8

Three threads, none of which waits for another:
  * pynput listeners (keyboard + mouse) log every event with its time into `InputState`;
  * the capture loop (this thread) grabs on a fixed clock, snapshots the input state, and turns it into
    the frame's action with `InputMap.encode` (an explicit noop when nothing is pressed). It never waits
    for input, and a tick it missed is counted as dropped instead of shifting the clock;
  * a writer thread feeds the EpisodeWriter, so chunk compression and fsyncs never stall the capture.
With a game file, its screen rules cut the recording into episodes: one starts when the rules say the
game is in play, ends when they say it is done (with its outcome or score and a per-frame reward from
the rules' deltas), and frames outside play (menus, game-over screens) are not recorded. The split
hotkey is the manual fallback, and the only episode end without a game file.
Hotkeys (pynput names): F8 split the episode, F9 pause/resume, F10 stop. Ctrl-C / SIGTERM stop cleanly;
a `kill -9` loses at most the last ~1 s (see hakisa/data/store.py).

    hakisa record --game pop --agent runs/pop-bc --out datasets/pop-corrections   # the agent plays, you correct

With `--agent` the checkpoint plays and the person takes over by pressing a key or clicking; after
`--idle-ms` of nothing, the agent has control again (hakisa/takeover.py). Every frame stores who acted.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    takeovers: int = 0


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
    toggles = {"split": False, "pause": False}

    def on_split():
        toggles["split"] = True

    def on_pause():
        toggles["pause"] = True

    inp = InputState(hotkeys={split_key: on_split, pause_key: on_pause, stop_key: stop.set})
    try:
        listeners = start_listeners(agent.start(cap, inp) if agent is not None else inp)
    except BaseException:
        if agent is not None:
            agent.close()
        raise
    meta = {
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
        "hotkeys": {"split": split_key, "pause": pause_key, "stop": stop_key},
        **(agent.meta() if agent is not None else {}),
    }
    # 0.8 s chunks: with the write itself, a kill -9 then loses comfortably less than 1 s
    writer = _WriterThread(EpisodeWriter(out, meta, chunk_seconds=0.8))
    bar = None
    if status:
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=f"record {Path(out).name}", dynamic_ncols=True)
    in_episode, paused = False, False
    pending: tuple | None = None  # (frame, action, t, extras) of the step whose outcome the next frame tells
    pending_reward = 0.0  # reward read on skipped (not in play) frames, paid to the pending step

    def close_step(reward: float, done: bool) -> None:
        nonlocal pending
        if pending is not None:
            writer("add", pending[0], pending[1], reward=reward, done=done, t=pending[2], **pending[3])
            pending = None

    def step(frame, person_action, t, playing=True, new=False, restart=True) -> tuple:
        """The frame's pending step: the agent's action when it acted, else the person's (and who acted)."""
        if agent is None:
            return frame, person_action, t, {}
        a, extras = agent.tick(frame, playing, new, restart)
        return frame, (person_action if a is None else a), t, extras

    def end_episode(**info) -> None:
        nonlocal in_episode
        writer("end_episode", **info)
        in_episode = False
        stats.episodes += 1

    clock = TickClock(fps)
    t_start = time.monotonic()
    ticks, last_status, ticks_at_status = 0, t_start, 0
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda *_: stop.set())
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
                if in_episode and judge is not None:
                    reward, done, info = judge.step(view)
                    if done:  # the game ended: the step before this frame gets the outcome
                        close_step(reward + (pending_reward if pending else 0.0), True)
                        end_episode(reason="done", **{k: info[k] for k in ("winner", "score") if k in info})
                        stats.wins += info.get("winner") == judge.win_winner
                        stats.losses += info.get("winner", 0) not in (0, judge.win_winner)
                        step(frame, action, t, playing=False)
                    elif info["in_play"]:
                        close_step(reward + pending_reward, False)
                        pending, pending_reward = step(frame, action, t), 0.0
                        stats.frames += 1
                    else:  # a menu or overlay inside the episode: not a frame to learn from, its reward carries on
                        pending_reward += reward
                        step(frame, action, t, playing=False)
                elif in_episode:
                    close_step(0.0, False)
                    pending = step(frame, action, t)
                    stats.frames += 1
                elif judge is None or _starts(judge, view):
                    writer("begin_episode")
                    in_episode, pending, pending_reward = True, step(frame, action, t, new=True), 0.0
                    stats.frames += 1
                else:
                    step(frame, action, t, playing=False)
            else:
                step(frame, action, t, playing=False, restart=False)
            if now - last_status >= 0.5:
                stats.fps = (ticks - ticks_at_status) / (now - last_status)
                last_status, ticks_at_status = now, ticks
                if bar is not None:
                    bar.n = stats.frames
                    bar.set_postfix(
                        fps=f"{stats.fps:.1f}",
                        episodes=stats.episodes,
                        dropped=stats.dropped,
                        W=stats.wins,
                        L=stats.losses,
                        paused=paused,
                        **({"control": agent.control.upper(), "takeovers": agent.takeovers} if agent else {}),
                    )
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
        if agent is not None:
            stats.takeovers = agent.takeovers
            agent.close()
        cap.close()
        if bar is not None:
            bar.n = stats.frames
            bar.close()
    return stats


def _starts(judge, view: np.ndarray) -> bool:
    """A new episode starts on a frame that is in play and not already done; the rules' deltas start here."""
    readings = judge.read(view)
    if judge.in_play(readings) and not judge.is_done(readings):
        judge.reset(view)
        return True
    return False


# ---- CLI -----------------------------------------------------------------------------------------------
def _region(text: str) -> tuple[int, int, int, int]:
    parts = [int(v) for v in text.replace("x", ",").split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("region is LEFT,TOP,WIDTH,HEIGHT in screen pixels")
    return tuple(parts)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", help="a game file (shipped name or path): window, observation, rate, map and rules")
    from hakisa.backends import add_backend_arg

    add_backend_arg(p)
    p.add_argument(
        "--launch",
        action="store_true",
        help="open the game first (its file's launch entry), on its own Xvfb when there is no DISPLAY",
    )
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option from its file (with --launch)")
    p.add_argument("--window", help="capture the window whose title contains this text (default: the game's)")
    p.add_argument("--region", type=_region, help="capture LEFT,TOP,WIDTH,HEIGHT of the screen")
    p.add_argument("--map", default=None, help="input map without a game file: a shipped name or a .json/.yaml path")
    p.add_argument("--fps", type=float, default=None, help="capture rate (default: the game's hz, else 30)")
    p.add_argument("--out", required=True, help="episode store directory (appended to if it exists)")
    p.add_argument("--width", type=int, default=None, help="observation width (default: the game's)")
    p.add_argument("--height", type=int, default=None, help="observation height (default: the game's)")
    p.add_argument("--rgb", action="store_true", help="keep colour (default: the game's, else gray)")
    p.add_argument(
        "--crop",
        type=_region,
        default=None,
        help="LEFT,TOP,WIDTH,HEIGHT inside the captured window/region to keep (e.g. the game canvas)",
    )
    p.add_argument(
        "--stack", type=int, default=None, help="frames per observation (stored as meta; frames are stored once)"
    )
    p.add_argument("--split-key", default="f8", help="hotkey: end the episode here and start the next")
    p.add_argument("--pause-key", default="f9", help="hotkey: pause / resume recording")
    p.add_argument("--stop-key", default="f10", help="hotkey: stop recording")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--episodes", type=int, default=None, help="stop after this many episodes")
    p.add_argument("--display", default=None, help="X display (default $DISPLAY)")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--agent", metavar="CHECKPOINT", default=None,
                   help="this agent plays (a checkpoint, run dir, or 'untrained'); press a key or click to take over")
    p.add_argument("--idle-ms", type=float, default=400.0,
                   help="with --agent: the agent gets control back after the person did nothing for this long")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--sample", action="store_true", help="with --agent: sample its actions (default: the "
                     "checkpoint's own act mode, as in `hakisa play`)")
    how.add_argument("--argmax", action="store_true", help="with --agent: its most likely action at every step")


def main(args) -> int:
    import json
    from contextlib import ExitStack

    from hakisa.game import Game, parse_opts
    from hakisa.input_map import InputMap

    game = Game.load(args.game) if args.game else None
    if game is None and not args.map:
        raise SystemExit("hakisa record: give --game NAME|PATH (or --map for a bare input map)")
    if game is None and not (args.window or args.region):
        raise SystemExit("hakisa record: give --window TITLE or --region L,T,W,H (or a --game file that says where)")
    imap = InputMap.load(args.map) if args.map else game.input_map
    base = game.obs_spec if game else ObsSpec()
    spec = ObsSpec(
        width=args.width or base.width,
        height=args.height or base.height,
        gray=base.gray and not args.rgb,
        stack=args.stack or base.stack,
        crop=args.crop,
    )
    fps = args.fps or (game.hz if game else 30.0)
    net = None
    if args.agent:
        if game is None or args.map:
            raise SystemExit("hakisa record --agent: give --game (the agent acts in the game's input map), not --map")
        if args.width or args.height or args.rgb or args.stack or args.crop:
            raise SystemExit("hakisa record --agent: the observation is the checkpoint's; drop --width/--height/"
                             "--rgb/--stack/--crop")
        import torch

        from hakisa.agent import load_agent

        torch.set_num_threads(1)  # one small forward per tick
        from hakisa.agent import chosen_mode

        net, _, mode, checkpoint = load_agent(args.agent, game, deterministic=chosen_mode(args))
        spec = net.obs_spec
    live = None
    with ExitStack() as stack:
        window, region, display = args.window, args.region, args.display
        if game is not None and not (window or region):
            if args.launch:
                live = stack.enter_context(game.open(display, parse_opts(args.opt)))
                region, display = live.region, live.display
            elif "region" in game.window:
                region = tuple(game.window["region"])
            else:
                live = stack.enter_context(game.open(display))  # finds the window (and its canvas) by title
                region, display = live.region, live.display
        agent = None
        if net is not None:
            from hakisa.takeover import Takeover

            judge = game.judge()  # its own: the recorder's judge keeps the reward deltas, this one navigates
            agent = Takeover(net, mode, idle=args.idle_ms / 1000, judge=judge,
                             focus_window=getattr(live, "window_id", None), kill_key=judge.cfg.get("kill_key", "f12"),
                             checkpoint=str(checkpoint or "untrained"))
        stats = record(
            args.out,
            imap,
            window=window,
            region=region,
            fps=fps,
            spec=spec,
            judge=game.judge() if game else None,
            display=display,
            split_key=args.split_key,
            pause_key=args.pause_key,
            stop_key=args.stop_key,
            max_seconds=args.seconds,
            max_episodes=args.episodes,
            status=not args.quiet,
            game=game.name if game else None,
            game_file=str(game.path.resolve()) if game else None,
            agent=agent,
        )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "frames": stats.frames,
                "episodes": stats.episodes,
                "dropped": stats.dropped,
                "wins": stats.wins,
                "losses": stats.losses,
                "fps": round(stats.fps, 2),
                **({"takeovers": stats.takeovers} if args.agent else {}),
            }
        ),
        flush=True,
    )
    return 0
