"""`hakisa explore`: let an agent play N episodes and write them to an episode store.

    hakisa explore --game pop --checkpoint runs/pop-bc --episodes 10 --out datasets/pop-explore   # its window
    hakisa explore --game duel --checkpoint runs/duel-ppo --episodes 50 --epsilon 0.1 --out datasets/duel-explore
    hakisa explore --game duel --episodes 20 --out datasets/duel-random      # untrained net: near-uniform

A game with a simulator is explored there (unless `--live`); a game without one on its real window,
launched when its file says how: the actions sent, the rewards its screen rules read, and the acting
policy's log-probs and values, so that `hakisa consolidate` (DQN, or PPO from the stored log-probs) can
learn from it. Exploration samples from the policy heads (default), or is epsilon-greedy over them
(`--greedy` with `--epsilon`). DQN checkpoints act greedily on Q (`--head q`).
"""
from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

import torch


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default=None, help="a game file: a shipped name or a path")
    from hakisa.backends import add_backend_arg

    add_backend_arg(p)
    p.add_argument(
        "--env", default=None, help="an env id instead of a game (Hakisa/Duel-v0, a stable-retro game, Toy/...)"
    )
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option from its file (e.g. tier=hard)")
    p.add_argument("--live", action="store_true", help="play the game's real window even when it has a simulator")
    p.add_argument("--checkpoint", help="the agent (a checkpoint or run dir); default: a fresh, untrained net")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--epsilon", type=float, default=0.0, help="probability of a uniformly random action")
    p.add_argument("--greedy", action="store_true", help="argmax actions (plus epsilon) instead of sampling")
    p.add_argument("--head", choices=["auto", "policy", "q"], default="auto")
    p.add_argument("--out", required=True, help="episode store directory (created or appended to)")
    p.add_argument("--num-envs", type=int, default=8, help="parallel simulator envs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="small", help="encoder of the fresh net when there is no --checkpoint")
    p.add_argument("--workers", type=int, default=0,
                   help="play on N Ray workers (hakisa[ray]), each with its own envs (live: its own private windows)")
    p.add_argument("--windows", type=int, default=1, help="live with --workers: private windows per worker")
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (host:port or auto; default $RAY_ADDRESS, else a local Ray)")


def main(args) -> int:
    from hakisa.data import EpisodeWriter
    from hakisa.evaluate import evaluate
    from hakisa.game import Game, parse_opts
    from hakisa.model import HakisaNet, act_mode, checkpoint_obs_spec, load_checkpoint

    game = Game.load(args.game) if args.game else None
    if game is None and not args.env:
        raise SystemExit("hakisa explore: give --game NAME|PATH (or --env ID)")
    opts = parse_opts(args.opt)
    live = game is not None and (args.live or not game.sim)
    if getattr(args, "workers", 0):
        return main_ray(game, args, opts, live)
    with ExitStack() as stack:
        spec = checkpoint_obs_spec(args.checkpoint) if args.checkpoint else None
        if live:
            lg = stack.enter_context(game.open(opts=opts))
            env = game.screen_env(lg, obs_spec=spec or game.obs_spec)
            fps = game.hz
        elif game is not None:
            env = game.sim_vec(
                min(args.num_envs, args.episodes), seed=args.seed, opts=opts, **({"obs_spec": spec} if spec else {})
            )
            fps = env.metadata.get("render_fps", 15)
        else:
            from hakisa.envs.make import make_vec

            env = make_vec(
                args.env,
                min(args.num_envs, args.episodes),
                seed=args.seed,
                **({"obs_spec": spec} if spec and args.env.startswith("Hakisa/") else {}),
            )
            fps = env.metadata.get("render_fps", 15)
        stack.callback(env.close)
        if args.checkpoint:
            net, cfg = load_checkpoint(args.checkpoint, input_map=env.input_map, obs_spec=env.obs_spec)
        else:
            torch.manual_seed(args.seed)
            net, cfg = HakisaNet(env.obs_spec, env.input_map, encoder=args.encoder), {}
        mode = act_mode(cfg, args.head, deterministic=args.greedy)
        meta = {
            "input_map": env.input_map,
            "obs_spec": env.obs_spec,
            "source": "explore",
            "game": game.name if game else args.env,
            "game_file": str(game.path.resolve()) if game else None,
            "fps": fps,
            "agent": str(args.checkpoint or "untrained"),
            "epsilon": args.epsilon,
            "mode": mode,
            "where": "live" if live else "sim",
        }
        with EpisodeWriter(args.out, meta) as w:
            s = evaluate(net, env, args.episodes, mode, seed=args.seed, collect=w, epsilon=args.epsilon, progress=True,
                         frame_hz=None if live else fps)  # a simulator's frames on its own clock
    print(json.dumps({"out": args.out, "game": meta["game"], "where": meta["where"], **s}))
    return 0


def main_ray(game, args, opts: dict, live: bool) -> int:
    """--workers N: the episodes are played on N Ray workers (hakisa.algos.ppo_ray.explore_ray) and written
    here, into the one store, as each worker's share comes back."""
    from hakisa.algos.ppo_ray import explore_ray
    from hakisa.data import EpisodeWriter
    from hakisa.distributed import EnvRecipe
    from hakisa.model import act_mode, checkpoint_obs_spec, load_checkpoint

    if live and not game.window.get("launch"):
        raise SystemExit(f"hakisa explore --workers: game {game.name!r} has no window.launch entry, so its one "
                         "window on your display cannot be shared among workers; drop --workers")
    spec = checkpoint_obs_spec(args.checkpoint) if args.checkpoint else None
    share = -(-args.episodes // args.workers)
    recipe = EnvRecipe(
        game=args.game, env_id=None if game is not None else args.env, seed=args.seed, opts=opts, live=live,
        num_envs=args.windows if live else max(1, min(args.num_envs, share)), train_recipe=False,
        obs=spec.to_dict() if spec is not None and (game is not None or args.env.startswith("Hakisa/")) else None,
    )
    net, cfg = load_checkpoint(args.checkpoint) if args.checkpoint else (None, {})
    mode = act_mode(cfg, args.head, deterministic=args.greedy)
    meta = {"source": "explore", "game": game.name if game else args.env,
            "game_file": str(game.path.resolve()) if game else None, "agent": str(args.checkpoint or "untrained"),
            "epsilon": args.epsilon, "mode": mode, "where": "live" if live else "sim"}
    s = explore_ray(recipe, net, args.workers, args.episodes, mode, lambda m: EpisodeWriter(args.out, m),
                    seed=args.seed, epsilon=args.epsilon, ray_address=args.ray_address, meta=meta,
                    encoder=args.encoder)
    print(json.dumps({"out": args.out, "game": meta["game"], "where": meta["where"], **s}))
    return 0
