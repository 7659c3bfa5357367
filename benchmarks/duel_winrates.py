"""Win-rate table of the duel: {random, expert, expert_block} x {easy, normal, hard}, N fights per cell.

    .venv/bin/python benchmarks/duel_winrates.py [--fights 400] [--seed 0] [--delays 0 4 6]

random = a uniformly random command of the duel input map (8 commands) held for 4 ticks;
expert = hakisa.games.duel.expert.expert_keys (the reference: waits for the reveal, rolls through, punishes;
it does NOT compensate for lag)
deciding every 4 ticks on the true state; expert_block = the same with style="block" (shield up before the
reveal instead of rolling: slower, chip damage), to show what a different line achieves.
Rows are named player@dN: N = ticks of input lag (a FIFO of key bitmasks, see `play`); a learned agent on
the real page sees ~75-95 ms (5-6 ticks) of action->pixel lag, so @d6 is the row that matters for transfer.
Every fight runs to its end (a win, a death or the time limit (55 s)). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque

import numpy as np

from hakisa.games.duel.expert import expert_keys
from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim


def play(
    player: str, tier: str, fights: int, seed: int, period: int = 4, action_delay: int = 0, rules: dict | None = None
) -> dict:
    """`action_delay` ticks of input lag: keys decided at tick t reach the sim at tick t + action_delay
    (a FIFO of per-tick key bitmasks, all-zero at the start), like the ~75-95 ms action->pixel lag of
    the real page. The player still decides from the CURRENT state, so it has to cope with the lag."""
    sim = DuelSim(n=fights, tier=tier, seed=seed, rules=rules)
    rng = np.random.default_rng(seed + 1)
    end_tick = np.zeros(fights, dtype=np.int64)
    fifo: deque[np.ndarray] = deque(np.zeros(fights, dtype=np.uint8) for _ in range(action_delay))
    while not sim.done.all():
        if player == "random":
            keys = COMMAND_KEYS[rng.integers(0, len(COMMAND_KEYS), size=fights)]
        else:
            keys = expert_keys(
                sim.state, rules=sim.rules, style="block" if player == "expert_block" else "roll", period=period
            )
        for _ in range(period):
            fifo.append(keys)
            sim.step(fifo.popleft())
    end_tick[:] = sim.state["tick"]
    won = sim.winner == 1
    timeout = (sim.winner == 2) & (sim.state["k_hp"] > 0)
    fps = sim.rules["fps"]
    return {
        "win_rate": float(won.mean()),
        "timeouts": float(timeout.mean()),
        "fights": fights,
        "mean_fight_s": round(float(end_tick.mean()) / fps, 1),
        "mean_boss_hp_left": round(float(sim.state["b_hp"].mean()), 1),
        "mean_knight_hp_left": round(float(sim.state["k_hp"].mean()), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fights", type=int, default=400, help="fights per cell (>= 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--delays",
        type=int,
        nargs="+",
        default=[0, 4, 6],
        help="input lag in ticks for the expert rows (random is lag-free: lag does not change it)",
    )
    args = p.parse_args()
    t0 = time.time()
    tiers = ("easy", "normal", "hard")
    rows = [("random", 0)] + [(pl, d) for d in args.delays for pl in ("expert", "expert_block")]
    table = {
        f"{pl}@d{d}": {
            tier: play(pl, tier, args.fights, args.seed + 1000 * i, action_delay=d) for i, tier in enumerate(tiers)
        }
        for pl, d in rows
    }
    for name, row in table.items():
        print(name.ljust(16), "  ".join(f"{t}: {c['win_rate']:.3f} ({c['mean_fight_s']} s)" for t, c in row.items()))
    print(
        json.dumps(
            {
                "win_rates": {n: {t: c["win_rate"] for t, c in row.items()} for n, row in table.items()},
                "cells": table,
                "seconds": round(time.time() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
