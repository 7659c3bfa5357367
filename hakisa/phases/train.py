"""`hakisa train`: the fast online path, PPO or branching DQN straight on vector envs.

    hakisa train --game duel --algo ppo --steps 2000000 --run duel-ppo    # the game's simulator and recipe
    hakisa train --env Airstriker-Genesis-v0 --steps 500000               # an env id (stable-retro, Toy/...)
    hakisa train --game pop --init runs/pop-bc/best --algo dqn --minutes 30 --windows 2   # no simulator: live
    tensorboard --logdir runs/          # charts/episodic_return, charts/win_rate, losses/...
    hakisa play --game duel --checkpoint runs/duel-ppo --episodes 200

A game file's `train` entry is its measured recipe (env count, frame size, options, learner Args);
--num-envs, --obs, --opt and --set override it. A game with no simulator (or `--live`) learns on its
real window(s) instead, in hakisa/phases/live_train.py: an actor that keeps the game's rate and a learner
in a background thread, for `--minutes` of play on `--windows` windows (its recipe: the file's
`train.live.<algo>` entry over the learner's live defaults, its `LiveArgs` where it has one).

Writes runs/<name>/: config.json, TensorBoard events, checkpoint/ (latest) and best/ (best rolling
training score). Any Args field of the learner can be set with --set key=value.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hakisa.dcargs import parse_overrides
from hakisa.envs.make import make_vec
from hakisa.recipe import game_envs, learner_args, parse_obs, recipe_algo, reward_overrides, run_algo, run_dir_of


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help="JSON whose keys are these flags' names (num_envs, set, reward, ...), e.g. a sweep's "
                        "best.json; flags given on the command line win")
    p.add_argument("--game", default=None, help="a game file with a simulator (a shipped name or a path)")
    p.add_argument("--env", default=None, help="an env id instead: Hakisa/Duel-v0, a stable-retro game id, Toy/...")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="a game option (e.g. tier=hard, or tier=easy,hard: the envs take them in turn)")
    p.add_argument("--algo", choices=["ppo", "distill", "dqn", "srdqn"], default=None,
                   help="ppo | distill (a state teacher, then a pixel student: needs a simulator with a state()) | "
                        "dqn | srdqn (live only: the sample-efficient DQN of hakisa/algos/srdqn.py). Default: the "
                        "game recipe's (the duel's: distill); live with no --init: srdqn; else ppo")
    p.add_argument("--obs", default=None, help="frame size WxH (default: the game's recipe)")
    p.add_argument("--steps", type=int, default=None, help="total env steps (default: 1M in a simulator, no cap live)")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget in minutes (live: minutes of play, default 10)")
    p.add_argument("--live", action="store_true", help="learn on the game's real window(s) even if it has a simulator")
    from hakisa.backends import add_backend_arg

    add_backend_arg(p)  # live windows only
    p.add_argument("--windows", type=int, default=1,
                   help="live: windows played at once; more than one get private Xvfb displays")
    p.add_argument("--replay-ratio", type=float, default=4.0,
                   help="live dqn, srdqn: gradient steps per env step, at most")
    p.add_argument("--cql", type=float, default=1.0, help="live dqn from a clone: conservative-Q penalty weight")
    p.add_argument("--demos", default=None, metavar="DATASET",
                   help="live ppo: keep cloning this teacher store (the one --init studied), with a decaying weight; "
                        "srdqn: keep its frames in every update with a large-margin loss (DQfD)")
    p.add_argument("--num-envs", type=int, default=None, help="parallel envs (default: the game's recipe, else 16)")
    p.add_argument("--replay", action="store_true",
                   help="after training, play one episode of best/ (else checkpoint/) and write best/replay.mp4: the "
                        "game at its own size with the agent's actions drawn (a live game plays its window again); "
                        "in a simulator, also each new best/ while it trains (RUN/replays/, --replay-every)")
    p.add_argument("--save-minutes", type=float, default=2.0,
                   help="live: minutes between two checkpoint/ saves (what --resume goes on from)")
    p.add_argument("--resume", action="store_true",
                   help="continue --run's checkpoint/ after a crash or kill -9 (its weights, optimizer, counters and "
                        "minutes spent; the same command plus --resume): ppo in a simulator, and live runs (whose "
                        "replay starts empty again)")
    p.add_argument("--replay-every", type=float, default=60.0, metavar="SECONDS",
                   help="with --replay in a simulator: at most one film of best/ started per this many seconds")
    p.add_argument("--run", default=None, help="run name (default: <algo>-<env>)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default=None,
                   help="small | nature | fine | torchvision:<name> (default: the recipe's; small, live srdqn: fine)")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (default: the recipe's, e.g. the duel's "
                        "pretrained:duel-perception for distill; none: from scratch)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any learner Args field (listed below), e.g. --set lr=1e-4 --set ent_coef=0.02")
    p.add_argument("--reward", action="append", default=[], metavar="NAME=VALUE",
                   help="a reward coefficient of the game file's rules.reward, e.g. deltas.boss_hp=-0.5 or win=5 "
                        "(the window's reward, and the simulator's where its file says sim.reward: rules)")
    from hakisa.algos import distill, dqn, ppo, srdqn
    from hakisa.dcargs import describe

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    from hakisa.phases.live_train import LiveArgs

    p.epilog = "\n\n".join([*(f"{m.__name__.split('.')[-1]} Args (--set):\n{describe(m.Args)}{live_changes(m)}"
                              for m in (ppo, distill, dqn, srdqn)),
                            f"live runs, LiveArgs (--set, where the learner's Args have no such key):\n"
                            f"{describe(LiveArgs)}"])
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--workers", type=int, default=0,
                   help="ppo: roll out on N Ray workers (hakisa[ray]); --num-envs is split among them (live: "
                        "each opens --windows private windows). 0: this process")
    p.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (host:port or auto; default $RAY_ADDRESS, else a local Ray)")


def main(args) -> int:
    import importlib

    from hakisa.game import Game, parse_opts

    game = Game.load(args.game) if args.game else Game.for_env(args.env) if args.env else None
    if game is None and not args.env:
        raise SystemExit("hakisa train: give --game NAME|PATH (or --env ID)")
    in_sim = not getattr(args, "workers", 0) and (game is None or (game.sim and not args.live))
    fresh = args.init == "none"  # --init none: from scratch, even where the recipe names a start
    if args.algo is None and not in_sim and not getattr(args, "workers", 0) and (fresh or not args.init):
        # live from scratch: the sample-efficient learner (docs/live_learning.md: why, and what it measured)
        args.algo = "srdqn"
    args.algo = recipe_algo(game, args.algo, in_sim)
    if args.algo == "srdqn" and in_sim:
        raise SystemExit("hakisa train --algo srdqn: a live learner (a game with no simulator, or --live)")
    args.init = None if fresh else args.init
    if args.algo == "distill" and not in_sim:
        raise SystemExit("hakisa train --algo distill: its teacher reads a simulator's true state, so it trains in "
                         "a simulator, in this process (no --live, no --workers); on a window use --algo ppo or dqn")
    algo = importlib.import_module(f"hakisa.algos.{args.algo}")
    opts = parse_opts(args.opt)
    if getattr(args, "reward", None) and getattr(args, "workers", 0):
        raise SystemExit("hakisa train: --reward with --workers is not supported (the workers load the game file)")
    game = reward_overrides(game, getattr(args, "reward", None), sim=not args.live)
    live = game is not None and (args.live or not game.sim)
    if getattr(args, "resume", False) and (getattr(args, "workers", 0) or (not live and args.algo != "ppo")):
        raise SystemExit("hakisa train --resume: ppo in a simulator and every live run (in this process) keep what "
                         "they need to resume; other runs start again from their checkpoint with --init RUN/checkpoint")
    if getattr(args, "workers", 0):
        return main_ray(game, args, opts)
    if game is not None and (args.live or not game.sim):
        return main_live(game, algo, args, opts)
    if game is not None:
        envs, recipe = game_envs(game, args.num_envs, args.seed, opts, getattr(args, "obs", None), args.algo)
        args.env, args.game_file = game.name, str(game.path.resolve())
        if args.init is None and not fresh:  # the learner's recipe may name its start (the duel's distill's)
            args.init = recipe.get(args.algo, {}).get("init")
    else:
        recipe = {}
        envs = make_vec(args.env, args.num_envs or 16, seed=args.seed,
                        **({"obs_spec": parse_obs(args.obs)} if getattr(args, "obs", None) else {}))
    a = learner_args(algo, recipe, steps=args.steps, minutes=args.minutes, seed=args.seed,
                     encoder=args.encoder or "small",
                     progress=not args.no_progress, overrides=parse_overrides(algo.Args, args.set))
    films = None
    if getattr(args, "replay", False) and game is not None:  # each new best/ filmed while it trains
        from hakisa.replay import BestFilms

        films = BestFilms(run_dir_of(args), game, opts, args.seed, every=getattr(args, "replay_every", 60.0)).start()
    try:
        run_dir, metrics = run_algo(algo, envs, a, args, **({"resume": True} if getattr(args, "resume", False) else {}))
    finally:
        if films is not None:
            films.close()
    if films is not None and films.films:
        print(f"train: {len(films.films)} best/ filmed while training: {Path(run_dir) / 'replays'}", flush=True)
    if getattr(args, "replay", False):
        write_run_replay(Path(run_dir), game, opts, args.seed)
    print(
        json.dumps(
            {
                "run": str(run_dir),
                "algo": args.algo,
                "env": args.env,
                **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))},
            }
        )
    )
    return 0


def main_live(game, algo, args, opts: dict) -> int:
    """The live path: the window(s) of a game, an actor/learner pair (hakisa/phases/live_train.py)."""
    from hakisa.phases.live_train import train_live

    if not game.window.get("launch") and args.windows > 1:
        raise SystemExit(
            f"hakisa train --windows {args.windows}: game {game.name!r} has no window.launch entry, "
            "so only its one window on your display can be played"
        )
    name = args.algo
    run_dir = Path(args.runs_dir) / (args.run or f"{name}-{game.name}-live")
    resume = getattr(args, "resume", False)
    if resume:  # the killed run's own weights; its books come with them (hakisa/phases/live_resume.py)
        from hakisa.phases.live_resume import books

        books(run_dir)  # a run with nothing to resume says so in one line, before any window opens
        args.init = str(run_dir / "checkpoint")
    a, live, net, init_cfg = live_setup(game, algo, args)
    if resume:
        print(f"train: resuming {run_dir} from its checkpoint/ (a PPO batch in progress starts empty)",
              flush=True)
    m = train_live(game, name, a, live, run_dir, net=net, opts=opts, init_cfg=init_cfg, resume=resume)
    if getattr(args, "replay", False):
        write_run_replay(run_dir, game, opts, args.seed)
    print(
        json.dumps(
            {
                "run": str(run_dir),
                "algo": name,
                "game": game.name,
                "where": "live",
                **{k: v for k, v in m.items() if k != "curve"},
            }
        )
    )
    return 0


def live_changes(algo) -> str:
    """The learner's live defaults where they differ from its Args' (`hakisa train --help`)."""
    if not hasattr(algo, "LiveArgs"):
        return ""
    base, live = algo.Args(), algo.LiveArgs()
    diff = [f"{k}={v!r}" for k, v in vars(live).items() if v != getattr(base, k)]
    return "\n  on a live window: " + ", ".join(diff)


def live_setup(game, algo, args):
    """(learner Args, LiveArgs, init net, init config) of a live run, from the command line's args: the
    learner's live defaults (`algo.LiveArgs`, else its Args), then the game file's `train.live.<algo>`, then the
    command line. benchmarks/soak_live.py builds its run through this too."""
    import dataclasses

    from hakisa.phases.live_train import LiveArgs

    cls = getattr(algo, "LiveArgs", algo.Args)  # srdqn is live-only: its Args are its live defaults
    recipe = game.doc.get("train", {}).get("live", {}).get(args.algo, {})
    # --set KEY=VALUE sets a field of the learner's Args or, when it has none by that name, of LiveArgs
    learner_fields = {f.name for f in dataclasses.fields(cls)}
    live_fields = {f.name for f in dataclasses.fields(LiveArgs)} - learner_fields - {"curve"}
    live_sets = [kv for kv in args.set if kv.partition("=")[0] in live_fields]
    a = cls(
        **{
            "total_steps": args.steps or 10**12,
            "seed": args.seed,
            "progress": not args.no_progress,
            **recipe,
            **({"encoder": args.encoder} if args.encoder else {}),  # the command line wins over the recipe
            **parse_overrides(cls, [kv for kv in args.set if kv not in live_sets]),
        }
    )
    # LiveArgs: its fields that are flags of their own (--windows, --minutes, --save-minutes, --replay-ratio,
    # --demos, --cql), then --set
    flags = {k: getattr(args, k) for k in live_fields if getattr(args, k, None) is not None}
    live = LiveArgs(**{**flags, "minutes": args.minutes or 10.0, **parse_overrides(LiveArgs, live_sets)})
    net, init_cfg = None, None
    if args.init:
        from hakisa.model import load_checkpoint

        net, init_cfg = load_checkpoint(args.init, input_map=game.input_map)
    return a, live, net, init_cfg


def write_run_replay(run_dir: Path, game, opts: dict, seed: int) -> None:
    """--replay: one episode of the run's best/ (else checkpoint/), filmed with its actions (hakisa/replay.py)."""
    from hakisa.replay import write_replay

    if game is None:
        print("train: no replay: an env id has no game file to film (give --game)")
        return
    ck = run_dir / "best" if (run_dir / "best" / "config.json").exists() else run_dir / "checkpoint"
    # a barely trained agent may never end a game, and a film of it idling says nothing after a few seconds:
    # three of the run's mean game lengths, at least 10 s and at most a minute of play
    metrics = json.loads((ck / "config.json").read_text()).get("metrics") or {}
    cap = int(min(60 * game.hz, max(10 * game.hz, 3 * (metrics.get("mean_length") or 60 * game.hz))))
    r = write_replay(ck, game, ck / "replay.mp4", seed=seed, opts=opts, max_steps=cap)
    print(f"train: replay of {ck.name}/: {ck / 'replay.mp4'} ({r.get('frames')} frames)", flush=True)


