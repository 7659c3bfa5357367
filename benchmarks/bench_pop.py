"""Hakisa Pop, the mouse game with no simulator: teacher -> record -> study -> play, all on the real page.

    python benchmarks/bench_pop.py --games 30 --eval-games 20 --work runs/bench-pop     # the whole path
    python benchmarks/bench_pop.py --dataset datasets/pop-teacher --work runs/bench-pop # reuse a recording

1. The scripted teacher (benchmarks/teacher_pop.py) clicks the page with real XTest mouse events while
   `hakisa record --game pop` records it (pixels and X events only).
2. An untrained agent plays `--eval-games` games through `hakisa play --game pop` (the baseline).
3. `hakisa study --game pop` clones the teacher, once per variant in `--variants`, one change at a time:
   `base` (the labels as recorded), `lead` (labels from what the teacher did in the frame AFTER each grab,
   --label-lag -1/fps), and any extra `name:--flag=value,...` given.
4. Each studied agent plays `--eval-games` games on the page (argmax and/or sampled actions).
Every score is the game's own, read off the screen by the game file's score reader (the teacher's from
the page's hook as it plays). Prints JSON as its last line: mean score and 95 % interval per agent.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], log: Path) -> dict:
    """Run a command, tee its output to `log`, return its last JSON line."""
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        f.write(p.stdout)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}); see {log}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1])
    out["_seconds"] = round(time.time() - t0, 1)
    return out


def play(name: str, checkpoint: str | None, games: int, work: Path, sample: bool, seed: int) -> dict:
    cmd = [sys.executable, "-m", "hakisa.cli", "play", "--game", "pop", "--episodes", str(games),
           "--opt", f"seed={seed}", "--out", str(work / f"play-{name}"), "--gif-episodes", "1"]
    cmd += ["--checkpoint", checkpoint] if checkpoint else []
    cmd += ["--sample"] if sample else []
    r = run(cmd, work / f"play-{name}.log")
    return {k: r.get(k) for k in ("episodes", "mean_score", "score_ci95", "scores", "mean_return", "step_ms_p50",
                                  "step_ms_p99", "late_steps", "steps", "_seconds")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/bench-pop")
    ap.add_argument("--dataset", default=None, help="reuse this recording instead of recording the teacher")
    ap.add_argument("--games", type=int, default=30, help="teacher games to record")
    ap.add_argument("--eval-games", type=int, default=20, help="games each agent plays")
    ap.add_argument("--variants", default="base,lead", help="study variants, comma-separated (see the docstring)")
    ap.add_argument("--modes", default="argmax,sample", help="how studied agents act: argmax, sample or both")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    res = {"bench": "pop_study", "loadavg_start": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count()}
    t0 = time.time()
    if args.dataset:
        ds = Path(args.dataset)
        teacher = json.loads((work / "teacher.json").read_text()) if (work / "teacher.json").exists() else None
    else:
        ds = work / "dataset"
        teacher = run([sys.executable, "benchmarks/teacher_pop.py", "--games", str(args.games), "--out", str(ds),
                       "--seed", "100"], work / "teacher.log")
        (work / "teacher.json").write_text(json.dumps(teacher))
    if teacher:
        res["teacher"] = {
            k: teacher.get(k) for k in ("games", "mean_score", "score_ci95", "scores", "reaction", "click_delay")
        }
    info = run([sys.executable, "-m", "hakisa.cli", "data", "info", str(ds), "--json"], work / "data-info.log")
    res["dataset"] = {k: info.get(k) for k in ("episodes", "frames", "actions", "cut")}
    eval_seed = 777  # the page's game seeds for every evaluation: the same targets for every agent
    res["untrained"] = play("untrained", None, args.eval_games, work, sample=True, seed=eval_seed)
    fps = 15.0
    variants = {"base": [], "lead": [f"--label-lag={-1 / fps:.4f}"]}
    for spec in args.variants.split(","):
        name, _, flags = spec.partition(":")
        study_flags = variants.get(name, [f for f in flags.split(";") if f])
        run_dir = work / f"study-{name}"
        st = run(
            [
                sys.executable,
                "-m",
                "hakisa.cli",
                "study",
                str(ds),
                "--out",
                str(run_dir),
                "--epochs",
                str(args.epochs),
                "--seed",
                str(args.seed),
                "--no-progress",
                *study_flags,
            ],
            work / f"study-{name}.log",
        )
        row = {
            "flags": study_flags,
            "epochs": st["epochs"],
            "seconds": st["seconds"],
            "val": {
                k: st["best"].get(k) for k in ("acc_cmd", "balanced_acc_cmd", "acc_x", "acc_y", "majority_baseline")
            },
        }
        for mode in args.modes.split(","):
            row[mode] = play(
                f"{name}-{mode}", str(run_dir / "best"), args.eval_games, work, sample=mode == "sample", seed=eval_seed
            )
        res[f"studied_{name}"] = row
    t_mean = (res.get("teacher") or {}).get("mean_score")
    best = max(
        (res[k][m]["mean_score"], k, m)
        for k in res
        if k.startswith("studied_")
        for m in args.modes.split(",")
        if m in res[k]
    )
    res["best"] = {
        "agent": best[1],
        "mode": best[2],
        "mean_score": best[0],
        "ratio_to_teacher": round(best[0] / t_mean, 3) if t_mean else None,
    }
    res["bars"] = {
        "studied>=0.5*teacher": bool(t_mean and best[0] >= 0.5 * t_mean),
        "studied>untrained": best[0] > res["untrained"]["mean_score"] + res["untrained"]["score_ci95"],
    }
    res["seconds"] = round(time.time() - t0, 1)
    res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
