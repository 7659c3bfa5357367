"""The learned boss, measured: a league's generations (promotion tests, Elo), and what a pixel knight makes of it.

    .venv/bin/python scripts/bench_boss.py --league runs/boss --fights 200 --out benchmarks/boss_league.json
    .venv/bin/python scripts/bench_boss.py --league runs/boss --train  # run `boss-train` first (its defaults)

For each knight checkpoint (--knights, default the shipped pretrained:duel-ppo): its win rate over --fights
fights at Normal against the scripted boss and against the league's latest boss (--every-boss: against every
promoted generation too), on the same seeds, with
sampled actions (as scripts/bench_duel_learning.py judges agents). Then the league's table: each promoted
generation's test against its predecessor, and the Elo ratings (league.json). The LAST line printed is one
JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from hakisa.games.duel import league


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--league", default="runs/boss")
    p.add_argument("--train", action="store_true", help="run boss-train with its defaults first")
    p.add_argument("--knights", default="pretrained:duel-ppo", help="comma-separated pixel checkpoints to judge")
    p.add_argument("--fights", type=int, default=200)
    p.add_argument("--every-boss", action="store_true", help="judge the knights against every boss of the league, "
                   "not only scripted and the latest")
    p.add_argument("--tier", default="normal")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    t0 = time.time()
    if a.train:
        league.train_league(a.league, league.Args())
    lg = league.League(a.league)
    latest, brain = lg.latest_boss()
    bosses = lg.bosses() if a.every_boss else {"scripted": None, latest: brain}
    seeds = np.random.default_rng(a.seed).integers(0, 2**32, a.fights, dtype=np.uint64)
    knights = {}
    for ck in [c for c in a.knights.split(",") if c.strip()]:
        k = league.Knight(ck.split(":")[-1], "pixels", ck)
        nb = len(bosses)
        res = league.play([k], np.zeros(nb * a.fights, int), list(bosses.values()), np.repeat(np.arange(nb), a.fights),
                          np.tile(seeds, nb), a.tier)
        won = (res["winner"] == 1).reshape(nb, a.fights).mean(1)
        knights[ck] = {**{f"vs_{b}": float(w) for b, w in zip(bosses, won)}, "fights": a.fights}
        print(f"{ck}: wins " + ", ".join(f"{w:.1%} against {b}" for b, w in zip(bosses, won)), flush=True)
    gens = [{"gen": e["gen"], "vs": e["vs"], **{k: e["test"].get(k) for k in ("pairs", "decisive", "new_takes",
                                                                              "wilson_lower", "new_win_rate",
                                                                              "old_win_rate", "promoted")},
             "minutes": e.get("minutes")} for e in lg.doc["log"]]
    out = {"bench": "boss_league", "league": str(a.league), "latest": latest, "tier": a.tier, "knights": knights,
           "generations": gens, "elo": (lg.doc.get("elo") or {}).get("elo"), "clone": lg.doc.get("clone"),
           "league_minutes": lg.doc.get("minutes"), "args": lg.doc.get("args"),
           "wall_s": round(time.time() - t0, 1), "load_avg": os.getloadavg(),
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
