"""Live learning from scratch on the zoo's games: `hakisa train` with no --init, then 20 judged games.

    flock /tmp/hakisa-bench.lock python benchmarks/live_scratch.py catch hop --minutes 30 --windows 4 --seeds 3 \
        --json benchmarks/live_scratch_2026-12-06.json
    python benchmarks/live_scratch.py catch --minutes 3 --seeds 1 --algo ppo      # today's live PPO, to compare
    python benchmarks/live_scratch.py pop --zoo benchmarks/pop_reference_2026-12-07.json \
        --play-flag=--opt=seed=777 --minutes 30 --windows 1 --seeds 1             # a shipped game (its reference)

Per game and seed, the commands a user would type (the zoo protocol's helpers run them, benchmarks/zoo/run.py):
  1. `hakisa train --game benchmarks/zoo/NAME.json --minutes M --windows N --seed S --run ...`  (no --init)
  2. `hakisa play --game benchmarks/zoo/NAME.json --checkpoint RUN --episodes 20 --seed S`  (its best/)
The teacher's and the untrained agent's means are the zoo protocol's (--zoo, a benchmarks/zoo/run.py JSON), or,
for a shipped game (pop), its reference JSON's (the same rows, measured by that game's own benchmarks).
Per game: scratch_mean is the median over seeds of each seed's mean of 20 games, scratch_ci that median
seed's 95 % interval, scratch_share scratch_mean / teacher_mean, and curve the score of the training games
against minutes of play (each minute's mean over the seeds' curve.json). Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "zoo"))
from run import games, interval, run_json  # noqa: E402  (the zoo protocol's own helpers)


def one_seed(name: str, work: Path, args, seed: int) -> dict:
    """Train from scratch, play 20 games of the result; the seed's numbers."""
    hakisa = [sys.executable, "-m", "hakisa.cli"]
    game_file = str(ROOT / "benchmarks" / "zoo" / f"{name}.json") if name in games() else name  # or shipped
    run = work / f"{args.algo}-seed{seed}"
    cmd = hakisa + ["train", "--game", game_file, "--minutes", str(args.minutes), "--windows", str(args.windows),
                    "--seed", str(seed), "--run", run.name, "--runs-dir", str(work), "--no-progress",
                    "--algo", args.algo, *args.train_flag]
    print(f"[live_scratch] {name} seed {seed}: {' '.join(cmd[2:])}", flush=True)
    train = run_json(cmd, work / f"{run.name}-train.log", timeout=args.minutes * 60 + 900)
    print(f"[live_scratch] {name} seed {seed}: {args.episodes} games of {run}", flush=True)
    play = run_json(hakisa + ["play", "--game", game_file, "--checkpoint", str(run), "--episodes",
                              str(args.episodes), "--seed", str(seed + 2), "--out", str(work / f"{run.name}-play"),
                              *args.play_flag],
                    work / f"{run.name}-play.log", timeout=3600)
    curve = json.loads((run / "curve.json").read_text())["curve"]
    keep = ("steps", "sps", "grad_steps", "replay_ratio", "rollbacks", "resets", "judged_last5", "best_judged")
    return {"seed": seed, "mean": play["mean_score"], "ci": interval(play["mean_score"], play["score_ci95"]),
            "train": {k: train.get(k) for k in keep} | {"late_share": train["timing"].get("late_share"),
                                                         "jitter": train["timing"].get("jitter")},
            "curve": curve}


def mean_curve(curves: list[list]) -> list:
    """[minute, mean over the seeds that have it, seeds] from each seed's [minute, score, games] rows."""
    by: dict[int, list[float]] = {}
    for c in curves:
        for minute, score, _ in c:
            by.setdefault(int(minute), []).append(float(score))
    return [[m, round(sum(v) / len(v), 3), len(v)] for m, v in sorted(by.items())]


def one_game(name: str, zoo: dict, args) -> dict:
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    seeds = [one_seed(name, work, args, s) for s in range(args.seed, args.seed + args.seeds)]
    median = sorted(seeds, key=lambda r: r["mean"])[len(seeds) // 2]
    ref = zoo.get(name, {})
    t_mean, u_mean = ref.get("teacher_mean"), ref.get("untrained_mean")
    entry = {
        "game": name, "algo": args.algo,
        "teacher_mean": t_mean, "untrained_mean": u_mean, "untrained_ci": ref.get("untrained_ci"),
        "scratch_mean": median["mean"], "scratch_ci": median["ci"],
        "scratch_share": round(median["mean"] / t_mean, 3) if t_mean else None,
        "seeds": len(seeds), "windows": args.windows, "minutes": args.minutes,
        "passes": bool(t_mean and median["mean"] >= 0.5 * t_mean and ref.get("untrained_ci")
                       and median["ci"][0] > ref["untrained_ci"][1]),
        "per_seed": [{k: v for k, v in s.items() if k != "curve"} for s in seeds],
        "curve": mean_curve([s["curve"] for s in seeds]),
    }
    print(f"[live_scratch] {name}: teacher {t_mean}, untrained {u_mean}, scratch {median['mean']:.2f} "
          f"(median of {len(seeds)} seeds) {'PASS' if entry['passes'] else 'FAIL'}", flush=True)
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("games", nargs="*", help=f"zoo games (default: all of {', '.join(games())})")
    ap.add_argument("--minutes", type=float, default=30.0, help="minutes of live play per run")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="the first seed")
    ap.add_argument("--episodes", type=int, default=20, help="games played by the result")
    ap.add_argument("--algo", choices=["srdqn", "ppo", "dqn"], default="srdqn",
                    help="srdqn (the live default from scratch) or today's ppo / dqn, to compare")
    ap.add_argument("--train-flag", action="append", default=[], metavar="FLAG",
                    help="an extra flag for hakisa train (e.g. --train-flag=--set=lr=3e-4; for comparisons only)")
    ap.add_argument("--play-flag", action="append", default=[], metavar="FLAG",
                    help="an extra flag for the judging hakisa play (e.g. --play-flag=--opt=seed=777 for Pop)")
    ap.add_argument("--zoo", action="append", default=[],
                    help="a JSON with each game's teacher and untrained means (the zoo protocol's, or a game's "
                         "own reference such as pop_reference_2026-12-07.json); repeatable; default: "
                         "zoo_2026-12-06.json")
    ap.add_argument("--work", default="runs/live_scratch", help="runs go to WORK/NAME/")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    names = args.games or games()
    refs = args.zoo or [str(ROOT / "benchmarks" / "zoo_2026-12-06.json")]
    zoo = {g["game"]: g for f in refs for g in json.loads(Path(f).read_text())["games"]}
    unknown = [n for n in names if n not in games() and n not in zoo]
    if unknown:
        ap.error(f"zoo games: {', '.join(games())}, or a shipped game named in a --zoo JSON (unknown: {unknown})")
    t0, load0 = time.time(), os.getloadavg()
    entries = [one_game(n, zoo, args) for n in names]
    result = {
        "benchmark": "benchmarks/live_scratch.py", "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_at_start": [round(v, 2) for v in load0], "load_at_end": [round(v, 2) for v in os.getloadavg()],
        "references": refs, "algo": args.algo, "minutes": args.minutes, "windows": args.windows, "seeds": args.seeds,
        "episodes": args.episodes, "seconds": round(time.time() - t0), "games": entries,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
