"""The demo on an idle machine and beside busy cores (issue 38's bar): `hakisa duel demo` as a user runs it.

    flock /tmp/hakisa-bench.lock python benchmarks/demo_busy.py --spinners 0 2 --episodes 20 \
        --json benchmarks/demo_busy_2026-12-06.json

Per row: `hakisa duel demo --retrain --episodes E --no-pretrained --run demo-busyN` (its own fresh training,
then E fights on the real page under its own Xvfb), with N processes spinning on the CPU from before the
demo starts until it ends (each a bare `while True: pass`, the stand-in for a user's other work). A row
keeps the demo's JSON (sim and page win rates, seconds) and its training run's stop (the student's target,
its steps, or the cap). Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def one_row(n: int, args) -> dict:
    run = f"demo-busy{n}"
    cmd = [sys.executable, "-m", "hakisa.cli", "duel", "demo", "--retrain", "--episodes", str(args.episodes),
           "--no-pretrained", "--run", run, "--runs-dir", args.runs_dir, "--seed", str(args.seed)]
    spin = spinners(n)
    t0 = time.time()
    try:
        time.sleep(2.0 if n else 0.0)  # the spinners hold their cores before the demo looks at the machine
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
    finally:
        for p in spin:
            p.kill()
            p.wait()
    out = r.stdout.strip().splitlines()
    if r.returncode != 0 or not out:
        raise SystemExit(f"demo with {n} spinners failed (exit {r.returncode}): {r.stderr[-2000:]}")
    demo = json.loads(out[-1])
    metrics = json.loads((ROOT / args.runs_dir / run / "checkpoint" / "config.json").read_text())["metrics"]
    busy_line = next((line.strip() for line in out if "machine is busy" in line), None)
    return {"spinners": n, "wall_s": round(time.time() - t0, 1), "demo": demo, "busy_line": busy_line,
            "train": {k: metrics.get(k) for k in ("stopped", "global_step", "teacher_s", "time_s", "win_rate",
                                                   "teacher_win_rate")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spinners", type=int, nargs="+", default=[0, 2], help="spinning processes per row")
    ap.add_argument("--episodes", type=int, default=20, help="fights on the real page per row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds a row may take")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    rows = []
    for n in args.spinners:
        print(f"[demo_busy] {n} spinners", flush=True)
        rows.append(one_row(n, args))
        d = rows[-1]["demo"]
        print(f"[demo_busy] {n} spinners: page {d['page_win_rate']:.2f} of {d['page_episodes']}, sim "
              f"{d['sim_win_rate']:.2f}, {rows[-1]['wall_s']:.0f} s, stop {rows[-1]['train']['stopped']}", flush=True)
    doc = {"benchmark": "benchmarks/demo_busy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "load_at_end": [round(v, 2) for v in os.getloadavg()], "seed": args.seed, "rows": rows,
           "bars": {f"page>=0.8 with {r['spinners']} spinners": r["demo"]["page_win_rate"] >= 0.8 for r in rows}}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
