"""`hakisa train`: the fast online path, PPO or branching DQN straight on vector envs.

    hakisa train --env Hakisa/Duel-v0 --algo ppo --tier normal --steps 2000000 --run duel-ppo
    tensorboard --logdir runs/          # charts/episodic_return, charts/win_rate, losses/...
    hakisa play --checkpoint runs/duel-ppo --episodes 200

Writes runs/<name>/: config.json, TensorBoard events, checkpoint/ (latest) and best/ (best rolling
training score). Any Args field of the learner can be set with --set key=value.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from hakisa.capture import ObsSpec
from hakisa.envs.make import DUEL_ID, make_vec

# The duel's measured PPO recipe (scripts/bench_duel_learning.py): 80x45 frames (exact on the 4-px
# grid, ~2x the steps/s of 160x90), 32 fights over the tiers with normal twice (easy fights show the
# punish loop early; normal's noisy boss is the hardest to exploit: the mix easy,normal,hard measured
# normal 82-87 %, this one 94.5 %), lr 1e-3 with 2 epochs per rollout. DQN on the same envs: minibatches
# of 256 every 32 env steps (the replay ratio of 64 every 4 at a quarter of the per-step overhead:
# 719 steps/s on 2 cores), lr 2.5e-4, target copied every 500 gradient steps; 30 min -> normal 95 %,
# hard 97 % (benchmarks/duel_dqn_seed0.json). Command-line --set/--obs/--tier/--num-envs still win.
# PPO's convolutions run in bfloat16 where the CPU has native bf16 (bf16=None: decided at run time;
# weights, heads, log-probs and values stay float32): measured over 30 min here, 3,518 vs 2,945 steps/s and normal 98 % / hard 100 % against
# 94.5 % / 98 % in float32 (benchmarks/duel_ppo_mixN_bf16_seed0.json). Elsewhere emulated bf16 is slower.
DUEL_RECIPE = {"obs": "80x45", "tier": "easy,normal,normal,hard", "num_envs": 32,
               "ppo": {"lr": 1e-3, "update_epochs": 2, "threads": 2, "bf16": None},
               "dqn": {"batch_size": 256, "train_every": 32, "lr": 2.5e-4, "target_every": 500, "threads": 2}}


def parse_obs(text: str) -> ObsSpec:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--obs {text!r}: expected WIDTHxHEIGHT, e.g. 80x45") from None
    return ObsSpec(width=w, height=h)


def duel_kwargs(tier: str | None, obs: str | None, num_envs: int) -> dict:
    """make_vec kwargs for the duel: one tier, or a comma list the envs take in turn; the obs size."""
    tiers = (tier or DUEL_RECIPE["tier"]).split(",")
    return {"tier": tiers[0] if len(tiers) == 1 else [tiers[i % len(tiers)] for i in range(num_envs)],
            "obs_spec": parse_obs(obs or DUEL_RECIPE["obs"])}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default=DUEL_ID, help="Hakisa/Duel-v0, a stable-retro game id, or Toy/KeyPress-v0 / Toy/Click-v0")
    p.add_argument("--algo", choices=["ppo", "dqn"], default="ppo")
    p.add_argument("--tier", default=None,
                   help="duel boss tier (easy | normal | hard), or a comma list the envs take in turn "
                        f"(duel default {DUEL_RECIPE['tier']})")
    p.add_argument("--obs", default=None, help=f"duel frame size WxH (default {DUEL_RECIPE['obs']})")
    p.add_argument("--steps", type=int, default=1_000_000, help="total env steps")
    p.add_argument("--num-envs", type=int, default=None, help=f"parallel envs (default {DUEL_RECIPE['num_envs']} on the duel, else 16)")
    p.add_argument("--run", default=None, help="run name (default: <algo>-<env>)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="small", help="small | nature | torchvision:<name>")
    p.add_argument("--init", metavar="CHECKPOINT", help="start from this checkpoint's weights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any learner Args field, e.g. --set lr=1e-4 --set ent_coef=0.02")
    p.add_argument("--no-progress", action="store_true")


def parse_overrides(args_cls, pairs: list[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(args_cls)}
    out = {}
    for kv in pairs:
        k, _, v = kv.partition("=")
        if k not in fields:
            raise SystemExit(f"--set {k}: not a field of {args_cls.__module__}.Args ({sorted(fields)})")
        try:
            out[k] = None if v in ("None", "none", "null") else json.loads(v)
        except json.JSONDecodeError:
            out[k] = v  # a bare string
    return out


def run_algo(algo, envs, a, args) -> tuple[Path, dict]:
    """Shared by train and evolve: optional --init weights, runs/<name>, train, close the envs."""
    net = None
    if args.init:
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(args.init, input_map=envs.input_map, obs_spec=envs.obs_spec)
    run_dir = Path(args.runs_dir) / (args.run or f"{args.algo}-{args.env.replace('/', '-')}")
    try:
        return run_dir, algo.train(envs, a, run_dir, net=net)
    finally:
        envs.close()


def main(args) -> int:
    if args.algo == "ppo":
        from hakisa.algos import ppo as algo
    else:
        from hakisa.algos import dqn as algo
    duel = args.env == DUEL_ID
    recipe = DUEL_RECIPE.get(args.algo, {}) if duel else {}
    a = algo.Args(**{"total_steps": args.steps, "seed": args.seed, "encoder": args.encoder,
                     "progress": not args.no_progress, **recipe, **parse_overrides(algo.Args, args.set)})
    n = args.num_envs or (DUEL_RECIPE["num_envs"] if duel else 16)
    kw = duel_kwargs(args.tier, getattr(args, "obs", None), n) if duel else {}
    envs = make_vec(args.env, n, seed=args.seed, **kw)
    run_dir, metrics = run_algo(algo, envs, a, args)
    print(json.dumps({"run": str(run_dir), "algo": args.algo, "env": args.env, **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}}))
    return 0
