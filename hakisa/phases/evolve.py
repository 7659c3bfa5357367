"""`hakisa evolve`: evolutionary search over the policy weights (Hakisa GA or OpenAI-ES).

    hakisa evolve --game duel --algo es --opt tier=normal --generations 100 --pop 32 --run duel-es
    hakisa evolve --env Toy/KeyPress-v0 --algo ga --generations 30 --pop 16 --run toy-ga

Populations need many episodes at once, so evolution runs on a game's simulator (or an env id); a game
with only a live window is refused with a message.

Each member plays on its own env copies (pop x episodes-per-member sub-envs of one vector env).
With `--workers N` (the `hakisa[ray]` extra) the population is split over N Ray workers, each with its own
envs; the same seed gives the same fitness at every generation as without. `--ray-address` (or
RAY_ADDRESS) joins a running cluster; otherwise Ray starts on this machine (docs/distributed.md).

    hakisa evolve --game duel --algo es --pop 32 --workers 2 --run duel-es-ray
Writes runs/<name>/: config.json, TensorBoard (charts/fitness_*), checkpoint/.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from hakisa.distributed import EnvRecipe


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default=None, help="a game file with a simulator (a shipped name or a path)")
    p.add_argument("--env", default=None, help="an env id instead (Hakisa/Duel-v0, Toy/..., a stable-retro game)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option from its file (e.g. tier=hard)")
    p.add_argument("--algo", choices=["ga", "es"], default="es")
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--pop", type=int, default=32, help="population size")
    p.add_argument("--episodes-per-member", type=int, default=2)
    p.add_argument("--sigma", type=float, default=None, help="mutation / perturbation std (default: the learner's)")
    p.add_argument("--run", default=None)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="small")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--init", metavar="CHECKPOINT", help="start from this checkpoint's weights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any learner Args field")
    p.add_argument("--workers", type=int, default=0, help="Ray workers that evaluate the population (0: this process)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (default: $RAY_ADDRESS, else local)")
    p.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    from hakisa.dcargs import parse_overrides

    if args.algo == "ga":
        from hakisa.algos import ga as algo
    else:
        from hakisa.algos import es as algo
    kw = dict(generations=args.generations, pop_size=args.pop, episodes_per_member=args.episodes_per_member,
              seed=args.seed, encoder=args.encoder, hidden=args.hidden, progress=not args.no_progress)
    if args.sigma is not None:
        kw["sigma"] = args.sigma
    a = algo.Args(**{**kw, **parse_overrides(algo.Args, args.set)})
    from hakisa.game import Game, parse_opts

    if args.workers:
        from hakisa.distributed import init_ray

        a.workers = args.workers
        init_ray(args.ray_address)
    if args.game:
        game = Game.load(args.game)
        if not game.sim:
            raise SystemExit(f"hakisa evolve: game {game.name!r} has no simulator: a population needs one "
                             "(its window plays one episode at a time)")
        recipe = EnvRecipe(game=args.game, seed=args.seed, opts=parse_opts(args.opt), train_recipe=False)
        args.env = game.name
    elif args.env:
        recipe = EnvRecipe(env_id=args.env, seed=args.seed)
    else:
        raise SystemExit("hakisa evolve: give --game NAME|PATH (or --env ID)")
    # with workers this process only needs to know the game's frames and inputs: one sub-env does
    envs = dataclasses.replace(recipe, num_envs=1 if a.workers else a.pop_size * a.episodes_per_member).make()
    from hakisa.recipe import run_algo

    run_dir, m = run_algo(algo, envs, a, args, recipe=recipe)
    print(json.dumps({"run": str(run_dir), "algo": args.algo, "env": args.env,
                      **{k: v for k, v in m.items() if not isinstance(v, (list, dict))}}))
    return 0
