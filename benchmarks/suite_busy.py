"""The test suite beside busy cores (issue 38, part 2's bar): `.ci/run` on a fresh clone, N times in a row.

    flock /tmp/hakisa-bench.lock python benchmarks/suite_busy.py --runs 3 --spinners 2 \
        --json benchmarks/suite_busy_2026-12-06.json

Per run: a fresh `git clone` of this checkout's HEAD (with `../shared` beside it when this checkout has one,
as CI has), then its `.ci/run` (setup, ruff, the default suite), with N processes spinning on the CPU from
before the run starts until it ends (`demo_busy.spinners`: each a bare `while True: pass`). A run keeps its
exit code, wall time, pytest's summary line and its slowest tests (from `--durations`, which the suite's
pytest options print). Runs stop at the first failure: the bar is N passes in a row. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_busy import spinners  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^([0-9.]+)s (call|setup|teardown)\s+(\S+)$")


def one_run(i: int, args, base: Path) -> dict:
    clone = base / f"run{i}" / "hakisa"
    clone.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                          check=True).stdout.strip()  # each run tests the HEAD of its own start
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (clone.parent / "shared").symlink_to(shared)
    log = Path(args.logs) / f"suite_busy_run{i}.log"
    spin = spinners(args.spinners)
    t0 = time.time()
    try:
        time.sleep(2.0 if args.spinners else 0.0)  # the spinners hold their cores before the suite starts
        with open(log, "w") as f:
            r = subprocess.run(["bash", ".ci/run"], cwd=clone, stdout=f, stderr=subprocess.STDOUT,
                               timeout=args.timeout)
    finally:
        for p in spin:
            p.kill()
            p.wait()
    wall = time.time() - t0
    text = log.read_text(errors="replace").splitlines()
    summary = next((s.strip("= ") for s in reversed(text) if re.search(r"\d+ (passed|failed)", s)), None)
    durations = sorted(((float(m[1]), m[3]) for m in map(DURATION.match, text) if m), reverse=True)
    failed = [s.split(" ", 1)[1] for s in text if s.startswith("FAILED ")]
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)
    return {"run": i, "head": head, "rc": r.returncode, "wall_s": round(wall, 1), "summary": summary, "failed": failed,
            "slowest": [{"s": s, "test": t} for s, t in durations[:8]],
            "over_300_s": [t for s, t in durations if s > 300], "log": str(log),
            "load_at_end": [round(v, 2) for v in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="suite runs in a row (stops at the first failure)")
    ap.add_argument("--spinners", type=int, default=2, help="spinning processes beside each run")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds a run may take")
    ap.add_argument("--logs", default=tempfile.gettempdir(), help="where each run's full output goes")
    ap.add_argument("--keep", action="store_true", help="keep each fresh clone")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="suite_busy_") as base:
        for i in range(1, args.runs + 1):
            print(f"[suite_busy] run {i} of {args.runs}, {args.spinners} spinners, HEAD {head}", flush=True)
            rows.append(one_run(i, args, Path(base)))
            row = rows[-1]
            print(f"[suite_busy] run {i}: exit {row['rc']}, {row['wall_s'] / 60:.1f} min, {row['summary']}, "
                  f"slowest {row['slowest'][0] if row['slowest'] else None}", flush=True)
            if row["rc"] != 0:
                break
    doc = {"benchmark": "benchmarks/suite_busy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "head": head,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "spinners": args.spinners, "rows": rows,
           "passed_in_a_row": next((i for i, r in enumerate(rows) if r["rc"] != 0), len(rows)),
           "tests_over_300_s": sorted({t for r in rows for t in r["over_300_s"]})}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
