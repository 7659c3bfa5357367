"""`hakisa explore`: let an agent play N episodes and write them to an episode store.

    hakisa explore --env Hakisa/Duel-v0 --checkpoint runs/duel-ppo --episodes 50 --epsilon 0.1 --out datasets/duel-explore
    hakisa explore --env Hakisa/Duel-v0 --episodes 20 --out datasets/duel-random     # untrained net: near-uniform

Exploration is sampling from the policy heads (default), or epsilon-greedy over them (`--greedy`
with `--epsilon`). DQN checkpoints act greedily on Q (`--head q`). The store is `hakisa.data`'s
format (source "explore"); `hakisa consolidate` learns from it offline.
"""
from __future__ import annotations

import argparse
import json

import torch


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="Hakisa/Duel-v0")
    p.add_argument("--tier", default="normal")
    p.add_argument("--checkpoint", help="the agent (a checkpoint or run dir); default: a fresh, untrained net")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--epsilon", type=float, default=0.0, help="probability of a uniformly random action")
    p.add_argument("--greedy", action="store_true", help="argmax actions (plus epsilon) instead of sampling")
    p.add_argument("--head", choices=["auto", "policy", "q"], default="auto")
    p.add_argument("--out", required=True, help="episode store directory (created or appended to)")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="small", help="encoder of the fresh net when there is no --checkpoint")


def main(args) -> int:
    from hakisa.data import EpisodeWriter
    from hakisa.envs.make import DUEL_ID, make_vec
    from hakisa.model import HakisaNet, load_checkpoint
    from hakisa.phases.play import evaluate

    kw = {"tier": args.tier} if args.env == DUEL_ID else {}
    if args.env == DUEL_ID and args.checkpoint:  # render the sim at the size the checkpoint was trained on
        from hakisa.model import checkpoint_obs_spec

        kw["obs_spec"] = checkpoint_obs_spec(args.checkpoint)
    env = make_vec(args.env, min(args.num_envs, args.episodes), seed=args.seed, **kw)
    algo = None
    if args.checkpoint:
        net, cfg = load_checkpoint(args.checkpoint, input_map=env.input_map, obs_spec=env.obs_spec)
        algo = cfg.get("algo", {}).get("algo")
    else:
        torch.manual_seed(args.seed)
        net = HakisaNet(env.obs_spec, env.input_map, encoder=args.encoder)
    head = args.head if args.head != "auto" else ("q" if algo == "dqn" else "policy")
    meta = {"input_map": env.input_map, "obs_spec": env.obs_spec, "source": "explore", "game": args.env,
            "fps": env.metadata.get("render_fps", 15), "agent": str(args.checkpoint or "untrained"),
            "epsilon": args.epsilon, "head": head}
    with EpisodeWriter(args.out, meta) as w:
        s = evaluate(net, env, args.episodes, deterministic=args.greedy or head == "q", head=head, seed=args.seed,
                     collect=w, epsilon=args.epsilon, progress=True)
    env.close()
    print(json.dumps({"out": args.out, **s}))
    return 0
