"""`hakisa bench io`: benchmarks that print ONE JSON object as their last line.

  io     the live loop agents run (ScreenEnv.step: send, tick, capture, preprocess, judge) against a real X
         window                               (hakisa.bench.io)

A game's own benchmarks live in its package, under its verbs (`hakisa duel bench`, and `hakisa duel bench-train`:
learner throughput against SB3 on the duel's simulator).
Each benchmark is a module of this package with `run(args)`, imported only when it runs.
"""
from __future__ import annotations

import argparse
import importlib


def add_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="WHICH", required=True)
    io = sub.add_parser("io", help="live capture/input loop timings against a real X window",
                        description="Times the live loop agents run (ScreenEnv.step: send, tick, capture, "
                        "preprocess, judge) against a real 640x360 X window typing random keyboard commands, "
                        "under a private Xvfb unless --display is given. Prints one JSON line. Targets: "
                        "capture+preprocess <= 1 ms p50, loop p99 <= 3 ms (x11 backend) or <= 10 ms (portable).")
    io.add_argument("--steps", type=int, default=600, help="loop steps to time")
    io.add_argument("--hz", type=float, default=120.0, help="loop rate (0: as fast as possible)")
    io.add_argument("--width", type=int, default=640, help="window width")
    io.add_argument("--height", type=int, default=360, help="window height")
    io.add_argument("--hold", type=int, default=1,
                    help="steps each random command is held (1: a new command every step, the worst case)")
    io.add_argument("--display", default=None,
                    help="use this existing X display instead of a private Xvfb (keys go only to the bench's "
                         "own window: the sink pauses whenever it loses focus)")
    io.add_argument("--seed", type=int, default=0)
    io.add_argument("--json-only", action="store_true", help="print only the JSON line")
    from hakisa.backends import add_backend_arg

    add_backend_arg(io)
    io.set_defaults(_run=lambda a: _delegate("hakisa.bench.io", a))


def main(args: argparse.Namespace) -> int | None:
    return args._run(args)


def _delegate(module: str, args: argparse.Namespace) -> int | None:
    return importlib.import_module(module).run(args)


# ---- bench io --------------------------------------------------------------------------------
