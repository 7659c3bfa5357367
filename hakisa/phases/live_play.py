"""`hakisa play --game G --live`: a checkpoint plays a game's REAL window through the screen.

    hakisa play --game pop --checkpoint runs/pop-bc --episodes 20      # launches the page (own Xvfb if no DISPLAY)
    hakisa play --game duel --live --checkpoint runs/duel --opt tier=hard
    hakisa play --game mygame.json --checkpoint runs/mine --window "My Game"  # a window you opened

The agent sees only pixels (Capture -> preprocess -> FrameStack, the same bytes as in a simulator) and
acts only through the safe live sink (focus-gated, mouse clamped to the game region, kill switch,
everything released on exit), on the x11 or portable backend (--backend, hakisa.backends). Rewards,
episode ends and outcomes come from the game file's screen rules.
Before the episodes, a latency probe (the rules' `probe`) measures the action->pixel lag.

Prints JSON as its LAST line: episodes, win_rate (games that are won or lost) or mean_score with its 95 %
interval (score games), mean_return, step_ms_p50/p99, lag_ms (+ details). step_ms = capture + preprocess +
forward + send, the loop's work per step; the screen readers' time is reported separately (reward_ms_*).
A GIF of what the agent saw, with its chosen command written on each frame, goes into the output folder
(live_play.gif), with play_live.json and TensorBoard scalars (live_tb/). --replay PATH (.mp4 or .gif) also
films the window itself at its own size with the agent's held keys as labels and its clicks and moves as
markers at their cells (hakisa.video; the same drawing as `hakisa data view`).

`hakisa.play_live.play_live(...)` is the same thing as a function (for notebooks and benchmarks).
"""
from __future__ import annotations

import argparse
import json

from hakisa.agent import chosen_mode
from hakisa.play_live import play_live


def add_live_args(p: argparse.ArgumentParser) -> None:
    """The live-only options; play.py exposes them."""
    p.add_argument("--probe-trials", type=int, default=5, help="latency probe presses before the episodes (0: skip)")
    p.add_argument("--gif-episodes", type=int, default=1,
                   help="episodes recorded into the GIF (0: none) and the --replay video (at least 1)")
    p.add_argument("--max-steps", type=int, default=None, help="truncate an episode after this many steps")
    p.add_argument("--hz", type=float, default=None, help="decisions per second (default: the game file's hz)")
    p.add_argument("--stuck-warn", type=float, default=30.0, metavar="S",
                   help="warn when the screen stops matching the rules for S seconds (no in_play, readings that "
                        "never change, an episode far longer than any before)")
    p.add_argument("--stuck-stop", type=float, default=120.0, metavar="S",
                   help="stop (one hakisa: line, exit 2) when it still does not after S seconds")


def main(args) -> int:
    from hakisa.game import parse_opts

    g = lambda k, d=None: getattr(args, k, d)  # noqa: E731  (play.py may not define every live option)
    deterministic = chosen_mode(args)  # --argmax / --sample, else the checkpoint's own way (`hakisa study` measures it)
    game = g("game")
    if not 0 < g("stuck_warn", 30.0) <= g("stuck_stop", 120.0):
        raise SystemExit("hakisa play: --stuck-warn must be over 0 and at most --stuck-stop")
    if not game:
        raise SystemExit("hakisa play: give --game NAME|PATH (the screen rules of the window it plays)")
    summary = play_live(
        g("checkpoint"),
        game=game,
        opts=parse_opts(g("opt")),
        window=g("window"),
        episodes=g("episodes", 20),
        deterministic=deterministic,
        head=g("head", "auto"),
        hz=g("hz"),
        probe_trials=g("probe_trials", 5),
        gif_episodes=g("gif_episodes", 1),
        out=g("out"),
        seed=g("seed", 0) or 0,
        max_steps=g("max_steps"),
        stuck_warn=g("stuck_warn", 30.0),
        stuck_stop=g("stuck_stop", 120.0),
        replay=g("replay"),
    )
    print(json.dumps(summary))
    return 0
