"""Score against minutes of play, one panel per game, from the live_scratch JSONs (issue 37's plot).

    python benchmarks/plot_live_scratch.py                       # every benchmarks/live_scratch*.json
    python benchmarks/plot_live_scratch.py A.json B.json --out benchmarks/live_scratch.png

Each run's curve (the mean score of the games played while learning, per minute of play, over its seeds) is one
line, labelled with its algo, windows and date; the teacher's and the untrained agent's means (the zoo protocol's)
are the dashed and dotted lines, and the judged result (best/ on 20 games) is a dot at the run's last minute.
Last line: JSON with the panels drawn.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: a file is the output
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def curve_points(curve: list) -> tuple[list[float], list[float]]:
    """(minutes, scores) from either curve format: [minute, score, n] rows, or {minute, mean} (2026-12-06)."""
    rows = [(c["minute"], c["mean"]) if isinstance(c, dict) else (c[0], c[1]) for c in curve]
    return [float(m) for m, _ in rows], [float(s) for _, s in rows]


def runs_by_game(files: list[Path]) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for f in files:
        doc = json.loads(f.read_text())
        for g in doc["games"]:
            if not g.get("curve"):
                continue
            by.setdefault(g["game"], []).append({**g, "file": f.name, "date": doc.get("date", f.stem[-10:])})
    return by


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="live_scratch JSONs (default: benchmarks/live_scratch*.json)")
    ap.add_argument("--out", type=Path, default=HERE / "live_scratch.png")
    args = ap.parse_args(argv)
    files = args.files or sorted(HERE.glob("live_scratch*.json"))
    by = runs_by_game(files)
    if not by:
        raise SystemExit(f"no curves in {', '.join(map(str, files)) or 'no files'}")
    cols = min(3, len(by))
    rows = (len(by) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    panels = []
    for ax, (game, runs) in zip(axes.flat, sorted(by.items())):
        for r in runs:
            x, y = curve_points(r["curve"])
            label = f"{r.get('algo', '?')}, {r.get('windows', '?')} win, {r['date'][:10]}"
            (line,) = ax.plot(x, y, lw=1.4, label=label)
            if r.get("scratch_mean") is not None:
                ax.errorbar([x[-1]], [r["scratch_mean"]], yerr=[[r["scratch_mean"] - r["scratch_ci"][0]],
                                                                  [r["scratch_ci"][1] - r["scratch_mean"]]],
                            fmt="o", color=line.get_color(), capsize=3)
        ref = runs[-1]
        if ref.get("teacher_mean") is not None:
            ax.axhline(ref["teacher_mean"], ls="--", color="k", lw=1, label="teacher")
        if ref.get("untrained_mean") is not None:
            ax.axhline(ref["untrained_mean"], ls=":", color="gray", lw=1, label="untrained")
        ax.set_title(game)
        ax.set_xlabel("minutes of play")
        ax.set_ylabel("score per game")
        ax.legend(fontsize=7)
        panels.append({"game": game, "runs": [r["file"] for r in runs]})
    for ax in list(axes.flat)[len(by):]:
        ax.axis("off")
    fig.suptitle("Live learning from scratch (no teacher, no simulator): training games' score per minute; "
                 "dot: best/ judged on 20 games", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(json.dumps({"plot": str(args.out), "panels": panels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