def main_ray(game, args, opts: dict) -> int:
    """--workers N: PPO whose rollouts run on N Ray workers (hakisa/algos/ppo_ray.py), each building its
    share of the envs from the same recipe this process would use. Live (a game with no simulator, or
    --live): each worker opens --windows windows of the game, each on a private Xvfb display with its own
    browser, and claims a `display` slot; the learner is plain PPO with the game's live recipe (the
    one-process live trainer's clone warm-up and --demos cloning term stay there)."""
    from hakisa.algos import ppo
    from hakisa.algos.ppo_ray import train_ray
    from hakisa.distributed import EnvRecipe

    if args.algo != "ppo":
        raise SystemExit(f"hakisa train --workers: PPO only (got --algo {args.algo}); drop --workers for {args.algo}")
    live = game is not None and (args.live or not game.sim)
    if live and not game.window.get("launch"):
        raise SystemExit(f"hakisa train --workers: game {game.name!r} has no window.launch entry, so a worker "
                         "cannot open a window of its own; train on your window without --workers")
    if live and args.demos:
        raise SystemExit("hakisa train --workers: --demos (the cloning term) is for the one-process live trainer; "
                         "drop --workers, or --demos")
    recipe = game.doc.get("train", {}) if game is not None else {}
    args_cls = ppo.LiveArgs if live else ppo.Args
    if live:
        learner = recipe.get("live", {}).get("ppo", {})
        obs = None
        if args.init:  # the windows are grabbed at the checkpoint's frame size
            from hakisa.model import checkpoint_obs_spec

            obs = checkpoint_obs_spec(args.init).to_dict()
        env = EnvRecipe(game=args.game, num_envs=args.windows, seed=args.seed, opts=opts, obs=obs, live=True)
        budget = {"total_steps": args.steps or 10**12, "max_minutes": args.minutes or 10.0}
    else:
        learner = recipe.get("ppo", {})
        total = args.num_envs or recipe.get("num_envs", 16)
        env = EnvRecipe(game=args.game, env_id=None if args.game else args.env,
                        num_envs=max(1, total // args.workers), seed=args.seed, opts=opts,
                        obs=getattr(args, "obs", None))
        budget = {"total_steps": args.steps or 1_000_000, **({"max_minutes": args.minutes} if args.minutes else {})}
    a = args_cls(
        **{
            **budget,
            "seed": args.seed,
            "encoder": args.encoder or "small",
            "progress": False,  # a bar per update says little when batches arrive from other processes
            **learner,
            **parse_overrides(args_cls, args.set),
        }
    )
    net = None
    if args.init:
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(args.init)  # train_ray checks it against the workers' envs
    name = game.name if game is not None else args.env.replace("/", "-")
    run_dir = Path(args.runs_dir) / (args.run or f"ppo-{name}{'-live' if live else ''}")
    m = train_ray(env, a, args.workers, run_dir, net=net, ray_address=args.ray_address)
    print(json.dumps({"run": str(run_dir), "algo": "ppo", "env": game.name if game is not None else args.env,
                      **({"where": "live"} if live else {}),
                      **{k: v for k, v in m.items() if not isinstance(v, (list, dict))}}))
    return 0
