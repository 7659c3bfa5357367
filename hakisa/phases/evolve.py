"""`hakisa evolve`: evolutionary search over the policy weights (Hakisa GA or OpenAI-ES).

    hakisa evolve --game duel --algo es --opt tier=normal --generations 100 --pop 32 --run duel-es
    hakisa evolve --env Toy/KeyPress-v0 --algo ga --generations 30 --pop 16 --run toy-ga

Populations need many episodes at once, so evolution runs on a game's simulator (or an env id); a game
with only a live window is refused with a message.

Each member plays on its own env copies (pop x episodes-per-member sub-envs of one vector env).
Writes runs/<name>/: config.json, TensorBoard (charts/fitness_*), checkpoint/.
"""
from __future__ import annotations

import argparse
import json

from hakisa.envs.make import make_vec


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

    n = a.pop_size * a.episodes_per_member
    if args.game:
        game = Game.load(args.game)
        if not game.sim:
            raise SystemExit(f"hakisa evolve: game {game.name!r} has no simulator: a population needs one "
                             "(its window plays one episode at a time)")
        envs = game.sim_vec(n, seed=args.seed, opts=parse_opts(args.opt))
        args.env = game.name
    elif args.env:
        envs = make_vec(args.env, n, seed=args.seed)
    else:
        raise SystemExit("hakisa evolve: give --game NAME|PATH (or --env ID)")
    from hakisa.phases.train import run_algo

    run_dir, m = run_algo(algo, envs, a, args)
    print(json.dumps({"run": str(run_dir), "algo": args.algo, "env": args.env,
                      **{k: v for k, v in m.items() if not isinstance(v, (list, dict))}}))
    return 0
