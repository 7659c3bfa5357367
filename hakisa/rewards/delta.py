"""Rewards are DELTAS of readings, never absolute levels.

A reward is sum_k coef_k * (reading_k[t] - reading_k[t-1]): dealing 10% of the boss's HP pays once, at
the step it happens. Paying a *level* every step would pay an agent that scored once forever for
standing still.

The same class serves screen readers (readings from pixels) and stable-retro (readings are RAM
variables in `info`, see `info_delta_reward`), so the two share one definition of "reward".
"""
from __future__ import annotations

from collections.abc import Mapping


class DeltaReward:
    """`r = DeltaReward({"boss_hp": -1.0, "knight_hp": 1.0})`; `r.reset(readings)`; `r(readings)`.

    max_abs_delta: a change larger than this (per reading, in reading units) is treated as a
    misread (an overlay flickering over a bar) and pays nothing; the reading still updates.
    A reading that is None (unreadable this frame) is skipped and keeps its last value.
    """

    def __init__(self, coefs: Mapping[str, float], max_abs_delta: Mapping[str, float] | None = None):
        self.coefs = dict(coefs)
        self.max_abs_delta = dict(max_abs_delta or {})
        self.prev: dict[str, float] = {}
        self.last_terms: dict[str, float] = {}

    def reset(self, readings: Mapping[str, float | None] | None = None) -> None:
        self.prev = {k: float(v) for k, v in (readings or {}).items() if k in self.coefs and v is not None}

    def __call__(self, readings: Mapping[str, float | None]) -> float:
        total, terms = 0.0, {}
        for k, c in self.coefs.items():
            v = readings.get(k)
            if v is None:
                continue
            v = float(v)
            if k in self.prev:
                d = v - self.prev[k]
                if abs(d) <= self.max_abs_delta.get(k, float("inf")):
                    terms[k] = c * d
                    total += terms[k]
            self.prev[k] = v
        self.last_terms = terms  # per-reading contributions, for logging / debugging a reward
        return total


def info_delta_reward(prev_info: Mapping, info: Mapping, coefs: Mapping[str, float]) -> float:
    """stable-retro's RAM variables (its `info` dict) -> a delta reward. Missing keys pay nothing.

    e.g. coefs {"score": 0.01, "lives": 1.0}: points scored pay, a life lost costs 1.
    """
    return float(
        sum(c * (float(info[k]) - float(prev_info[k])) for k, c in coefs.items() if k in info and k in prev_info)
    )


class InfoDeltaReward:
    """Stateful form of `info_delta_reward` for an env loop: `reset(info)` then `__call__(info)`."""

    def __init__(self, coefs: Mapping[str, float]):
        self.coefs, self.prev = dict(coefs), {}

    def reset(self, info: Mapping) -> None:
        self.prev = {k: info[k] for k in self.coefs if k in info}

    def __call__(self, info: Mapping) -> float:
        r = info_delta_reward(self.prev, info, self.coefs)
        self.prev = {k: info[k] for k in self.coefs if k in info}
        return r
