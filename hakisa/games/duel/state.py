"""The duel's fight state: its fields, the key and action codes, the rules file, the per-fight random numbers
(xorshift32, as web/core.js draws them) and a new fight's state. Read by every part of the simulator (sim.py,
step.py, boss_policy.py, draw.py) and by the page's twin in the same order."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RULES_PATH = Path(__file__).with_name("rules.json")

KEY_LEFT, KEY_RIGHT, KEY_ROLL, KEY_ATTACK, KEY_BLOCK = 1, 2, 4, 8, 16
# The duel input map's 8 commands in index order (hakisa/maps/duel.json):
# 0 noop, 1 left, 2 right, 3 roll, 4 attack, 5 block, 6 left+roll, 7 right+roll
COMMAND_KEYS = np.array([0, KEY_LEFT, KEY_RIGHT, KEY_ROLL, KEY_ATTACK, KEY_BLOCK,
                         KEY_LEFT | KEY_ROLL, KEY_RIGHT | KEY_ROLL], dtype=np.uint8)
# its inverse: key bitmask -> command index (-1: no command presses exactly those keys)
KEYS_TO_COMMAND = np.full(int(COMMAND_KEYS.max()) + 1, -1)
KEYS_TO_COMMAND[COMMAND_KEYS] = np.arange(len(COMMAND_KEYS))

# knight actions (k_act)
K_IDLE, K_ATTACK, K_ROLL, K_BLOCK, K_STAGGER = 0, 1, 2, 3, 4
# boss actions (b_act); 0..3 are "free" (re-decided every decide_every ticks), 4..6 are one committed cleave
B_IDLE, B_APPROACH, B_RETREAT, B_GUARD, B_WINDUP, B_ACTIVE, B_RECOVER = 0, 1, 2, 3, 4, 5, 6

# Every state field, in the order the parity harness serialises them. All int64 except rng (uint32).
STATE_FIELDS = ("tick", "tier", "rng", "done", "winner",
                "kx", "k_hp", "k_st", "k_act", "k_t", "k_len", "k_face", "k_dir", "k_hit", "k_regen",
                "bx", "b_hp", "b_act", "b_t", "b_len", "b_face", "b_cd", "b_dec", "b_hit", "b_combo")
N_RECTS = 18  # fixed draw-list length (slots documented in draw_rects)


def load_rules(path: str | Path | None = None) -> dict:
    with open(path or RULES_PATH) as f:
        return json.load(f)


def seed_to_rng(seed) -> np.ndarray:
    """Seed -> nonzero xorshift32 state. JS: (Math.imul(seed, 0x9E3779B1) + 0x6D2B79F5) >>> 0, then one step."""
    s = np.asarray(seed, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
    x = ((s * np.uint64(0x9E3779B1) + np.uint64(0x6D2B79F5)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    x = np.where(x == 0, np.uint32(1), x)
    return xorshift32(x)


def xorshift32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x << np.uint32(13))
    x = x ^ (x >> np.uint32(17))
    return x ^ (x << np.uint32(5))


def tier_thresholds(rules: dict) -> np.ndarray:
    # floor(p*65536 + 0.5) is computed on the same doubles in JS, so both sides get the same integer.
    return np.array([int(np.floor(rules["tiers"][t] * 65536 + 0.5)) for t in rules["tier_order"]], dtype=np.int64)


def initial_state(rules: dict, tiers: np.ndarray, seeds) -> dict[str, np.ndarray]:
    m = len(tiers)
    fp, a, k, b = rules["fp"], rules["arena"], rules["knight"], rules["boss"]
    z = np.zeros(m, dtype=np.int64)
    s = {f: z.copy() for f in STATE_FIELDS}
    s["tier"] = np.asarray(tiers, dtype=np.int64).copy()
    s["rng"] = seed_to_rng(np.asarray(seeds, dtype=np.uint64))
    s["kx"] += a["knight_start_x"] * fp
    s["k_hp"] += k["hp"]
    s["k_st"] += k["stamina"]
    s["k_face"] += 1
    s["bx"] += a["boss_start_x"] * fp
    s["b_hp"] += b["hp"]
    s["b_face"] -= 1
    s["b_dec"] += b["decide_every"]
    return s
