"""DuelSim: the duel's rules, vectorised over N fights in numpy, bit-identical to web/core.js.

One `step` is ONE 60 Hz tick for every fight. All state is integer (positions are fixed-point
sub-pixels, `rules["fp"]` per canvas pixel) so Python and JS agree bit for bit; the only randomness
is one xorshift32 word per fight. The scalar twin of these files is web/core.js: the two are written
in the same order, line for line (state.py, step.py, boss_policy.py, draw.py in turn), so a diff of their
logic stays readable. Keep them in step.

Key bitmask per tick: bit0 left, bit1 right, bit2 roll (Space), bit3 attack (J), bit4 block (K held).
Keys are LEVEL-triggered: a held J starts a new swing as soon as the knight is free, so an agent that
decides every k ticks and holds its keys for the step never loses an input to edge detection.

A finished fight stays frozen (no auto-reset here; the Gymnasium env resets).

The parts: state.py (fields, codes, random numbers, a new fight), step.py (one tick), boss_policy.py (the
boss's decisions), draw.py (the draw list the renderer and the page paint).

The boss's decisions come from its brain (brain.py): the scripted policy (boss_policy.py), or a learned integer
network in `rules["brain"]` (both cores read it from there), or per fight from `DuelSim.set_brains`.
"""
from __future__ import annotations

import numpy as np

from hakisa.games.duel.brain import BrainPool, pool_from_rules
from hakisa.games.duel.draw import draw_rects
from hakisa.games.duel.state import (  # noqa: F401  the simulator's names: `from hakisa.games.duel.sim import ...`
    B_ACTIVE,
    B_APPROACH,
    B_GUARD,
    B_IDLE,
    B_RECOVER,
    B_RETREAT,
    B_WINDUP,
    COMMAND_KEYS,
    K_ATTACK,
    K_BLOCK,
    K_IDLE,
    K_ROLL,
    K_STAGGER,
    KEY_ATTACK,
    KEY_BLOCK,
    KEY_LEFT,
    KEY_RIGHT,
    KEY_ROLL,
    KEYS_TO_COMMAND,
    N_RECTS,
    RULES_PATH,
    STATE_FIELDS,
    initial_state,
    load_rules,
    seed_to_rng,
    tier_thresholds,
    xorshift32,
)
from hakisa.games.duel.step import step_state


class DuelSim:
    """N independent duels. `state[field]` is an (n,) array; see STATE_FIELDS and the module doc."""

    def __init__(self, n: int = 64, tier="normal", seed: int = 0, rules: dict | None = None):
        self.n = int(n)
        self.rules = rules or load_rules()
        self.tier_thr = tier_thresholds(self.rules)
        order = self.rules["tier_order"]
        if isinstance(tier, str):
            tiers = np.full(self.n, order.index(tier), dtype=np.int64)
        else:
            tiers = np.array([order.index(t) if isinstance(t, str) else int(t) for t in tier], dtype=np.int64)
            assert tiers.shape == (self.n,), "one tier per fight"
        self._tiers = tiers
        self.brains: BrainPool = pool_from_rules(self.rules, self.n)
        self._seeder = np.random.default_rng(seed)
        self.state: dict[str, np.ndarray] = {f: np.zeros(self.n, dtype=np.uint32 if f == "rng" else np.int64)
                                             for f in STATE_FIELDS}
        # fight i's first seed is seed+i, so DuelSim(n, seed=s) fight i == DuelCore.newState(rules, tier, s+i)
        self.reset(seeds=(np.arange(self.n, dtype=np.int64) + int(seed)) & 0xFFFFFFFF)

    # ---- bookkeeping -------------------------------------------------------------------------
    @property
    def done(self) -> np.ndarray:
        return self.state["done"] != 0

    @property
    def winner(self) -> np.ndarray:
        return self.state["winner"].astype(np.int8)

    def reset(self, mask: np.ndarray | None = None, seeds=None) -> None:
        """Reset all fights, or those where mask is True. Seeds default to fresh draws from the sim's seeder."""
        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if idx.size == 0:
            return
        if seeds is None:
            seeds = self._seeder.integers(0, 2**32, size=idx.size, dtype=np.uint64)
        seeds = np.broadcast_to(np.asarray(seeds), (idx.size,))
        fresh = initial_state(self.rules, self._tiers[idx], seeds)
        for f in STATE_FIELDS:
            self.state[f][idx] = fresh[f]

    def set_tier(self, tier, mask: np.ndarray | None = None) -> None:
        """Change the tier used by the NEXT reset of the masked fights (and the running ones)."""
        t = self.rules["tier_order"].index(tier) if isinstance(tier, str) else tier
        sel = slice(None) if mask is None else mask
        self._tiers[sel] = t
        self.state["tier"][sel] = t

    def set_brains(self, brains: list[dict | None], idx=None) -> None:
        """Give fight f the boss brains[idx[f]] (None: scripted) from its next tick on; idx defaults to 0."""
        self.brains = BrainPool(brains, self.n, idx)

    def get(self, i: int) -> dict[str, int]:
        return {f: int(self.state[f][i]) for f in STATE_FIELDS}

    def set(self, i: int, d: dict) -> None:
        for f in STATE_FIELDS:
            self.state[f][i] = d[f]

    def step(self, keys) -> None:
        keys = np.broadcast_to(np.asarray(keys, dtype=np.int64), (self.n,))
        step_state(self.rules, self.tier_thr, self.state, keys, self.brains)

    def draw_rects(self) -> np.ndarray:
        return draw_rects(self.rules, self.state)
