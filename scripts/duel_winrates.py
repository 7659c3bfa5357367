"""Win-rate table of the duel: {random, expert, expert_block} x {easy, normal, hard}, N fights per cell.

    .venv/bin/python scripts/duel_winrates.py [--fights 400] [--seed 0]

random = a uniformly random command of the duel input map (8 commands) held for 4 ticks;
expert = hakisa.envs.duel.expert.expert_keys (the reference: waits for the reveal, rolls through, punishes)
deciding every 4 ticks on the true state; expert_block = the same with style="block" (shield up before the
reveal instead of rolling: slower, chip damage), to show what a different line achieves.
Every fight runs to its end (a win, a death or the 90 s time limit). The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hakisa.envs.duel.expert import expert_keys
from hakisa.envs.duel.sim import COMMAND_KEYS, DuelSim


def play(player: str, tier: str, fights: int, seed: int, period: int = 4) -> dict:
    sim = DuelSim(n=fights, tier=tier, seed=seed)
    rng = np.random.default_rng(seed + 1)
    end_tick = np.zeros(fights, dtype=np.int64)
    while not sim.done.all():
        if player == "random":
            keys = COMMAND_KEYS[rng.integers(0, len(COMMAND_KEYS), size=fights)]
        else:
            keys = expert_keys(sim.state, style="block" if player == "expert_block" else "roll")
        for _ in range(period):
            sim.step(keys)
    end_tick[:] = sim.state["tick"]
    won = sim.winner == 1
    timeout = (sim.winner == 2) & (sim.state["k_hp"] > 0)
    fps = sim.rules["fps"]
    return {"win_rate": float(won.mean()), "timeouts": float(timeout.mean()), "fights": fights,
            "mean_fight_s": round(float(end_tick.mean()) / fps, 1),
            "mean_boss_hp_left": round(float(sim.state["b_hp"].mean()), 1),
            "mean_knight_hp_left": round(float(sim.state["k_hp"].mean()), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fights", type=int, default=400, help="fights per cell (>= 200)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.time()
    table = {player: {tier: play(player, tier, args.fights, args.seed + 1000 * i)
                      for i, tier in enumerate(("easy", "normal", "hard"))}
             for player in ("random", "expert", "expert_block")}
    for player, row in table.items():
        print(player.ljust(12), "  ".join(f"{t}: {c['win_rate']:.3f} ({c['mean_fight_s']} s)" for t, c in row.items()))
    print(json.dumps({"win_rates": {p: {t: c["win_rate"] for t, c in row.items()} for p, row in table.items()},
                      "cells": table, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
