"""Airstriker from pixels: PPO (hakisa.algos.ppo) for a fixed wall-clock budget, then its score vs random.

    nice -n 10 python benchmarks/bench_airstriker.py                      # the issue's bar: 30 min on 2 cores
    python benchmarks/bench_airstriker.py --cpu-minutes 4 --eval-episodes 5   # a quick look

Budget: "30 minutes of CPU" means 30 minutes of an exclusive 2-core box, i.e. 60 CPU-minutes. The
box this was written on is shared, so wall time says little; the budget is counted in CPU seconds of
this process plus its emulator subprocesses (psutil), with a wall-clock cap as a safety net.

Protocol, all in one run so both agents see the same machine and the same env:
1. random: a uniform-random agent over the input map's commands, `--eval-episodes` episodes;
2. calibrate: a short PPO run measures CPU seconds (and wall seconds) per env step, and the training
   run gets total_steps = budget / cost per step, so its LR anneals over the real budget;
3. train PPO from pixels (RetroEnv defaults: 160x112 gray x4, frame skip 4, turbo fire), reward =
   score delta x reward_scale minus a life-loss penalty (shaping for learning only);
4. evaluate the final policy (sampling, as trained) for the same number of episodes.
"score" is always the game's own: the episode's sum of score deltas (`info["game_score"]`).
Each eval env plays exactly episodes/num_envs episodes, so short episodes are not over-counted.
The last line printed is JSON: random and PPO mean±std score, their ratio, and the bar (ratio >= 3).
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from hakisa.algos import ppo
from hakisa.envs.retro import AIRSTRIKER, make_retro_vec


def evaluate(envs, act, episodes: int, seed: int) -> list[float]:
    """Scores of `episodes` episodes; env i plays exactly episodes / n of them (n must divide episodes)."""
    n = envs.num_envs
    per_env = episodes // n
    scores: list[list[float]] = [[] for _ in range(n)]
    obs, _ = envs.reset(seed=seed)
    while min(len(s) for s in scores) < per_env:
        obs, _, term, trunc, info = envs.step(act(obs))
        for i in np.flatnonzero(term | trunc):
            if len(scores[i]) < per_env:
                scores[i].append(float(info["final_info"]["game_score"][i]))
    return [s for env_scores in scores for s in env_scores]


def cpu_seconds() -> float:
    """CPU time of this process, its live children (the emulator workers) and its reaped children."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + kids.ru_utime + kids.ru_stime


def stats(xs: list[float]) -> dict:
    return {"episodes": len(xs), "mean_score": float(np.mean(xs)), "std_score": float(np.std(xs))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-minutes", type=float, default=60.0, help="training budget in CPU minutes (2 cores x 30 min)")
    p.add_argument("--max-wall-minutes", type=float, default=90.0, help="cap on training wall time")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--eval-envs", type=int, default=5)
    p.add_argument("--eval-episodes", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward-scale", type=float, default=0.05, help="one enemy (20 points) = 1.0")
    p.add_argument("--life-penalty", type=float, default=20.0, help="in score points, before scaling")
    p.add_argument("--run", default="runs/bench-airstriker")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="PPO Args override")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args()
    if a.eval_episodes % a.eval_envs:
        raise SystemExit("--eval-episodes must be a multiple of --eval-envs")
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    env_kw = {"reward_scale": a.reward_scale, "life_penalty": a.life_penalty}
    t0 = time.time()

    # 1. random
    eval_envs = make_retro_vec(AIRSTRIKER, a.eval_envs, seed=a.seed + 1000)
    rng = np.random.default_rng(a.seed)
    n_cmd = int(eval_envs.input_map.nvec[0])
    rand = evaluate(eval_envs, lambda obs: np.stack([rng.integers(0, n_cmd, len(obs)), np.zeros(len(obs), int),
                                                     np.zeros(len(obs), int)], 1), a.eval_episodes, a.seed + 1000)
    print("random", json.dumps(stats(rand)), flush=True)

    # 2. calibrate, 3. train
    envs = make_retro_vec(AIRSTRIKER, a.num_envs, seed=a.seed, **env_kw)
    base = ppo.Args(seed=a.seed, progress=not a.no_progress, **overrides)
    calib = ppo.Args(**{**base.__dict__, "total_steps": 2 * a.num_envs * base.num_steps, "progress": False})
    c0, w0 = cpu_seconds(), time.time()
    ppo.train(envs, calib, run_dir=None)
    cpu_per_step = (cpu_seconds() - c0) / calib.total_steps
    wall_per_step = (time.time() - w0) / calib.total_steps
    total = int(min(a.cpu_minutes * 60 / cpu_per_step, a.max_wall_minutes * 60 / wall_per_step))
    # max_minutes: PPO's own wall-clock stop, in case the shared box slows down after calibration
    args = ppo.Args(**{**base.__dict__, "total_steps": total, "max_minutes": base.max_minutes or a.max_wall_minutes})
    print(f"calibration: {cpu_per_step * 1e3:.1f} CPU ms and {wall_per_step * 1e3:.1f} wall ms per env step "
          f"-> total_steps={total}", flush=True)
    cpu0, t_train = cpu_seconds(), time.time()
    metrics = ppo.train(envs, args, run_dir=a.run)
    train_s, train_cpu = time.time() - t_train, cpu_seconds() - cpu0
    envs.close()

    # 4. evaluate the final policy with the same protocol as random
    from hakisa.model import load_checkpoint

    net, _ = load_checkpoint(Path(a.run) / "checkpoint", input_map=eval_envs.input_map, obs_spec=eval_envs.obs_spec)
    net.eval()

    def act(obs):
        with torch.inference_mode():
            return net.act(torch.from_numpy(np.asarray(obs)), "sample").numpy()

    trained = evaluate(eval_envs, act, a.eval_episodes, a.seed + 1000)
    eval_envs.close()
    out = {"game": AIRSTRIKER, "random": stats(rand), "ppo": stats(trained),
           "ratio": float(np.mean(trained) / max(1e-9, np.mean(rand))),
           "bar_3x_random": bool(np.mean(trained) >= 3 * np.mean(rand)),
           "train_wall_s": train_s, "train_cpu_s": train_cpu, "budget_cpu_s": a.cpu_minutes * 60,
           "cap_wall_s": a.max_wall_minutes * 60, "calib_cpu_ms_per_step": cpu_per_step * 1e3,
           "env_steps": metrics.get("global_step"), "train_sps": metrics.get("sps"),
           "train_mean_shaped_return_last100": metrics.get("mean_return"),
           "ppo_args": {**args.__dict__}, "env_kw": env_kw, "num_envs": a.num_envs,
           "total_wall_s": time.time() - t0, "run": a.run, "scores": {"random": rand, "ppo": trained}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
