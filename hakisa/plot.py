"""`hakisa plot RUN... --out DIR`: learning curves, gradient norms and action-head distributions as PNGs.

Everything is read from what a run already wrote: TensorBoard event files under `runs/<name>/`
(scalars `charts/...`, `losses/...`; histograms of logged actions if any) and its checkpoint
directory. Several runs overlay on the same axes so they can be compared.

Each PNG gets a sidecar `<name>.json` listing its panels (titles, runs, tags). Tests and notebooks
check that instead of looking at pixels, and it doubles as a machine-readable index of the plot.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless by design: no DISPLAY on CI boxes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CURVE_TAGS = ("charts/episodic_return", "charts/win_rate")  # always first, in this order, when present
CHECKPOINT_NAMES = ("best", "checkpoint")  # where a run keeps its checkpoint, preferred first


@dataclass
class Series:
    """One scalar tag of a run: `steps` (int64, ascending, unique) and `values` (float64) at those steps."""

    steps: np.ndarray
    values: np.ndarray


# ---- reading runs ---------------------------------------------------------------------------------
def event_files(run: str | Path) -> list[Path]:
    run = Path(run)
    if run.is_file():
        return [run]
    return sorted(run.rglob("events.out.tfevents.*"))


def read_scalars(run: str | Path) -> dict[str, Series]:
    """Every scalar tag of a run, merged over its event files (restarts append new files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for f in event_files(run):
        ea = EventAccumulator(str(f), size_guidance={"scalars": 0})  # 0 = keep every point
        ea.Reload()
        for tag in ea.Tags()["scalars"]:
            d = merged.setdefault(tag, {})
            for e in ea.Scalars(tag):
                d[e.step] = e.value  # a later file wins on the same step (a resumed run)
    out = {}
    for tag, d in merged.items():
        steps = np.array(sorted(d), dtype=np.int64)
        out[tag] = Series(steps, np.array([d[s] for s in steps], dtype=np.float64))
    return out


def read_action_histograms(run: str | Path) -> dict[str, np.ndarray]:
    """Logged histograms of integer actions (e.g. `actions/command`): the last logged step's
    histogram -> counts per index. Returns {} when the run logged none."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, np.ndarray] = {}
    for f in event_files(run):
        ea = EventAccumulator(str(f), size_guidance={"histograms": 0})
        ea.Reload()
        for tag in ea.Tags()["histograms"]:
            if not tag.startswith("actions/"):
                continue
            h = ea.Histograms(tag)[-1].histogram_value
            # torch's histogram buckets are [limit[i-1], limit[i]) with limits growing by 10%: the
            # integer in a bucket is ceil(its lower edge). Exact while a bucket holds at most one
            # integer (indices up to ~10); beyond that the histogram itself has merged neighbours,
            # which is why evaluating the checkpoint (the default) is the better source.
            upper = np.asarray(h.bucket_limit, dtype=np.float64)
            lower = np.concatenate([[h.min], upper[:-1]])
            idx = np.ceil(lower - 1e-9).astype(np.int64)
            cnt = np.asarray(h.bucket, dtype=np.float64)
            keep = (cnt > 0) & (idx >= 0)
            counts = np.bincount(idx[keep], weights=cnt[keep], minlength=int(h.max) + 1 if h.num else 1)
            out[tag] = counts
    return out


def _checkpoint_or_none(run) -> Path | None:
    """A run's checkpoint, or None for a run that has not saved one yet (its curves still plot)."""
    from hakisa.model import CheckpointError, find_checkpoint

    try:
        return find_checkpoint(run)
    except CheckpointError:
        return None


# ---- drawing ----------------------------------------------------------------------------------
def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (weight 0 = raw)."""
    if weight <= 0 or len(values) == 0:
        return values
    out, last, n = np.empty_like(values), 0.0, 0
    for i, v in enumerate(values):
        last, n = last * weight + (1 - weight) * v, n + 1
        out[i] = last / (1 - weight ** n)
    return out


def _grid(n: int, cols: int = 3):
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:  # unused cells of the grid would read as empty panels
        ax.remove()
    return fig, list(axes.flat[:n])


def _save(fig, path: Path, panels: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n_axes = len(fig.axes)  # counted on the figure, so a test can compare it with the panels we meant
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps({"file": path.name, "axes": n_axes, "panels": panels}, indent=1))
    return path


def plot_curves(runs: dict[str, dict[str, Series]], tags: list[str], path: Path, title: str,
                smoothing: float = 0.6, logy: bool = False) -> Path:
    """One panel per tag, one line per run (smoothed over a faint raw line)."""
    fig, axes = _grid(len(tags))
    panels = []
    for ax, tag in zip(axes, tags):
        names = []
        for i, (name, scalars) in enumerate(runs.items()):
            s = scalars.get(tag)
            if s is None:
                continue
            color = f"C{i % 10}"
            ax.plot(s.steps, s.values, color=color, alpha=0.25, lw=0.8)
            ax.plot(s.steps, smooth(s.values, smoothing), color=color, lw=1.6, label=name)
            names.append(name)
        ax.set_title(tag)
        ax.set_xlabel("env steps")
        if logy:
            ax.set_yscale("log")
        if tag.endswith("win_rate"):
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=7)
        panels.append({"title": tag, "tag": tag, "runs": names})
    fig.suptitle(title)
    return _save(fig, path, panels)


def plot_action_heads(probs: dict[str, np.ndarray], labels: dict[str, list[str]], path: Path,
                      title: str = "action-head distributions") -> Path:
    """Bar chart per head: mean probability over a batch of observations (error bar = std).

    `probs[head]` is [B, n] (per-observation probabilities) or [n] (e.g. counts from a logged
    histogram, normalised here). Heads with a single bin carry no information and are skipped.
    """
    heads = [h for h, p in probs.items() if np.asarray(p).shape[-1] > 1]
    fig, axes = _grid(len(heads), cols=max(1, len(heads)))
    panels = []
    for ax, head in zip(axes, heads):
        p = np.asarray(probs[head], dtype=np.float64)
        if p.ndim == 1:
            mean, std = p / max(p.sum(), 1e-12), None
        else:
            mean, std = p.mean(0), p.std(0)
        x = np.arange(len(mean))
        ax.bar(x, mean, yerr=std, color="C0", capsize=2)
        names = labels.get(head) or [str(i) for i in x]
        ax.set_xticks(x, names, rotation=45 if len(x) > 4 else 0, ha="right" if len(x) > 4 else "center", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(head)
        ax.set_ylabel("probability")
        panels.append({"title": head, "mean": [round(float(v), 5) for v in mean], "labels": names})
    fig.suptitle(title)
    return _save(fig, path, panels)


def head_probabilities(net, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Softmax of each policy head on a batch of uint8 observations -> {head: [B, n]}."""
    import torch

    with torch.no_grad():
        h = net(torch.as_tensor(obs))
    return {name: torch.softmax(getattr(h, attr).float(), -1).numpy()
            for name, attr in (("command", "cmd"), ("x", "x"), ("y", "y"))}


def head_labels(input_map) -> dict[str, list[str]]:
    return {"command": [c.name for c in input_map.commands],
            "x": [str(i) for i in range(input_map.x_bins)], "y": [str(i) for i in range(input_map.y_bins)]}


# ---- the verb -----------------------------------------------------------------------------------
def plot_runs(runs: list[str | Path], out: str | Path, smoothing: float = 0.6, action_obs: int = 256,
              env: str | None = None, seed: int = 0) -> list[Path]:
    """Write every plot for `runs` into `out`; returns the PNG paths.

    - curves.png: charts/episodic_return, charts/win_rate, then every other charts/* and losses/*
      scalar, each run overlaid;
    - grad_norm.png: every `*grad_norm*` scalar (log scale);
    - actions_<run>.png: per run, the action-head distributions of its checkpoint on `action_obs`
      real observations from its env (when it has a checkpoint and action_obs > 0), else the run's
      logged `actions/*` histograms, if any.
    """
    from hakisa.game import recorded_game_file
    from hakisa.model import read_checkpoint_config
    from hakisa.rollout import target_for

    out = Path(out)
    names = _unique_names([Path(r) for r in runs])
    ckpts = {name: _checkpoint_or_none(r) if action_obs > 0 else None for name, r in zip(names, runs)}
    # each checkpoint's game (--env, else the one its run recorded), found before anything is written
    envs = {name: env or recorded_game_file(ck) for name, ck in ckpts.items() if ck is not None}
    for name, e in envs.items():
        target_for(read_checkpoint_config(ckpts[name]), e)
    scalars = {name: read_scalars(r) for name, r in zip(names, runs)}
    all_tags = sorted({t for s in scalars.values() for t in s})
    grad_tags = [t for t in all_tags if "grad_norm" in t]
    curve_tags = [t for t in CURVE_TAGS if t in all_tags]
    curve_tags += [t for t in all_tags if t not in curve_tags and t not in grad_tags
                   and t.split("/")[0] in ("charts", "losses")]
    files = []
    if curve_tags:
        files.append(plot_curves(scalars, curve_tags, out / "curves.png", "learning curves", smoothing))
    if grad_tags:
        files.append(plot_curves(scalars, grad_tags, out / "grad_norm.png", "gradient norms", smoothing, logy=True))
    for name, run in zip(names, runs):
        ckpt = ckpts[name]
        if ckpt is not None:
            from hakisa.model import load_checkpoint
            from hakisa.rollout import collect_observations, torch_threads

            net, config = load_checkpoint(ckpt)
            net.eval()
            with torch_threads(1):  # one-obs-per-env rollouts: a 2nd thread only spins on a busy box
                obs = collect_observations(config, action_obs, env=envs[name], seed=seed, net=net)["obs"]
                probs = head_probabilities(net, obs)
            files.append(plot_action_heads(probs, head_labels(net.input_map), out / f"actions_{name}.png",
                                           f"{name}: policy heads on {len(obs)} observations"))
        elif hist := read_action_histograms(run):
            probs = {tag.split("/", 1)[1]: counts for tag, counts in hist.items()}
            files.append(plot_action_heads(probs, {}, out / f"actions_{name}.png", f"{name}: logged actions"))
    return files


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name if p.name not in CHECKPOINT_NAMES else p.parent.name for p in paths]
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories (runs/<name>), overlaid on the same axes")
    p.add_argument("--out", default="plots", help="directory for the PNGs (+ a .json of panels each)")
    p.add_argument("--smoothing", type=float, default=0.6, help="EMA weight as in TensorBoard (0 = raw)")
    p.add_argument("--action-obs", type=int, default=256,
                   help="observations to evaluate each checkpoint's heads on (0 = use logged histograms only)")
    p.add_argument("--game", "--env", dest="env", metavar="GAME", default=None,
                   help="a game file or env id the observations come from (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)


def main(args) -> int:
    missing = [r for r in args.runs if not Path(r).exists()]
    if missing:
        raise SystemExit(f"hakisa plot: no such run: {', '.join(missing)}")
    files = plot_runs(args.runs, args.out, args.smoothing, args.action_obs, args.env, args.seed)
    if not files:
        print("hakisa plot: nothing to plot (no scalars, checkpoints or action histograms found)")
        return 1
    for f in files:
        print(f)
    return 0
