"""Live RL on a game's real window(s), from a studied checkpoint: does playing raise the score?

    python scripts/bench_live_rl.py --game pop --init runs/bench-pop/study-lead/best --algo dqn --minutes 20
    python scripts/bench_live_rl.py --game pop --init ... --algo ppo --minutes 20 --windows 2
    python scripts/bench_live_rl.py --game duel --live --init runs/duel-bc --algo dqn --minutes 20

1. `hakisa train --game G [--live] --init CK --algo A --minutes M --windows W` (the user's command): the actor
   plays the window(s), the learner trains in the background. Its curve (score against minutes of play,
   from the games it played while learning, sampled/epsilon actions) comes back from runs/<name>/curve.json.
2. `hakisa play --game G [--live] --checkpoint <run>/checkpoint --episodes E` (argmax actions): the trained agent.
3. The same for the studied agent (`--init`), unless `--baseline FILE` gives its earlier `hakisa play` JSON.
Prints JSON as its last line; `beats_init` is True when the two 95 % intervals do not overlap.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pop import run  # noqa: E402  (one way to run a command and keep its log)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="pop")
    p.add_argument("--live", action="store_true", help="train and play on the window of a game that has a simulator")
    p.add_argument("--init", required=True, help="the studied checkpoint")
    p.add_argument("--algo", choices=["dqn", "ppo"], default="dqn")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--windows", type=int, default=1)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--eval-opt", action="append", default=[], help="game options of the evaluation games (e.g. seed=777)"
    )
    p.add_argument("--baseline", help="an earlier `hakisa play` JSON of the studied agent (skips re-measuring it)")
    p.add_argument("--set", action="append", default=[], help="learner Args overrides, passed to hakisa train")
    p.add_argument("--extra", default="", help="more hakisa train flags, space separated")
    p.add_argument("--work", default="runs/bench-live-rl")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    name = f"{a.game}-{a.algo}-w{a.windows}-s{a.seed}"
    hk = [sys.executable, "-m", "hakisa.cli"]
    live = ["--live"] if a.live else []
    train = run(
        hk
        + [
            "train",
            "--game",
            a.game,
            *live,
            "--init",
            a.init,
            "--algo",
            a.algo,
            "--minutes",
            str(a.minutes),
            "--windows",
            str(a.windows),
            "--run",
            name,
            "--runs-dir",
            str(work),
            "--seed",
            str(a.seed),
            "--no-progress",
            *[x for kv in a.set for x in ("--set", kv)],
            *a.extra.split(),
        ],
        work / f"{name}.log",
    )
    curve = json.loads((work / name / "curve.json").read_text())

    def play(ck: str, tag: str) -> dict:
        return run(
            hk
            + [
                "play",
                "--game",
                a.game,
                *live,
                "--checkpoint",
                ck,
                "--episodes",
                str(a.eval_episodes),
                "--seed",
                str(a.seed + 100),
                *[x for kv in a.eval_opt for x in ("--opt", kv)],
            ],
            work / f"{name}-play-{tag}.log",
        )

    trained = play(str(work / name / "checkpoint"), "trained")
    base = json.loads(Path(a.baseline).read_text()) if a.baseline else play(a.init, "init")
    key = "win_rate" if "win_rate" in trained else "mean_score"

    def interval(s: dict) -> tuple[float, float]:
        if key == "mean_score":
            return s["mean_score"] - s["score_ci95"], s["mean_score"] + s["score_ci95"]
        n, p_ = s["episodes"], s["win_rate"]  # Wilson's interval for a rate
        z = 1.96
        c, h = (
            (p_ + z * z / (2 * n)) / (1 + z * z / n),
            z * ((p_ * (1 - p_) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n),
        )
        return c - h, c + h

    lo_t, hi_t = interval(trained)
    lo_b, hi_b = interval(base)
    slim = lambda s: {
        k: s.get(k)
        for k in (
            "episodes",
            "mean_score",
            "score_ci95",
            "win_rate",
            "mean_return",
            "scores",  # noqa: E731
            "outcomes",
            "step_ms_p50",
            "step_ms_p99",
            "late_steps",
            "steps",
            "checkpoint",
        )
        if k in s
    }
    out = {
        "bench": "live_rl",
        "game": a.game,
        "algo": a.algo,
        "windows": a.windows,
        "minutes": a.minutes,
        "seed": a.seed,
        "init": a.init,
        "sets": a.set,
        "extra": a.extra,
        "cpus": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "train": {k: v for k, v in train.items()},
        "curve": curve["curve"],
        "curve_key": curve["score_key"],
        "trained": slim(trained),
        "init_eval": slim(base),
        "interval_trained": [round(lo_t, 3), round(hi_t, 3)],
        "interval_init": [round(lo_b, 3), round(hi_b, 3)],
        "beats_init": bool(lo_t > hi_b),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
