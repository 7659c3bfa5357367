"""The real test of issue 5, end to end: teacher on the real page -> `hakisa record` -> `hakisa study` -> sim.

    python benchmarks/teacher_study_bench.py --fights 20 --tier normal --work /tmp/bench5
    # what meets the bar (benchmarks/teacher_study_60fps.json: teacher 50/50, clone 84 % over 200 sim fights):
    python benchmarks/teacher_study_bench.py --fights 50 --work runs/ts60 --eval-deterministic \
        --init pretrained:duel-perception

1. benchmarks/teacher_duel.py plays >= 20 fights on the duel page in Chromium under Xvfb with real X key
   events while `hakisa record` (a separate process: pixels + X events only) writes the episode store;
2. `hakisa data check` validates it;
3. `hakisa study` clones the teacher (early stopping on held-out fights), from scratch or, with
   --init, from the encoder `hakisa duel perception` pretrained to read the sim's state off its frames;
4. the studied agent fights the duel SIM against the same tier.
Recording at 60 fps (the default) gives a label at every game tick, and the study stacks every 4th frame
(--stack-stride), so the clone sees the 15 Hz stack of the duel recipe and decides every tick in the sim,
as the teacher did on the page.
The bar: studied win rate >= 70 % of the teacher's win rate on the page. Last line: JSON.
benchmarks/chain_bench.py goes on from here (explore/consolidate, then play on the page).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def record_teacher(work: Path, fights: int, tier: str, fps: float, obs: str, reuse: bool) -> tuple[dict, float]:
    """The teacher plays the page while `hakisa record` watches; (teacher's record, seconds)."""
    ds = work / "dataset"
    t0 = time.time()
    if reuse and (ds / "meta.json").exists() and (work / "teacher.json").exists():
        return json.loads((work / "teacher.json").read_text()), 0.0
    work.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "teacher_duel.py"),
            "--fights",
            str(fights),
            "--tier",
            tier,
            "--out",
            str(ds),
            "--fps",
            str(fps),
            "--obs",
            obs,
        ],
        capture_output=True,
        text=True,
    )
    sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
    teacher = json.loads(p.stdout.strip().splitlines()[-1])
    (work / "teacher.json").write_text(json.dumps(teacher))
    return teacher, time.time() - t0


def check_dataset(ds: Path) -> tuple[dict, dict]:
    check = subprocess.run(
        [sys.executable, "-m", "hakisa.cli", "data", "check", "--json", str(ds)], capture_output=True, text=True
    )
    info = subprocess.run(
        [sys.executable, "-m", "hakisa.cli", "data", "info", "--json", str(ds)], capture_output=True, text=True
    )
    return json.loads(check.stdout), json.loads(info.stdout)


def study_stage(
    ds: Path,
    run: Path,
    tier: str,
    epochs: int,
    patience: int,
    eval_episodes: int,
    deterministic: bool,
    init: str = "",
    action_delay: int = 0,
    decision_ticks: int = 0,
    label_lag: float = 0.0,
    stack_stride: int = 1,
) -> dict:
    from hakisa.phases.study import StudyArgs, study

    return study(
        StudyArgs(
            dataset=str(ds),
            out=str(run),
            epochs=epochs,
            patience=patience,
            init=init,
            eval_episodes=eval_episodes,
            eval_opt=f"tier={tier}",
            eval_act="argmax" if deterministic else "sample",
            eval_action_delay=action_delay,
            eval_decision_ticks=decision_ticks,
            label_lag=label_lag,
            stack_stride=stack_stride,
            progress=False,
        )
    )


def stack_stride(args) -> int:
    """Frames between stacked frames: the duel recipe stacks frames 4 ticks (1/15 s) apart."""
    return args.stack_stride or max(1, round(args.fps / 15))


