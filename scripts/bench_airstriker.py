"""Airstriker from pixels: PPO (hakisa.algos.ppo) for a fixed wall-clock budget, then its score vs random.

    nice -n 10 python scripts/bench_airstriker.py                 # 30 minutes of training, the issue's bar
    python scripts/bench_airstriker.py --minutes 2 --eval-episodes 5   # a quick look

Protocol, all in one run so both agents see the same machine and the same env:
1. random: a uniform-random agent over the input map's commands, `--eval-episodes` episodes;
2. calibrate: a short PPO run measures env steps/s *now* (the box is shared, so speed varies), and
   the training run gets total_steps = steps/s x budget, so its LR anneals over the real budget;
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
    """CPU time of this process and its reaped children (the emulator subprocesses count too)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def stats(xs: list[float]) -> dict:
    return {"episodes": len(xs), "mean_score": float(np.mean(xs)), "std_score": float(np.std(xs))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="training budget (wall clock)")
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
    m = ppo.train(envs, calib, run_dir=None)
    total = int(m["sps"] * a.minutes * 60)
    args = ppo.Args(**{**base.__dict__, "total_steps": total})
    print(f"calibration: {m['sps']:.0f} env steps/s -> total_steps={total}", flush=True)
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
            return net.act(torch.from_numpy(np.asarray(obs)), deterministic=False).numpy()

    trained = evaluate(eval_envs, act, a.eval_episodes, a.seed + 1000)
    eval_envs.close()
    out = {"game": AIRSTRIKER, "random": stats(rand), "ppo": stats(trained),
           "ratio": float(np.mean(trained) / max(1e-9, np.mean(rand))),
           "bar_3x_random": bool(np.mean(trained) >= 3 * np.mean(rand)),
           "train_wall_s": train_s, "train_cpu_s": train_cpu, "budget_s": a.minutes * 60,
           "env_steps": metrics.get("global_step"), "train_sps": metrics.get("sps"),
           "train_mean_shaped_return_last100": metrics.get("mean_return"),
           "ppo_args": {**args.__dict__}, "env_kw": env_kw, "num_envs": a.num_envs,
           "total_wall_s": time.time() - t0, "run": a.run, "scores": {"random": rand, "ppo": trained}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
