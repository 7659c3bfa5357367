"""Duel from pixels: train within a wall-clock budget, then evaluate over N fights per tier. JSON last line.

    nice -n 10 .venv/bin/python benchmarks/bench_duel_learning.py --algo ppo --minutes 30 --fights 200
    nice -n 10 .venv/bin/python benchmarks/bench_duel_learning.py --algo dqn --minutes 30
    nice -n 10 .venv/bin/python benchmarks/bench_duel_learning.py --algo es --minutes 30

Bars (issue 4): PPO beats Normal >= 90% over 200 fights and beats Hard more often than the scripted
expert does; DQN should beat Normal >= 60%; ES reported as measured. The scripted expert (true-state
policy, hakisa.games.duel.expert) and a uniformly random player are measured on the same fight seeds.
Evaluation seeds are disjoint from training seeds. The machine's load average is recorded, because
on a shared box the same budget buys very different amounts of compute.

Win rate against wall time (PPO): a copy of the weights every minute of training, each judged after
training on the same `--curve-fights` Normal fights (judging costs the training clock nothing), plus the
final weights on `--fights`; `minutes_to_90` is the first point at 90 %. Issue 21's levers:
    python benchmarks/bench_duel_learning.py --minutes 5 --init pretrained:duel-perception --set critic=state
The default recipe (`hakisa train --game duel`, a state teacher distilled into the pixel agent):
    python benchmarks/bench_duel_learning.py --algo distill --minutes 5 --curve-every 30
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hakisa.envs.make import make_vec as _make_vec
from hakisa.evaluate import evaluate
from hakisa.game import Game
from hakisa.model import act_mode, load_checkpoint
from hakisa.preprocess import ObsSpec

EVAL_SEED = 1_000_003  # training fights draw their seeds from the training seed's generator
# `hakisa train --game duel`'s recipe (games/duel.json: 80x45 frames, the tier mix, PPO's lr/epochs): the bench
# measures what users run
RECIPE = Game.load("duel").doc["train"]
make_vec = functools.partial(_make_vec, obs_spec=ObsSpec(**RECIPE["obs"]))


def tier_mix(tier: str, n: int):
    """One tier, or a comma list the n envs take in turn."""
    tiers = tier.split(",")
    return tiers[0] if len(tiers) == 1 else [tiers[i % len(tiers)] for i in range(n)]


def scripted(player: str, tier: str, fights: int, seed: int) -> float:
    from hakisa.games.duel.expert import expert_keys
    from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim

    sim = DuelSim(n=fights, tier=tier, seed=seed)
    rng = np.random.default_rng(seed)
    while not sim.done.all():
        keys = (
            expert_keys(sim.state) if player == "expert" else COMMAND_KEYS[rng.integers(0, len(COMMAND_KEYS), fights)]
        )
        for _ in range(4):  # the env's frame_skip
            sim.step(keys)
    return float((sim.winner == 1).mean())


class Snapshots:
    """PPO's on_update hook: the training win rate after every update, and a copy of the weights every
    `every_s` seconds of training, judged after training (so judging costs the training clock nothing)."""

    def __init__(self, every_s: float = 60.0):
        self.every_s, self.t0 = every_s, time.time()
        self.weights: list[tuple[float, int, dict]] = []
        self.train_curve: list[tuple[float, int, float | None]] = []

    def __call__(self, net, m: dict) -> None:
        t = time.time() - self.t0
        self.train_curve.append((round(t / 60, 3), m["global_step"], m.get("win_rate")))
        if t >= self.every_s * (len(self.weights) + 1):
            self.weights.append((t / 60, m["global_step"], {k: v.clone() for k, v in net.state_dict().items()}))


def init_net(init: str | None, envs):
    """--init's starting weights, loaded as `hakisa train --init` loads them; None: fresh."""
    if not init:
        return None
    return load_checkpoint(init, input_map=envs.input_map, obs_spec=envs.obs_spec)[0]


