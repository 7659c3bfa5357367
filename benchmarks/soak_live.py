"""Live-learning soak: `hakisa train` learns on real windows for a long time while their pages are crashed.

    python benchmarks/soak_live.py --game benchmarks/zoo/catch.json --minutes 120 --kill-every 20 \
        --out benchmarks/soak_live_DATE.json

The run is the command line's (`hakisa train --game G --windows N --minutes M`, parsed by train's own parser and
set up by `hakisa.phases.train.live_setup`, so the learner and its defaults are the product's), on a Fleet opened
here so that this script can watch it: every `--kill-every` minutes it SIGKILLs the renderer processes of one
window's Chromium (the windows in turn), which the Fleet must notice, release that window's keys, relaunch its
page and go on. Every minute a sampler logs this process's RSS, fds and threads, its children's RSS, the faults
so far and the steps. After the run: per 10 minutes, the steps, late steps, the step period's jitter (periods that
span a reset or a relaunch left out, as `Fleet.timing` does) and the mean score of the games that ended in them;
the keys still down on each window's X server (read before the windows close); the faults. Last line: JSON.
Goals (issue 38): RSS within +-5 % from minute 10 to the end, fds and threads flat, 0 keys down, every crash
recovered, the score curve rising or holding.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import keys_down, sample  # noqa: E402  (the play soak's probes)


def kill_renderers(live) -> int:
    """SIGKILL the renderer processes under window `live`'s Chromium (what a renderer crash looks like)."""
    kids = psutil.Process(live.app._proc.pid).children(recursive=True)
    victims = [k for k in kids if "--type=renderer" in " ".join(k.cmdline())]
    for v in victims:
        v.kill()
    return len(victims)


def per_bin(envs, episodes: list, t0: float, bin_min: float) -> list[dict]:
    """Steps, late steps, jitter and the mean score of ended games per `bin_min` minutes."""
    ticks = np.asarray(envs._ticks) - t0
    late = np.asarray(envs._late) > 0
    reset_after = np.asarray(envs._reset_after, bool)
    period = np.diff(ticks)
    real = ~reset_after[:-1]  # a period that spans a reset (or a relaunch) is not a real-time step
    nominal = 1.0 / envs.hz
    rows = []
    for b in range(int(np.ceil(ticks[-1] / 60 / bin_min)) if len(ticks) else 0):
        lo, hi = b * bin_min * 60, (b + 1) * bin_min * 60
        m = (ticks >= lo) & (ticks < hi)
        pm = m[1:] & real
        eps = [e for e in episodes if lo <= e["minute"] * 60 < hi and not e["truncated"]]
        scores = [e.get("score", e["return"]) for e in eps]
        rows.append({"minutes": [round(lo / 60, 1), round(hi / 60, 1)], "steps": int(m.sum()),
                     "late_steps": int((late & m).sum()),
                     "jitter": round(float(period[pm].std() / nominal), 4) if pm.sum() > 2 else None,
                     "games": len(eps), "mean_score": round(float(np.mean(scores)), 3) if scores else None})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="benchmarks/zoo/catch.json")
    p.add_argument("--algo", default="srdqn")
    p.add_argument("--windows", type=int, default=2)
    p.add_argument("--minutes", type=float, default=120.0)
    p.add_argument("--kill-every", type=float, default=20.0, help="minutes between two renderer kills")
    p.add_argument("--bin", type=float, default=10.0, help="minutes per row of the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", default="runs/soak_live")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()

    from hakisa.envs.fleet import Fleet
    from hakisa.game import Game
    from hakisa.phases import train
    from hakisa.phases.live_train import train_live

    tp = argparse.ArgumentParser()
    train.add_args(tp)
    targs = tp.parse_args(["--game", a.game, "--algo", a.algo, "--windows", str(a.windows), "--minutes",
                           str(a.minutes), "--seed", str(a.seed), "--no-progress"])
    game = Game.load(a.game)
    largs, live_args, net, init_cfg = train.live_setup(game, importlib.import_module(f"hakisa.algos.{a.algo}"), targs)
    proc, log, load0 = psutil.Process(), [], os.getloadavg()
    kills: list[dict] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    with Fleet(game, a.windows, private=True, obs_spec=net.obs_spec if net else None,
               background_resets=True) as envs:  # the Fleet train_live opens
        def watch() -> None:  # the sampler and the killer: one thread, one clock
            next_sample, next_kill, k = 60.0, a.kill_every * 60, 0
            while not stop.wait(1.0):
                t = time.perf_counter() - t0
                if t >= next_kill:
                    next_kill += a.kill_every * 60
                    i = k % a.windows
                    k += 1
                    try:
                        n = kill_renderers(envs.lives[i])
                        kills.append({"minute": round(t / 60, 2), "window": i, "renderers": n})
                    except Exception as e:  # the window is being relaunched this instant: the next one
                        kills.append({"minute": round(t / 60, 2), "window": i, "error": str(e)})
                if t >= next_sample:
                    next_sample += 60.0
                    row = {"minute": round(t / 60, 2), **sample(proc), "steps": len(envs._ticks) * a.windows,
                           "faults": len(envs.faults)}
                    log.append(row)
                    print(json.dumps(row), flush=True)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            m = train_live(game, a.algo, largs, live_args, Path(a.run), net=net, init_cfg=init_cfg, envs=envs)
        finally:
            stop.set()
            watcher.join(5)
        down = [keys_down(lv.display) for i, lv in enumerate(envs.lives) if not envs._dead[i]]
        curve = json.loads((Path(a.run) / "curve.json").read_text())
        bins = per_bin(envs, curve["episodes"], t0, a.bin)

    at10 = next((r for r in log if r["minute"] >= 10), log[0]) if log else None
    end = log[-1] if log else None
    faults = m["faults"]
    out = {
        "bench": "soak_live", "game": game.name, "algo": a.algo, "windows": a.windows, "seed": a.seed,
        "minutes": m["minutes"], "kill_every": a.kill_every, "steps": m["steps"], "kills": kills,
        "faults": faults, "recovered": sum(f["outcome"] == "relaunched" for f in faults),
        "rss_drift_from_10": None if not at10 else round((end["rss_mb"] - at10["rss_mb"]) / at10["rss_mb"], 4),
        "children_rss_mb": None if not end else [at10["children_rss_mb"], end["children_rss_mb"]],
        "fds": None if not end else [at10["fds"], end["fds"]],
        "threads": None if not end else [at10["threads"], end["threads"]],
        "keys_down_at_end": down, "per_10_min": bins, "timing": m["timing"],
        "score_first10": m.get("score_first10"), "score_last10": m.get("score_last10"),
        "best_judged": m.get("best_judged"), "curve": m["curve"],
        "cpus": os.cpu_count(), "loadavg_start": load0, "loadavg_end": os.getloadavg(), "log": log,
    }
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
