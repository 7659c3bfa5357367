"""Issue 38 part 5: is a live run that was killed with SIGKILL and resumed as good as one that was never killed?

    flock /tmp/hakisa-bench.lock python benchmarks/resume_pair.py catch --minutes 30 --kill-at 15 \
        --work runs/resume-pair --json benchmarks/resume_pair_DATE.json

Two runs of the same command, the same seed, started together (so that both share the machine alike):
  `hakisa train --game benchmarks/zoo/NAME.json --minutes M --windows W --seed S --run straight|killed`
"killed" gets SIGKILL once its checkpoint/ holds `--kill-at` minutes of play and a further `--lost` seconds
have passed (what a crash costs: the play since the last save), then the same command plus `--resume`.
Both finished runs are then played by `hakisa play --episodes 20` (checkpoint/, the weights at M minutes, and
best/, the best judged weights), with the same game seeds. Each run's training curve (curve.json) is kept.
Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "zoo"))
from run import interval, run_json  # noqa: E402  (the zoo protocol's own helpers)


def books(run: Path) -> dict:
    ck = run / "checkpoint" / "config.json"
    try:
        return json.loads(ck.read_text()).get("resume", {})
    except (OSError, ValueError):  # not written yet, or being written
        return {}


def play(game_file: str, checkpoint: Path, out: Path, episodes: int, seed: int) -> dict:
    p = run_json([sys.executable, "-m", "hakisa.cli", "play", "--game", game_file, "--checkpoint", str(checkpoint),
                  "--episodes", str(episodes), "--seed", str(seed), "--out", str(out)], out.with_suffix(".log"),
                 timeout=3600)
    return {"mean": p["mean_score"], "ci": interval(p["mean_score"], p["score_ci95"]), "games": p["episodes"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("game", help="a zoo game (benchmarks/zoo/NAME.json)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kill-at", type=float, default=15.0, help="minutes of play saved before the SIGKILL")
    ap.add_argument("--lost", type=float, default=60.0, help="seconds played after that save, lost to the kill")
    ap.add_argument("--windows", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--work", default="runs/resume-pair")
    ap.add_argument("--train-flag", action="append", default=[], help="passed on to both `hakisa train` runs")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plays", default="final,best",
                    help="which weights of each run play: final (checkpoint/), best (best/) or both")
    args = ap.parse_args(argv)
    work = Path(args.work)
    plays = [k for k in args.plays.split(",") if k]
    if not plays or set(plays) - {"final", "best"}:
        ap.error("--plays: final, best or final,best")
    work.mkdir(parents=True, exist_ok=True)
    game_file = str(ROOT / "benchmarks" / "zoo" / f"{args.game}.json")
    load0, t0 = os.getloadavg(), time.time()

    def train(run: str, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "hakisa.cli", "train", "--game", game_file, "--minutes", str(args.minutes),
               "--windows", str(args.windows), "--seed", str(args.seed), "--run", run, "--runs-dir", str(work),
               "--no-progress", *args.train_flag, *extra]
        print(f"[resume_pair] {' '.join(cmd[2:])}", flush=True)
        log = open(work / f"{run}{'-resumed' if extra else ''}.log", "w")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    straight, killed = train("straight"), train("killed")
    deadline = time.monotonic() + args.minutes * 60 + 900
    while books(work / "killed").get("minutes", 0.0) < args.kill_at:
        if killed.poll() is not None:
            raise SystemExit(f"resume_pair: the run to kill ended first (exit {killed.returncode}); see {work}")
        if time.monotonic() > deadline:
            raise SystemExit("resume_pair: no checkpoint reached --kill-at in time")
        time.sleep(2)
    saved = books(work / "killed")
    time.sleep(args.lost)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    at_kill = books(work / "killed")
    print(f"[resume_pair] SIGKILL at {at_kill.get('minutes', 0):.2f} saved minutes of play "
          f"({at_kill.get('steps')} steps); resuming", flush=True)
    resumed = train("killed", "--resume")
    for p in (straight, resumed):
        p.wait(timeout=max(60.0, deadline - time.monotonic()))
        if p.returncode != 0:
            raise SystemExit(f"resume_pair: `hakisa train` exited {p.returncode}; see {work}")
    rows = {}
    for run in ("straight", "killed"):
        d = work / run
        b = books(d)
        rows[run] = {
            **{k: play(game_file, d / ("checkpoint" if k == "final" else "best"), work / f"{run}-{k}-play",
                       args.episodes, args.seed + 2) for k in plays},
            "steps": b.get("steps"), "grad_steps": b.get("grad_steps"), "minutes": b.get("minutes"),
            "curve": json.loads((d / "curve.json").read_text()).get("curve"),
        }
    rows["killed"]["killed_at"] = {"saved_minutes": saved.get("minutes"), "saved_steps": saved.get("steps"),
                                   "lost_seconds": args.lost}
    # what the resumed run said it kept (the replay's transitions, or why not)
    rows["killed"]["resumed_said"] = [ln.strip() for ln in (work / "killed-resumed.log").read_text().splitlines()
                                      if ln.startswith(("resume:", "train: resuming"))]

    def overlap(a, b) -> bool:
        return a["ci"][0] <= b["ci"][1] and b["ci"][0] <= a["ci"][1]

    out = {
        "benchmark": "benchmarks/resume_pair.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_at_start": [round(x, 2) for x in load0], "load_at_end": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.time() - t0), "game": args.game, "minutes": args.minutes, "windows": args.windows,
        "seed": args.seed, "episodes": args.episodes, **rows,
        "within_noise": {k: overlap(rows["straight"][k], rows["killed"][k]) for k in plays},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