def add_common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--fights", type=int, default=20)
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--fps", type=float, default=60.0, help="recorder rate (60: a label every game tick)")
    ap.add_argument("--obs", default="80x45", help="recorded frame size (the duel recipe's)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--eval-episodes", type=int, default=200)
    ap.add_argument("--eval-deterministic", action="store_true", help="argmax actions in the sim (default: sample)")
    ap.add_argument("--reuse", action="store_true", help="skip recording when the dataset already exists")
    ap.add_argument(
        "--eval-action-delay",
        type=int,
        default=0,
        help="sim ticks between the clone's decision and its effect "
        "(the page teacher timed its keys for the page's lag)",
    )
    ap.add_argument(
        "--eval-decision-ticks",
        type=int,
        default=0,
        help="sim ticks between the clone's decisions (0: the recording's frame period; 1: every tick, "
        "as the page teacher played)",
    )
    ap.add_argument(
        "--label-lag",
        type=float,
        default=0.0,
        help="study labels each frame with the keys held this many seconds before its grab",
    )
    ap.add_argument(
        "--stack-stride",
        type=int,
        default=0,
        help="study stacks every Nth frame (0: 4 game ticks apart at the recording's fps, e.g. 4 at 60 fps)",
    )
    ap.add_argument(
        "--init",
        default="",
        help="study starts from this checkpoint's encoder + trunk, e.g. the one "
        "`hakisa duel perception` wrote (default: from scratch)",
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common(ap)
    ap.add_argument("--work", default="runs/teacher_study_bench", help="dataset and run go here")
    args = ap.parse_args()

    work = Path(args.work)
    ds = work / "dataset"
    stride = stack_stride(args)
    run = work / (
        "study"
        + ("-init" if args.init else "")
        + (f"-lag{args.label_lag * 1000:.0f}ms" if args.label_lag else "")
        + (f"-stride{stride}" if stride > 1 else "")
    )
    teacher, t_record = record_teacher(work, args.fights, args.tier, args.fps, args.obs, args.reuse)
    check_doc, info = check_dataset(ds)
    t1 = time.time()
    res = study_stage(
        ds,
        run,
        args.tier,
        args.epochs,
        args.patience,
        args.eval_episodes,
        args.eval_deterministic,
        args.init,
        args.eval_action_delay,
        args.eval_decision_ticks,
        args.label_lag,
        stride,
    )
    t_study = time.time() - t1
    teacher_wr = teacher["win_rate"]
    studied_wr = res["eval"]["win_rate"]
    ratio = studied_wr / teacher_wr if teacher_wr > 0 else None
    out = {
        "teacher_fights": teacher["fights"],
        "teacher_win_rate": teacher_wr,
        "tier": args.tier,
        "recorded_episodes": info["episodes"],
        "recorded_frames": info["frames"],
        "recorded_actions": info["actions"],
        "recorder": teacher.get("recorder"),
        "data_check_ok": check_doc["ok"],
        "cut_episodes": check_doc["cut"],
        "study_epochs": res["epochs"],
        "val_acc_cmd": res["best"]["acc_cmd"],
        "val_balanced_acc_cmd": res["best"]["balanced_acc_cmd"],
        "val_majority_baseline": res["best"]["majority_baseline"],
        "studied_sim_episodes": res["eval"]["episodes"],
        "studied_win_rate": studied_wr,
        "studied_mean_return": res["eval"]["mean_return"],
        "eval_deterministic": args.eval_deterministic,
        "study_init": args.init or None,
        "eval_action_delay": args.eval_action_delay,
        "eval_decision_ticks": res["eval"].get("frame_skip"),
        "label_lag": args.label_lag,
        "recorded_fps": args.fps,
        "stack_stride": stride,
        "eval_stack_ticks": res["eval"].get("stack_ticks"),
        "ratio": ratio,
        "bar": 0.7,
        "pass": bool(ratio is not None and ratio >= 0.7),
        "seconds_record": round(t_record, 1),
        "seconds_study": round(t_study, 1),
        "run": str(run),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
