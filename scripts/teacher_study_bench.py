"""The real test of issue 5, end to end: teacher on the real page -> `hakisa record` -> `hakisa study` -> sim.

    python scripts/teacher_study_bench.py --fights 20 --tier normal --work /tmp/bench5

1. scripts/teacher_duel.py plays >= 20 fights on the duel page in Chromium under Xvfb with real X key
   events while `hakisa record` (a separate process: pixels + X events only) writes the episode store;
2. `hakisa data check` validates it;
3. `hakisa study` clones the teacher (early stopping on held-out fights);
4. the studied agent fights the duel SIM against the same tier.
The bar: studied win rate >= 70 % of the teacher's win rate on the page. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fights", type=int, default=20)
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--work", default="runs/teacher_study_bench", help="dataset and run go here")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--eval-episodes", type=int, default=200)
    ap.add_argument("--eval-deterministic", action="store_true", help="argmax actions in the sim (default: sample)")
    ap.add_argument("--reuse", action="store_true", help="skip recording when the dataset already exists")
    args = ap.parse_args()

    work = Path(args.work)
    ds, run = work / "dataset", work / "run"
    t0 = time.time()
    teacher = None
    if not (args.reuse and (ds / "meta.json").exists()):
        work.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([sys.executable, str(ROOT / "scripts" / "teacher_duel.py"), "--fights", str(args.fights),
                            "--tier", args.tier, "--out", str(ds), "--fps", str(args.fps)],
                           capture_output=True, text=True)
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        teacher = json.loads(p.stdout.strip().splitlines()[-1])
        (work / "teacher.json").write_text(json.dumps(teacher))
    else:
        teacher = json.loads((work / "teacher.json").read_text())
    t_record = time.time() - t0

    check = subprocess.run([sys.executable, "-m", "hakisa.cli", "data", "check", "--json", str(ds)],
                           capture_output=True, text=True)
    check_doc = json.loads(check.stdout)
    info = json.loads(subprocess.run([sys.executable, "-m", "hakisa.cli", "data", "info", "--json", str(ds)],
                                     capture_output=True, text=True).stdout)

    from hakisa.phases.study import StudyArgs, study

    t1 = time.time()
    res = study(StudyArgs(dataset=str(ds), out=str(run), epochs=args.epochs, patience=args.patience,
                          eval_episodes=args.eval_episodes, eval_tier=args.tier,
                          eval_deterministic=args.eval_deterministic, progress=False))
    t_study = time.time() - t1
    teacher_wr = teacher["win_rate"]
    studied_wr = res["eval"]["win_rate"]
    ratio = studied_wr / teacher_wr if teacher_wr > 0 else None
    out = {
        "teacher_fights": teacher["fights"], "teacher_win_rate": teacher_wr, "tier": args.tier,
        "recorded_episodes": info["episodes"], "recorded_frames": info["frames"], "recorded_actions": info["actions"],
        "recorder": teacher.get("recorder"), "data_check_ok": check_doc["ok"], "cut_episodes": check_doc["cut"],
        "study_epochs": res["epochs"], "val_acc_cmd": res["best"]["acc_cmd"],
        "val_balanced_acc_cmd": res["best"]["balanced_acc_cmd"], "val_majority_baseline": res["best"]["majority_baseline"],
        "studied_sim_episodes": res["eval"]["episodes"], "studied_win_rate": studied_wr,
        "studied_mean_boss_damage": res["eval"]["mean_boss_damage"], "eval_deterministic": args.eval_deterministic,
        "ratio": ratio, "bar": 0.7, "pass": bool(ratio is not None and ratio >= 0.7),
        "seconds_record": round(t_record, 1), "seconds_study": round(t_study, 1), "run": str(run),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
