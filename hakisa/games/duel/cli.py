"""`hakisa duel ...`: the duel's own tools. hakisa/games/duel.json names this module as its `verbs`, so the
generic CLI reaches it through the game file and never names the duel.

    hakisa duel serve --port 8765          # the page; then browse http://127.0.0.1:8765/
    hakisa duel open --tier hard           # serve + a Chromium app window of fixed size (own Xvfb if no DISPLAY)
    hakisa duel serve --league runs/league # + the league's brains (DIR/bosses/*.json) in the page's boss
                                           # selector, and every fight played appended to DIR/fights.jsonl
    hakisa duel perception ...             # pretrain an encoder on the sim (perception.py)
    hakisa duel boss-train|boss-elo|boss-learn ...   # the boss league (league/)
    hakisa duel bench                      # sim and vector env speed (bench.py), one JSON line
    hakisa duel bench-train                # our PPO's env steps/s vs SB3's on the sim (bench_train.py)
    hakisa duel demo                       # train 5 minutes on the sim, then play the real page (demo.py;
                                           # scripts/demo.sh sets up and runs it)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SUBCOMMANDS = "serve|open|perception|boss-train|boss-elo|boss-learn|bench|bench-train|demo"


def add_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="duel_cmd", metavar=SUBCOMMANDS, required=True)
    s = sub.add_parser("serve", help="serve the page on 127.0.0.1")
    s.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    o = sub.add_parser("open", help="serve + open a Chromium app window of fixed size (own Xvfb if no DISPLAY)")
    o.add_argument("--port", type=int, default=8765)
    o.add_argument("--tier", choices=["easy", "normal", "hard"], default="normal")
    o.add_argument("--seed", type=int, default=None)
    o.add_argument("--boss", default=None, help="the boss's brain: scripted, a shipped or a league brain's name")
    for p in (s, o):
        p.add_argument("--league", default=None, metavar="DIR",
                       help="a league folder: its DIR/bosses/*.json brains join the page's choices, and fights "
                            "played are logged to DIR/fights.jsonl (unless --log-dir)")
        p.add_argument("--log-dir", default=None, metavar="DIR",
                       help="append every fight played on the page to DIR/fights.jsonl (default: the league)")
    o.add_argument("--seconds", type=float, default=0, help="close after this long (0: until Ctrl-C / window closed)")
    from hakisa.games.duel import perception

    perception.add_args(
        sub.add_parser(
            "perception", help="pretrain an encoder to read the duel's state off its frames (for hakisa study --init)"
        )
    )
    from hakisa.games.duel.league import cli as league_cli

    league_cli.add_args(sub)
    b = sub.add_parser("bench", help="duel sim and vector env throughput; prints one JSON line")
    b.add_argument("--num-envs", type=int, default=None, help="vector env width (default: the bench's own)")
    b.add_argument("--steps", type=int, default=None, help="steps to time (default: the bench's own)")
    b.add_argument("--tier", default="normal")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json-only", action="store_true", help="print only the JSON line")
    t = sub.add_parser("bench-train", help="learner env steps/s on the duel's simulator, ours vs SB3; one JSON line")
    t.add_argument("--algo", default="ppo", help="learner to time")
    t.add_argument("--num-envs", type=int, default=None, help="vector env width (default: the bench's own)")
    t.add_argument("--steps", type=int, default=None, help="env steps to time (default: the bench's own)")
    t.add_argument("--obs", default=None,
                   help="frame size WxH for both learners (default: the env's own, 160x90; the recipe's: 80x45)")
    t.add_argument("--repeats", type=int, default=2, help="rounds of ours/SB3/ours-bf16, order alternating")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json-only", action="store_true", help="print only the JSON line")
    from hakisa.games.duel import demo

    demo.add_args(sub.add_parser("demo", help="train briefly on the duel sim, then play the real browser page"))


def main(args) -> int:
    if args.duel_cmd == "perception":
        from hakisa.games.duel import perception

        return perception.main(args)
    if args.duel_cmd.startswith("boss-"):
        from hakisa.games.duel.league import cli as league_cli

        return league_cli.main(args)
    if args.duel_cmd == "bench":
        from hakisa.games.duel import bench

        return bench.run(args)
    if args.duel_cmd == "bench-train":
        from hakisa.games.duel import bench_train

        return bench_train.run(args)
    if args.duel_cmd == "demo":
        from hakisa.games.duel import demo

        return demo.main(args)
    return serve(args)


def serve(args) -> int:
    """`serve`: the page until Ctrl-C; `open`: the page in a Chromium app window (a private Xvfb without DISPLAY)."""
    from hakisa import browser
    from hakisa.games.duel.web import chromium_cmd, page_url, start_server

    server = start_server(args.port, league=args.league, log_dir=args.log_dir)
    url = page_url(server, getattr(args, "tier", "normal"), getattr(args, "seed", None),
                   boss=getattr(args, "boss", None))
    print(json.dumps({"url": url}), flush=True)
    log_dir = args.log_dir or args.league
    if log_dir:
        print(f"fights played are appended to {Path(log_dir) / 'fights.jsonl'}", flush=True)
    xvfb = proc = None
    tmp = tempfile.mkdtemp(prefix="hakisa-chromium-")
    try:
        if args.duel_cmd == "serve":
            print(f"serving the Hakisa Duel at {url} (Ctrl-C to stop)", flush=True)
            threading.Event().wait()
        display = os.environ.get("DISPLAY")
        if not display:
            from hakisa.xserver import Xvfb

            xvfb = Xvfb(1280, 720)
            display = xvfb.start()
            print(f"no DISPLAY: opened the page on a private Xvfb {display}", flush=True)
        proc = subprocess.Popen(
            chromium_cmd(url, tmp, debug_port=None),
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(args.seconds or None)
        except subprocess.TimeoutExpired:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            browser.kill_group(proc)
        if xvfb is not None:
            xvfb.stop()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
