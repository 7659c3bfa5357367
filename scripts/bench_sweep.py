"""Issue 18's sweep bar, end to end: a sweep, killed halfway with SIGKILL and resumed; then the best
config and the default recipe re-trained on fresh seeds and compared on fixed fights.

    .venv/bin/python scripts/bench_sweep.py --trials 20 --minutes 2 --out benchmarks/sweep_duel.json
    .venv/bin/python scripts/bench_sweep.py --trials 4 --steps 2048 --eval-episodes 8 --fights 8 --num-envs 4 \\
        --retrain-seeds 101 --name smoke      # a smoke run, a minute or so

1. `hakisa sweep --game duel` over reward.dealt, reward.taken, reward.win and ppo.lr (a subprocess in its
   own process group); once about trials/2 are finished, SIGKILL the group mid-trial.
2. The same command again, to completion: counts finished / failed / retried trials from the journal.
3. `hakisa train --config best.json --seed S` and `hakisa train --game duel --seed S` (the recipe, same budget)
   for each --retrain-seeds S; `hakisa play` each on --fights fights (--play-seed, never trained on).
The LAST line printed is one JSON object (also written to --out). A sweep that finds nothing better than the
recipe is a fine answer: the numbers say so.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def hakisa(*args: str, timeout: float | None = None) -> dict:
    r = subprocess.run([sys.executable, "-m", "hakisa.cli", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"hakisa {args[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def study_counts(journal: Path, name: str) -> dict:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal)))).trials
    c = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    c["finished"] = c["complete"] + c["pruned"]
    c["retried"] = sum("retry_of" in t.user_attrs for t in trials)
    c["numbers_unique"] = len({t.number for t in trials}) == len(trials)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=None, help="training minutes per trial and per re-train")
    ap.add_argument("--steps", type=int, default=None, help="or env steps per trial and per re-train")
    ap.add_argument("--evals", type=int, default=3)
    ap.add_argument("--eval-episodes", type=int, default=100)
    ap.add_argument("--fights", type=int, default=200, help="fights each re-trained agent plays")
    ap.add_argument("--play-seed", type=int, default=4242)
    ap.add_argument("--retrain-seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--num-envs", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--init", default=None, help="every trial and re-train starts from this checkpoint")
    ap.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                    help="a game option for the sweep, the re-trains and the fights (e.g. tier=easy)")
    ap.add_argument("--name", default="bench-duel")
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if not a.minutes and not a.steps:
        a.minutes = 2.0
    budget = [*(["--minutes", str(a.minutes)] if a.minutes else []), *(["--steps", str(a.steps)] if a.steps else [])]
    envs = ["--num-envs", str(a.num_envs)] if a.num_envs else []
    opts = [x for o in a.opt for x in ("--opt", o)]
    init = ["--init", a.init] if a.init else []
    sweep_dir = Path(a.runs_dir) / "sweeps" / a.name
    journal = sweep_dir / "journal.log"
    cmd = [sys.executable, "-m", "hakisa.cli", "sweep", "--game", "duel", "--algo", "ppo",
           "--param", "reward.dealt=0.1:1.0", "--param", "reward.taken=0.02:0.5", "--param", "reward.win=2:20",
           "--param", "ppo.lr=2e-4:3e-3:log", "--trials", str(a.trials), *budget, "--evals", str(a.evals),
           "--eval-episodes", str(a.eval_episodes), "--jobs", str(a.jobs), "--name", a.name,
           "--runs-dir", a.runs_dir, *envs, *opts, *init]
    t0, load_start = time.time(), [round(x, 2) for x in os.getloadavg()]

    # 1. the sweep, killed with SIGKILL once about half its trials are finished
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    at_kill = None
    try:
        while proc.poll() is None:
            time.sleep(2)
            try:
                c = study_counts(journal, a.name)
            except (KeyError, FileNotFoundError):
                continue
            if c["finished"] >= a.trials // 2 and c["running"]:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                at_kill = c
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    t_kill = time.time() - t0

    # 2. resume: the same command to completion
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"resumed sweep failed: {r.stderr[-2000:]}")
    print(r.stdout)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    after = study_counts(journal, a.name)
    t_sweep = time.time() - t0

    # 3. re-train the best config and the default recipe on fresh seeds, same budget; play fixed fights
    best_cfg = sweep_dir / "best.json"
    results: dict[str, list] = {"best": [], "default": []}
    for seed in a.retrain_seeds:
        for which in ("best", "default"):
            run = f"{a.name}-{which}-s{seed}"
            src = ["--config", str(best_cfg)] if which == "best" else ["--game", "duel", "--algo", "ppo", *budget,
                                                                       *envs, *opts, *init]
            hakisa("train", *src, "--seed", str(seed), "--run", run, "--runs-dir", a.runs_dir, "--no-progress")
            s = hakisa("play", "--game", "duel", "--checkpoint", str(Path(a.runs_dir) / run / "checkpoint"),
                       "--episodes", str(a.fights), "--seed", str(a.play_seed), *opts)
            results[which].append({"seed": seed, "win_rate": s["win_rate"], "episodes": s["episodes"]})
            print(json.dumps({which: results[which][-1]}), flush=True)
    mean = {k: float(np.mean([x["win_rate"] for x in v])) for k, v in results.items()}
    out = {
        "bench": "sweep_duel", "trials": a.trials, "budget": {"minutes": a.minutes, "steps": a.steps},
        "evals": a.evals, "eval_episodes": a.eval_episodes, "opts": a.opt, "init": a.init, "load_start": load_start,
        "killed_at": at_kill, "after_resume": after,
        "exactly_n_finished": after["finished"] == a.trials, "sweep_s": round(t_sweep, 1),
        "kill_after_s": round(t_kill, 1), "best_trial": summary.get("best"),
        "retrain": results, "mean_win_rate": mean, "fights": a.fights, "play_seed": a.play_seed,
        "best_minus_default": mean["best"] - mean["default"], "total_s": round(time.time() - t0, 1),
    }
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
