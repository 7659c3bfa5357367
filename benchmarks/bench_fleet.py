"""Live steps/s with 1, 2 and 4 windows while the learner trains: throughput, CPU use, late steps, jitter.

    python benchmarks/bench_fleet.py --game pop --init runs/bench-pop/study-lead/best --windows 1 2 4 --seconds 90

For each N, `train_live` (what `hakisa train --game G --windows N` runs) plays N windows (N > 1: each on
its own private Xvfb) for `--seconds` with the DQN learner training in the background. Reported per N:
env steps/s (summed over windows), the actor's late-step share and period jitter, the learner's gradient
steps, and the machine's CPU use over the run (psutil, percent of all cores). Prints JSON as its last line.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import psutil


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="pop")
    p.add_argument("--init", default=None, help="a checkpoint to start from (default: an untrained net)")
    p.add_argument("--algo", choices=["dqn", "ppo"], default="dqn")
    p.add_argument("--windows", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seconds", type=float, default=90.0)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()

    from hakisa.algos import dqn, ppo
    from hakisa.game import Game
    from hakisa.model import load_checkpoint
    from hakisa.phases.live_train import LiveArgs, train_live

    game = Game.load(a.game)
    algo = dqn if a.algo == "dqn" else ppo
    rows = []
    load0 = os.getloadavg()
    for n in a.windows:
        net, cfg = load_checkpoint(a.init, input_map=game.input_map) if a.init else (None, None)
        args = algo.LiveArgs(total_steps=10**12, progress=False)
        psutil.cpu_percent(None)  # start the interval
        cpu_times0 = psutil.cpu_times()
        with tempfile.TemporaryDirectory() as tmp:
            m = train_live(game, a.algo, args, LiveArgs(windows=n, minutes=a.seconds / 60), tmp, net=net, init_cfg=cfg)
        cpu = psutil.cpu_percent(None)
        t1 = psutil.cpu_times()
        rows.append(
            {
                "windows": n,
                "sps": m["sps"],
                "steps": m["steps"],
                "minutes": m["minutes"],
                "sps_per_window": round(m["sps"] / n, 2),
                "cpu_percent": cpu,
                "cpu_user_s": round(t1.user - cpu_times0.user, 1),
                "cpu_system_s": round(t1.system - cpu_times0.system, 1),
                "grad_steps": m["grad_steps"],
                "replay_ratio": m["replay_ratio"],
                "timing": m["timing"],
                "episodes": m.get("episodes"),
                "mean_score": m.get("mean_score"),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = {
        "bench": "fleet",
        "game": a.game,
        "algo": a.algo,
        "init": a.init,
        "seconds": a.seconds,
        "cpus": os.cpu_count(),
        "hz": game.hz,
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "rows": rows,
    }
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
