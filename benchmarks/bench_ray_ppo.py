"""PPO rollouts on Ray vs the serial trainer, on the duel's simulator: the same wall-clock budget, seed and
recipe; env steps/s, the training win rate against wall time, and each final checkpoint judged on the same
fixed fights. The LAST line printed is one JSON object (also written to --out).

    nice -n 10 .venv/bin/python benchmarks/bench_ray_ppo.py --minutes 5 --workers 2 --out benchmarks/ray_ppo.json

Both runs take `hakisa train --game duel`'s recipe (benchmarks/bench_duel_learning.py's `train` for the serial
one). The Ray run splits the same --num-envs among --workers, so an update sees as many samples in both and
only where the envs step differs. Each run's --minutes count from its first step: Ray's start and the
workers' (seconds) come before it, and show in wall_s and on the curve's time axis (from the run's start).
A Ray batch more than one policy version old is dropped (train_ray's max_lag=1): dropped_batches says how
often uneven workers made one wait that long.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_duel_learning as bdl  # noqa: E402  its recipe, training-curve hook and serial trainer

from hakisa.evaluate import evaluate  # noqa: E402
from hakisa.model import load_checkpoint  # noqa: E402


def ray_train(minutes: float, run_dir: Path, seed: int, tier: str, num_envs: int, workers: int, extra: dict,
              snaps: bdl.Snapshots, ray_address: str | None) -> dict:
    from hakisa.algos import ppo
    from hakisa.algos.ppo_ray import train_ray
    from hakisa.distributed import EnvRecipe

    # the serial bench's Args, so the two runs differ only in where the rollouts run
    a = ppo.Args(**{**dict(total_steps=10**9, max_minutes=minutes, seed=seed, num_steps=128, num_minibatches=4,
                           save_every=10, progress=False), **bdl.RECIPE["ppo"], **extra})
    recipe = EnvRecipe(game="duel", num_envs=max(1, num_envs // workers), seed=seed, opts={"tier": tier},
                       obs=f"{bdl.RECIPE['obs']['width']}x{bdl.RECIPE['obs']['height']}")
    return train_ray(recipe, a, workers, run_dir, ray_address=ray_address, on_update=snaps)


def judge(ck: Path, fights: int) -> dict:
    torch.set_num_threads(1)
    env = bdl.make_vec("Hakisa/Duel-v0", 1)
    net, _ = load_checkpoint(ck, input_map=env.input_map, obs_spec=env.obs_spec)
    out = {}
    for tier in ("normal", "hard"):  # the same fights for both runs: the fixed evaluation seed
        env = bdl.make_vec("Hakisa/Duel-v0", min(50, fights), seed=bdl.EVAL_SEED, tier=tier)
        out[f"{tier}_win_rate"] = evaluate(net, env, fights, "sample", seed=bdl.EVAL_SEED).get("win_rate")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="training wall-clock budget of each run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--num-envs", type=int, default=bdl.RECIPE["num_envs"], help="envs in all (split among workers)")
    p.add_argument("--train-tier", default=bdl.RECIPE["opts"]["tier"])
    p.add_argument("--fights", type=int, default=200, help="evaluation fights per tier for each final checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default="runs/bench-ray-ppo", help="run dirs: <runs>/serial and <runs>/ray")
    p.add_argument("--ray-address", default=None, help="a cluster to run the Ray side on (default: local)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ppo Args overrides (both runs)")
    p.add_argument("--out", default=None, help="also write the JSON here (e.g. benchmarks/ray_ppo.json)")
    args = p.parse_args()
    from hakisa.algos import ppo
    from hakisa.dcargs import parse_overrides

    extra = parse_overrides(ppo.Args, args.set)
    res = {"bench": "ray_ppo", "minutes_budget": args.minutes, "workers": args.workers, "num_envs": args.num_envs,
           "seed": args.seed, "fights": args.fights, "sets": args.set, "cpus": os.cpu_count(),
           "loadavg_start": [round(v, 2) for v in os.getloadavg()]}
    for name in ("serial", "ray"):
        run_dir = Path(args.runs) / name
        snaps = bdl.Snapshots(every_s=float("inf"))  # the training curve only; no weight copies
        t0 = time.time()
        if name == "serial":
            m = bdl.train("ppo", args.minutes, run_dir, args.seed, args.train_tier, args.num_envs, extra, snaps=snaps)
        else:
            m = ray_train(args.minutes, run_dir, args.seed, args.train_tier, args.num_envs, args.workers, extra,
                          snaps, args.ray_address)
        res[name] = {
            "wall_s": round(time.time() - t0, 1),
            "env_steps": m.get("global_step"),
            "env_steps_per_s": round(m.get("sps", 0.0), 1),
            "updates": m.get("update"),
            "train_win_rate": m.get("win_rate"),
            **{k: m[k] for k in ("lag_mean", "lag_max", "lag_hist", "dropped_batches", "workers_replaced") if k in m},
            **judge(run_dir / "checkpoint", args.fights),
            # training win rate (last 100 episodes) after each update: [minutes, env steps, win rate]
            "curve": snaps.train_curve[:: max(1, len(snaps.train_curve) // 100)],
        }
    res["speedup"] = round(res["ray"]["env_steps_per_s"] / max(res["serial"]["env_steps_per_s"], 1e-9), 3)
    res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    line = json.dumps(res)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
