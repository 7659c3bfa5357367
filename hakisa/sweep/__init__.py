"""`hakisa sweep`: search learner Args and a game file's reward coefficients with Optuna, resumably.

    hakisa sweep --game duel --algo ppo --param ppo.lr=1e-4:3e-3:log --param reward.dealt=0.1:1.0 \\
        --param reward.taken=0.05:0.5 --trials 20 --minutes 2 --evals 4 --eval-episodes 100
    hakisa sweep ... (the same command again)      # resumes: runs only the trials still missing
    hakisa train --config runs/sweeps/duel-ppo/best.json --seed 3    # re-train the best trial

A parameter is NAME=RANGE. NAME: a learner Args field (`ppo.lr`, or bare `lr`; the prefix must match
--algo), or `reward.<coefficient>` of the game file's rules.reward (`reward.win`, `reward.deltas.boss_hp`,
`reward.boss_hp` for short, or an alias from rules.reward.names such as the duel's `reward.dealt`).
RANGE: LOW:HIGH (a float; an int when the field is an int and both ends are), LOW:HIGH:log, or a,b,c
(categorical). `--space FILE` (JSON/YAML {"ppo.lr": "1e-4:3e-3:log", ...}) says the same.

Each trial trains in the game's simulator with its values (hakisa/phases/train.py's recipe and Args) and
is scored on the UNSHAPED objective: win rate (won-or-lost games) or mean score (score games) over
--eval-episodes on fixed seeds (--eval-seed), in an env built from the unmodified game file. Never the
training return, which moves with the very coefficients being searched. `--evals` evaluations per trial
feed the pruner (median or successive halving); the last one is the trial's value.

Storage is Optuna's journal file (runs/sweeps/NAME/journal.log) or any Optuna URL (sqlite:///x.db).
Resume: finished trials (COMPLETE + PRUNED) count toward --trials; a RUNNING trial whose worker is gone
(kill -9, a lost machine) is marked FAIL with the reason and its parameters are queued again, so it is
neither lost nor counted twice. A worker is "gone" when its process no longer exists (same host: pid and
start time are checked) or, on another host, when its heartbeat is older than STALE_S; a live worker's
trial is never touched, so parallel --jobs and several sweep commands on one journal are safe.
Outputs in runs/sweeps/NAME/: trial-K/ (each trial's run), sweep.csv, importance.png, history.png, best.json.
"""
from __future__ import annotations

# The package, one idea a module: space.py (--param/--space -> distributions), config.py (SweepConfig, the
# game), storage.py (the Optuna storage, resume: liveness, reap_stale, the ask lock, heartbeats),
# trial.py (a worker's loop and one trial: suggest, train, score, prune), report.py (leaderboard, CSV,
# plots, best.json). This file is the verb and its Python API, run_sweep.
import argparse
import dataclasses
import json
from pathlib import Path

from hakisa.sweep.config import SweepConfig, load_game
from hakisa.sweep.report import write_results
from hakisa.sweep.space import parse_space
from hakisa.sweep.storage import counts, open_study
from hakisa.sweep.trial import say, work


