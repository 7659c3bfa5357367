"""`hakisa record`: the human teacher. Capture a live window at a fixed rate and log what the person pressed.

    hakisa record --game pop --out datasets/me                   # the game file says where, what and when
    hakisa record --game pop --launch --out datasets/me          # ... and opens the game first
    hakisa record --window "Some Game" --map mymap.json --fps 30 --out datasets/me   # no game file: split with F8

The recorder itself (its threads, the alignment of frames and actions) is hakisa/recorder.py.
With a game file, its screen rules cut the recording into episodes: one starts when the rules say the
game is in play, ends when they say it is done (with its outcome or score and a per-frame reward from
the rules' deltas), and frames outside play (menus, game-over screens) are not recorded. The split
hotkey is the manual fallback, and the only episode end without a game file.
Hotkeys (pynput names): F8 split the episode, F9 pause/resume, F10 stop. Ctrl-C / SIGTERM stop cleanly;
a `kill -9` loses at most the last ~1 s (see hakisa/data/format.py).

    hakisa record --game pop --agent runs/pop-bc --out datasets/pop-corrections   # the agent plays, you correct

With `--agent` the checkpoint plays and the person takes over by pressing a key or clicking; after
`--idle-ms` of nothing, the agent has control again (hakisa/takeover.py). Every frame stores who acted.
"""
from __future__ import annotations

import argparse

from hakisa.preprocess import ObsSpec
from hakisa.recorder import record


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


def _agent(args, game):
    """(net, act mode, checkpoint) of --agent, else (None, None, None)."""
    if not args.agent:
        return None, None, None
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
    return net, mode, checkpoint


def _where(args, game, stack):
    """(window, region, display, the opened LiveGame or None): the flags, else where the game file says."""
    from hakisa.game import parse_opts

    window, region, display, live = args.window, args.region, args.display, None
    if game is not None and not (window or region):
        if args.launch:
            live = stack.enter_context(game.open(display, parse_opts(args.opt)))
            region, display = live.region, live.display
        elif "region" in game.window:
            region = tuple(game.window["region"])
        else:
            live = stack.enter_context(game.open(display))  # finds the window (and its canvas) by title
            region, display = live.region, live.display
    return window, region, display, live


def main(args) -> int:
    import json
    from contextlib import ExitStack

    from hakisa.game import Game
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
    net, mode, checkpoint = _agent(args, game)
    if net is not None:
        spec = net.obs_spec
    with ExitStack() as stack:
        window, region, display, live = _where(args, game, stack)
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
