"""Soak: a live agent plays a game's real window for a long time; does anything leak or drift?

    python benchmarks/soak.py --game duel --checkpoint pretrained:duel-ppo --minutes 30 --out benchmarks/soak_duel.json

The game is launched on a private Xvfb (nothing touches your desktop). The agent plays it through
`play_live`, the product's own loop, in chunks of `--chunk` episodes; each chunk builds and closes a
ScreenEnv and its XTestSink, so a leak per env shows too. After each chunk (about a minute) it logs:
this process's RSS, open fds and threads, the RSS of its children (browser, guardian), the chunk's live
step p50/p99 and late steps, and the games' outcomes. At the end it reads the X server's keymap: a key
still down is a stuck key. Last line: JSON with the per-minute log and the drift (end vs minute 5).
Goal: RSS within +-5 %, no growth in fds or threads, 0 stuck keys.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import psutil


def sample(proc: psutil.Process) -> dict:
    kids = proc.children(recursive=True)
    kid_rss = 0
    for k in kids:
        try:
            kid_rss += k.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return {"rss_mb": round(proc.memory_info().rss / 2**20, 1), "fds": proc.num_fds(), "threads": proc.num_threads(),
            "children": len(kids), "children_rss_mb": round(kid_rss / 2**20, 1)}


def keys_down(display: str) -> int:
    from Xlib import display as xdisplay

    dpy = xdisplay.Display(display)
    try:
        return sum(bin(b).count("1") for b in dpy.query_keymap())
    finally:
        dpy.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="duel")
    p.add_argument("--checkpoint", default="pretrained:duel-ppo")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--chunk", type=int, default=2, help="episodes per play_live call (one log line each)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()

    from hakisa.game import Game, parse_opts
    from hakisa.play_live import play_live

    game, opts = Game.load(a.game), parse_opts(a.opt)
    proc, log, t0, load0 = psutil.Process(), [], time.monotonic(), os.getloadavg()
    outcomes = {"episodes": 0, "wins": 0, "scores": []}
    with tempfile.TemporaryDirectory() as tmp, game.open(opts=opts, private=True) as live:
        while (time.monotonic() - t0) / 60 < a.minutes:
            s = play_live(a.checkpoint, game=game, opts=opts, live=live, episodes=a.chunk, probe_trials=0,
                          gif_episodes=0, out=Path(tmp) / "play", progress=False)
            outcomes["episodes"] += s["episodes"]
            outcomes["wins"] += round((s.get("win_rate") or 0) * s["episodes"])
            if s.get("mean_score") is not None:
                outcomes["scores"].append(s["mean_score"])
            row = {"minute": round((time.monotonic() - t0) / 60, 2), **sample(proc), "step_ms_p50": s["step_ms_p50"],
                   "step_ms_p99": s["step_ms_p99"], "late_steps": s["late_steps"], "steps": s["steps"],
                   "win_rate": s.get("win_rate"), "mean_score": s.get("mean_score")}
            log.append(row)
            print(json.dumps(row), flush=True)
        stuck = keys_down(live.display)
    at5 = next((r for r in log if r["minute"] >= 5), log[0])
    end = log[-1]
    out = {"bench": "soak", "game": game.name, "checkpoint": a.checkpoint, "minutes": round(end["minute"], 2),
           "episodes": outcomes["episodes"], "wins": outcomes["wins"],
           "rss_drift": round((end["rss_mb"] - at5["rss_mb"]) / at5["rss_mb"], 4),
           "children_rss_drift": round((end["children_rss_mb"] - at5["children_rss_mb"])
                                       / max(at5["children_rss_mb"], 1), 4),
           "fds_growth": end["fds"] - at5["fds"], "threads_growth": end["threads"] - at5["threads"],
           "late_steps": sum(r["late_steps"] for r in log), "steps": sum(r["steps"] for r in log),
           "stuck_keys": stuck, "cpus": os.cpu_count(), "loadavg_start": load0, "loadavg_end": os.getloadavg(),
           "log": log}
    out["meets_goal"] = bool(abs(out["rss_drift"]) <= 0.05 and out["fds_growth"] <= 0 and out["threads_growth"] <= 0
                             and stuck == 0)
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
