"""The boss's decisions: the scripted brain (`scripted_choice`), a fight's learned brain where it has one
(`boss_choice`, brain.py), and the free boss's next move with the tier's noise (`decide`). step.py asks."""
from __future__ import annotations

import numpy as np

from hakisa.games.duel.brain import FOLLOW, FREE, HOLD, BrainPool
from hakisa.games.duel.state import (
    B_APPROACH,
    B_GUARD,
    B_IDLE,
    B_RETREAT,
    B_WINDUP,
    K_ATTACK,
    K_ROLL,
    xorshift32,
)


def decide(rules, tier_thr, s, deciding, brains: BrainPool) -> tuple[np.ndarray, np.ndarray]:
    """The boss's choice (B_IDLE..B_WINDUP) and the jitter of its next decision time, for the deciding
    fights; advances their rng. The scripted policy, or the fight's learned brain."""
    B = rules["boss"]
    r1 = xorshift32(s["rng"])
    jitter = ((r1 >> np.uint32(8)) & np.uint32(255)).astype(np.int64) % B["decide_jitter"]
    noisy = (r1 >> np.uint32(16)).astype(np.int64) < tier_thr[s["tier"]]
    r2 = xorshift32(r1)
    s["rng"] = np.where(deciding, np.where(noisy, r2, r1), s["rng"])
    # noise: a uniformly random LEGAL move; the cleave (B_WINDUP) is legal only off cooldown
    n_legal = np.where(s["b_cd"] == 0, 5, 4)
    rand_move = ((r2 >> np.uint32(16)).astype(np.int64) * n_legal) >> 16

    policy = boss_choice(rules, s, deciding & ~noisy, FREE, brains)  # free choices 0..4 are B_IDLE..B_WINDUP
    return np.where(noisy, rand_move, policy), jitter


def boss_choice(rules, s, sel, kind: int, brains: BrainPool) -> np.ndarray:
    """Each fight's decision of `kind` (brain.py: FREE, HOLD, FOLLOW) as the state stands: its learned
    brain's where it has one (and sel), else the scripted policy's."""
    scripted, legal = scripted_choice(rules, s, kind)
    if brains.recorder is not None:  # e.g. a learner cloning the scripted brain (league/es_boss.py clone_scripted)
        brains.recorder(kind, s, sel, scripted, legal)
    learned = brains.choose(rules, s, sel, kind, legal)
    return np.where(learned >= 0, learned, scripted)


def scripted_choice(rules, s, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """The scripted brain: (choice int64 [n], legal bool [n, options]) of `kind` for every fight."""
    fp, B, K = rules["fp"], rules["boss"], rules["knight"]
    w = np.where
    n = s["tick"].shape[0]
    low = s["b_hp"] * 100 <= B["hp"] * B["low_hp_pct"]
    dist = np.abs(s["kx"] - s["bx"])
    if kind == HOLD:  # hold the swing against a knight already committed (rolling or swinging)
        read = (s["k_act"] == K_ROLL) | (s["k_act"] == K_ATTACK)
        return read.astype(np.int64), np.ones((n, 2), bool)
    if kind == FOLLOW:  # chain a follow-up while the combo allows it and the knight stays close
        may = s["b_combo"] < w(low, B["combo_max_low"], B["combo_max"])
        want = may & (dist <= B["combo_range"] * fp)
        return want.astype(np.int64), np.stack([np.ones(n, bool), may], 1)
    off_cd = s["b_cd"] == 0
    threat = ((s["k_act"] == K_ATTACK) & (s["k_t"] < K["attack_windup"] + K["attack_active"])
              & (dist <= (K["attack_reach"] + B["guard_margin"]) * fp))
    far = dist > B["cleave_trigger"] * fp
    policy = w(off_cd & ~far, B_WINDUP,
               w(threat, B_GUARD,
                 w(~off_cd & ~low, w(dist < B["backoff_dist"] * fp, B_RETREAT, B_IDLE),
                   w(far, B_APPROACH, B_IDLE))))
    return policy.astype(np.int64), np.stack([np.ones(n, bool)] * 4 + [off_cd], 1)