def train(algo: str, minutes: float, run_dir: Path, seed: int, tier: str, num_envs: int, extra: dict,
          init: str | None = None, snaps: Snapshots | None = None) -> dict:
    tier = tier_mix(tier, num_envs)
    if algo == "ppo":
        from hakisa.algos import ppo

        a = ppo.Args(
            **{
                **dict(
                    total_steps=10**9,
                    max_minutes=minutes,
                    seed=seed,
                    num_steps=128,
                    num_minibatches=4,
                    save_every=10,
                    progress=False,
                ),
                **RECIPE["ppo"],
                **extra,
            }
        )
        envs = make_vec("Hakisa/Duel-v0", num_envs, seed=seed, tier=tier)
        return ppo.train(envs, a, run_dir, net=init_net(init, envs), on_update=snaps)
    if algo == "distill":
        from hakisa.algos import distill

        recipe = {k: v for k, v in RECIPE.get("distill", {}).items()
                  if k not in ("num_envs", "init", "total_steps") and not k.startswith("_")}
        a = distill.Args(**{**dict(total_steps=10**9, max_minutes=minutes, seed=seed, progress=False),
                            **recipe, **extra})
        envs = make_vec("Hakisa/Duel-v0", num_envs, seed=seed, tier=tier)
        return distill.train(envs, a, run_dir, net=init_net(init, envs), on_update=snaps)
    if algo == "dqn":
        from hakisa.algos import dqn

        # total_steps is "unlimited" (the clock stops training), so express the epsilon decay as
        # a fraction of it that equals 300k env steps (hakisa train's 0.3 of its default 1M)
        a = dqn.Args(
            **{
                **dict(
                    total_steps=10**9,
                    max_minutes=minutes,
                    seed=seed,
                    buffer_size=200_000,
                    learning_starts=5_000,
                    eps_fraction=300_000 / 10**9,
                    eps_end=0.05,
                    save_every=20_000,
                    progress=False,
                ),
                **RECIPE["dqn"],
                **extra,
            }
        )
        return dqn.train(make_vec("Hakisa/Duel-v0", num_envs, seed=seed, tier=tier), a, run_dir)
    if algo in ("es", "ga"):
        from hakisa.algos import es, ga

        mod = es if algo == "es" else ga
        a = mod.Args(**{**dict(generations=10**6, max_minutes=minutes, seed=seed, progress=False), **extra})
        m = mod.train(make_vec("Hakisa/Duel-v0", a.pop_size * a.episodes_per_member, seed=seed, tier=tier), a, run_dir)
        return {k: v for k, v in m.items() if k != "history"}
    raise SystemExit(f"unknown algo {algo}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=["ppo", "distill", "dqn", "es", "ga"], default="ppo")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget")
    p.add_argument("--fights", type=int, default=200, help="evaluation fights per tier")
    p.add_argument(
        "--train-tier",
        default=RECIPE["opts"]["tier"],
        help="tier, or a comma list the training envs take in turn (easy fights teach the punish loop early)",
    )
    p.add_argument("--num-envs", type=int, default=None,
                   help="default: the recipe's (the learner's own, if it has one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", default=None, help="run dir (default runs/bench-duel-<algo>)")
    p.add_argument("--argmax", action="store_true", help="also evaluate the argmax policy (doubles eval time)")
    p.add_argument("--eval-only", action="store_true", help="skip training; evaluate --run's checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="learner Args overrides")
    p.add_argument("--init", default=None,
                   help="starting weights, as hakisa train --init (default: the recipe's, e.g. distill's; none: fresh)")
    p.add_argument("--curve-every", type=float, default=60.0,
                   help="seconds of training between the curve's snapshots (at least one a minute)")
    p.add_argument("--curve-fights", type=int, default=100,
                   help="ppo: Normal fights judged per minute-of-training snapshot (0: no curve)")
    args = p.parse_args()
    from hakisa.algos import distill, dqn, es, ga, ppo
    from hakisa.dcargs import parse_overrides

    extra = parse_overrides({"ppo": ppo, "distill": distill, "dqn": dqn, "es": es, "ga": ga}[args.algo].Args, args.set)
    run_dir = Path(args.run or f"runs/bench-duel-{args.algo}")
    load = [round(v, 2) for v in os.getloadavg()]
    t0 = time.time()
    init = RECIPE.get(args.algo, {}).get("init") if args.init is None else args.init
    init = None if init in ("", "none") else init
    args.num_envs = args.num_envs or RECIPE.get(args.algo, {}).get("num_envs") or RECIPE["num_envs"]
    snaps = Snapshots(args.curve_every) if args.algo in ("ppo", "distill") else None
    train_metrics = (
        {}
        if args.eval_only
        else train(args.algo, args.minutes, run_dir, args.seed, args.train_tier, args.num_envs, extra, init, snaps)
    )
    train_s = time.time() - t0
    torch.set_num_threads(1)
    env = make_vec("Hakisa/Duel-v0", 1)
    ck = run_dir / "checkpoint"  # the final weights (best/ is chosen on noisy training episodes)
    net, cfg = load_checkpoint(ck, input_map=env.input_map, obs_spec=env.obs_spec)
    mode = act_mode(cfg, deterministic=False)  # sampling is what PPO trained with; DQN acts on Q
    res = {
        "bench": "duel_learning",
        "algo": args.algo,
        "minutes_budget": args.minutes,
        "train_s": round(train_s, 1),
        "train_steps": train_metrics.get("global_step"),
        "train_metrics": {k: v for k, v in train_metrics.items() if not isinstance(v, (dict, list))},
        "checkpoint": str(ck),
        "fights": args.fights,
        "init": init,
        "sets": args.set,
        "seed": args.seed,
        "loadavg_start": load,
        "cpus": os.cpu_count(),
    }
    for tier in ("normal", "hard"):
        env = make_vec("Hakisa/Duel-v0", min(50, args.fights), seed=EVAL_SEED, tier=tier)
        s = evaluate(net, env, args.fights, mode, seed=EVAL_SEED)
        res[f"{tier}_win_rate"] = s.get("win_rate")
        res[f"{tier}_mean_return"] = round(s["mean_return"], 2)
        if mode == "sample" and args.argmax:  # argmax may differ from the sampled policy it trained
            res[f"{tier}_win_rate_argmax"] = evaluate(net, env, args.fights, "argmax", seed=EVAL_SEED).get("win_rate")
        res[f"expert_{tier}_win_rate"] = scripted("expert", tier, args.fights, EVAL_SEED)
        res[f"random_{tier}_win_rate"] = scripted("random", tier, args.fights, EVAL_SEED)
    if snaps is not None and snaps.weights and args.curve_fights:
        # win rate against minutes of training: each minute's weights over the same Normal fights
        env = make_vec("Hakisa/Duel-v0", min(50, args.curve_fights), seed=EVAL_SEED, tier="normal")
        curve = []
        for minute, step, sd in snaps.weights:
            net.load_state_dict(sd)
            wr = evaluate(net, env, args.curve_fights, mode, seed=EVAL_SEED).get("win_rate")
            curve.append({"minutes": round(minute, 2), "steps": step, "normal_win_rate": wr})
        curve.append({"minutes": round(train_metrics.get("time_s", train_s) / 60, 2), "steps": res["train_steps"],
                      "normal_win_rate": res["normal_win_rate"], "fights": args.fights})  # the final weights
        res["curve"] = curve
        res["curve_fights"] = args.curve_fights
        res["minutes_to_90"] = next((c["minutes"] for c in curve if c["normal_win_rate"] >= 0.9), None)
        res["train_curve"] = snaps.train_curve[:: max(1, len(snaps.train_curve) // 60)]
    res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    pixel_policy = args.algo in ("ppo", "distill")  # issue 4's PPO bars, and issue 21's for the default recipe
    res["bars"] = {
        "ppo_normal>=0.9": res["normal_win_rate"] >= 0.9 if pixel_policy else None,
        "ppo_hard>expert": res["hard_win_rate"] > res["expert_hard_win_rate"] if pixel_policy else None,
        "dqn_normal>=0.6": res["normal_win_rate"] >= 0.6 if args.algo == "dqn" else None,
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