def run_sweep(**kw) -> dict:
    """The Python API (a notebook): run_sweep(game="duel", params=["ppo.lr=1e-4:3e-3:log"], trials=20,
    minutes=2). Same keywords as SweepConfig; resumes when the storage already has the sweep. Returns
    the summary `hakisa sweep` prints last."""
    cfg = SweepConfig(**kw)
    if not cfg.steps and not cfg.minutes:
        raise SystemExit("hakisa sweep: give each trial a budget: --steps N and/or --minutes M")
    if cfg.evals < 1 or cfg.trials < 1 or cfg.jobs < 1:
        raise SystemExit("hakisa sweep: --evals, --trials and --jobs are at least 1")
    game = load_game(cfg)
    # absolute: Ray tasks need not start in this directory (on a cluster the journal must be on a shared disk)
    cfg.runs_dir = str(Path(cfg.runs_dir).resolve())
    cfg.name = cfg.name or f"{game.name if game else cfg.env.replace('/', '-')}-{cfg.algo}"
    cfg.storage = cfg.storage or str(cfg.dir / "journal.log")
    space = parse_space(cfg.params, cfg.space_file, cfg.algo, game)
    study = open_study(cfg, 0, create=True)
    fp = json.loads(json.dumps(cfg.fingerprint(space)))
    old = study.user_attrs.get("sweep")
    if old is None:
        study.set_user_attr("sweep", fp)
    elif old != fp:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {fp.get(k)!r}" for k in fp if old.get(k) != fp.get(k))
        raise SystemExit(f"hakisa sweep: {cfg.storage} holds sweep {cfg.name!r} with other settings ({diff}); "
                         "resume it with the same ones, or give a new --name")
    c = counts(study)
    say(cfg, f"{c['finished']}/{cfg.trials} trials finished so far; storage {cfg.storage}")
    d = dataclasses.asdict(cfg)
    if cfg.ray:
        from hakisa.distributed import init_ray

        ray = init_ray(cfg.ray_address)
        task = ray.remote(num_cpus=1)(work)
        ray.get([task.remote(d, i) for i in range(cfg.jobs)])
    elif cfg.jobs > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a fresh interpreter each: no forked torch threads or file locks
        procs = [ctx.Process(target=work, args=(d, i), daemon=False) for i in range(cfg.jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise SystemExit(f"hakisa sweep: {len(bad)} of {cfg.jobs} workers failed (exit {bad[0]}); "
                             "the same command resumes")
    else:
        work(d, 0)
    return write_results(cfg, open_study(cfg, 0), game, space)


def add_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__
    p.add_argument("--game", default=None, help="a game file with a simulator (a shipped name or a path)")
    p.add_argument("--env", default=None, help="an env id instead (Toy/...): no reward coefficients to search")
    p.add_argument("--algo", choices=["ppo", "dqn"], default="ppo")
    p.add_argument("--param", action="append", default=[], metavar="NAME=RANGE",
                   help="ppo.lr=1e-4:3e-3:log | reward.deltas.boss_hp=-1:-0.1 | ppo.update_epochs=1,2,4")
    p.add_argument("--space", default=None, metavar="FILE", help="JSON/YAML {NAME: RANGE or [values]}")
    p.add_argument("--trials", type=int, default=20, help="finished trials (complete + pruned) to reach")
    p.add_argument("--steps", type=int, default=None, help="env steps per trial")
    p.add_argument("--minutes", type=float, default=None,
                   help="training minutes per trial (evaluations not counted)")
    p.add_argument("--evals", type=int, default=3, help="evaluations per trial (the pruner sees each; the last "
                   "is the trial's value)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--eval-seed", type=int, default=777, help="the evaluation's fixed seed (fights/episodes)")
    p.add_argument("--eval-envs", type=int, default=16, help="envs the evaluation plays at once")
    p.add_argument("--pruner", choices=["median", "halving", "none"], default="median")
    p.add_argument("--storage", default=None,
                   help="a journal file (default runs/sweeps/NAME/journal.log) or an Optuna URL (sqlite:///x.db)")
    p.add_argument("--name", default=None, help="the sweep's name (default <game>-<algo>)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes sharing the storage")
    p.add_argument("--ray", action="store_true", help="run the --jobs workers as Ray tasks (hakisa[ray])")
    p.add_argument("--ray-address", default=None, help="with --ray: join this cluster (default: a local Ray)")
    p.add_argument("--seed", type=int, default=0, help="the training seed of every trial (and the sampler's)")
    p.add_argument("--num-envs", type=int, default=None, help="training envs (default: the game's recipe)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a game option for training and evaluation")
    p.add_argument("--obs", default=None, help="frame size WxH (default: the game's recipe)")
    p.add_argument("--encoder", default="small")
    p.add_argument("--init", default=None, metavar="CHECKPOINT", help="every trial starts from these weights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner Args value every trial uses (not searched)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--no-progress", action="store_true", help="no line per trial and evaluation")


def main(args) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SystemExit("hakisa sweep: needs Optuna: pip install 'hakisa[sweep]'") from None
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(SweepConfig)
          if f.name not in ("params", "space_file", "progress")}
    run_sweep(**kw, params=args.param, space_file=args.space, progress=not args.no_progress)
    return 0
