"""What a sweep writes: the leaderboard, sweep.csv, importance.png, history.png and best.json."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from hakisa.sweep.config import SweepConfig
from hakisa.sweep.space import Param
from hakisa.sweep.storage import counts


def write_results(cfg: SweepConfig, study, game, space: list[Param]) -> dict:
    """The leaderboard, sweep.csv, importance.png, history.png and best.json (also after a resume)."""
    from optuna.trial import TrialState

    out = cfg.dir
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    _write_csv(out / "sweep.csv", trials)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]

    def rank(t):  # complete trials by value; pruned ones after them, by their last evaluation
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else float("-inf")
        return (t.state == TrialState.COMPLETE, t.value if t.value is not None else last)

    board = sorted(done, key=rank, reverse=True)
    _leaderboard(board[:10], cfg)
    plots = _plots(study, out)
    c = counts(study)
    summary = {"sweep": cfg.name, "dir": str(out), "storage": cfg.storage, "trials": cfg.trials, **c,
               "plots": plots}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = max(complete, key=lambda t: t.value)
        cfg_best = best_config(cfg, best, space, game)
        (out / "best.json").write_text(json.dumps(cfg_best, indent=1) + "\n")
        summary["best"] = {"trial": best.number, "value": best.value, "params": best.params,
                           "objective": best.user_attrs.get("objective"), "config": str(out / "best.json")}
    print(json.dumps(summary))
    return summary


def best_config(cfg: SweepConfig, best, space: list[Param], game) -> dict:
    """A `hakisa train --config` file that trains what the best trial trained (its keys are train's flags)."""
    by_name = {p.name: p for p in space}
    sets, rewards = list(cfg.set), []
    for name, v in best.params.items():
        p = by_name.get(name)
        if p is None:
            continue
        if p.kind == "learner":
            sets.append(f"{p.key}={json.dumps(v)}")
        else:  # written as its rules.reward path, so the file needs no alias to be read
            path, sign = game.reward_path(p.key)
            rewards.append(f"{path}={sign * float(v)!r}")
    return {
        "_sweep": {"name": cfg.name, "storage": cfg.storage, "trial": best.number, "value": best.value,
                   "objective": best.user_attrs.get("objective"), "params": best.params},
        **({"game": cfg.game} if cfg.game else {"env": cfg.env}),
        "algo": cfg.algo, "steps": cfg.steps, "minutes": cfg.minutes, "num_envs": cfg.num_envs, "opt": cfg.opt,
        "obs": cfg.obs, "encoder": cfg.encoder, "init": cfg.init, "seed": cfg.seed, "set": sets, "reward": rewards,
        "run": f"{cfg.name}-best",
    }


def _write_csv(path: Path, trials) -> None:
    """One row per trial (Optuna's trials_dataframe columns, written without pandas)."""
    names = sorted({k for t in trials for k in t.params})
    attrs = ("objective", "retry_of", "failed_because", "run_dir", "global_step", "train_minutes")
    cols = ["number", "state", "value", "datetime_start", "datetime_complete", "duration_s",
            *[f"params_{k}" for k in names], "intermediate_values", *[f"user_attrs_{k}" for k in attrs]]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
                t.datetime_start else ""
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value, t.datetime_start or "",
                        t.datetime_complete or "", dur, *[t.params.get(k, "") for k in names],
                        json.dumps(t.intermediate_values), *[t.user_attrs.get(k, "") for k in attrs]])


def _leaderboard(board, cfg: SweepConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep {cfg.name}: top {len(board)}")
    for col in ("trial", "state", "objective", "params", "minutes"):
        table.add_column(col, justify="right" if col in ("trial", "objective", "minutes") else "left")
    for t in board:
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        value = t.value if t.value is not None else last
        mins = (t.datetime_complete - t.datetime_start).total_seconds() / 60 if t.datetime_complete else 0
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        table.add_row(str(t.number), t.state.name.lower(), "-" if value is None else f"{value:.4g}", params,
                      f"{mins:.1f}")
    Console().print(table)


def _plots(study, out: Path) -> dict:
    """importance.png and history.png, Optuna's own matplotlib plots; skipped (with why) when meaningless."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    varied = [k for k in {k for t in complete for k in t.params} if len({t.params.get(k) for t in complete}) > 1]
    made = {}
    jobs = {"history.png": (ovm.plot_optimization_history, "no complete trial yet")}
    if len(complete) >= 2 and varied:
        jobs["importance.png"] = (ovm.plot_param_importances, "")
    else:
        print(f"importance.png skipped: it needs 2+ complete trials with a parameter that varies "
              f"({len(complete)} complete)")
    for name, (plot, why) in jobs.items():
        if not complete:
            print(f"{name} skipped: {why}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" warnings from optuna.visualization.matplotlib
            ax = plot(study)
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        made[name] = str(out / name)
    return made
