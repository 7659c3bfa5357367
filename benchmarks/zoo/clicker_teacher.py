"""Zoo Clicker's scripted teacher: it points and clicks like a person clearing bright discs, minding dark ones."""
from __future__ import annotations

import math

import numpy as np

W, H, HUD_H = 480, 320, 28
BINS = (20, 16)                            # clicker.json's input map: where an agent's clicks can land
CELL = (W / BINS[0], H / BINS[1])
PRIOR_RISE = 60.0   # px/s assumed for a disc seen too briefly to judge its speed
INSIDE = 3          # px a click keeps inside the chosen disc's edge (it moves while the hand clicks)
CLEAR = 5           # px a click keeps outside every dark disc


def bin_centres(d: dict):
    """The centres of the input map's bins that lie near disc d: the points an agent could click it at."""
    x0, x1 = int((d["x"] - d["r"]) // CELL[0]), int((d["x"] + d["r"]) // CELL[0])
    y0, y1 = int((d["y"] - d["r"]) // CELL[1]), int((d["y"] + d["r"]) // CELL[1])
    for bx in range(max(0, x0), min(BINS[0] - 1, x1) + 1):
        for by in range(max(0, y0), min(BINS[1] - 1, y1) + 1):
            yield (bx + 0.5) * CELL[0], (by + 0.5) * CELL[1]


class Teacher:
    """Goes for the nearest bright disc it has noticed, clicks a bin centre well inside it and clear of dark ones."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.first: dict[int, tuple[float, float, float]] = {}  # id -> (seen at, its y then, noticed at)
        self.plan: dict | None = None      # {"id", "move_at", "click_at", "moved"}
        self.ready_at = 0.0
        self.pointer = (W / 2, H / 2)

    def _speed(self, d: dict, now: float) -> float:
        t0, y0, _ = self.first[d["id"]]
        return (y0 - d["y"]) / (now - t0) if now - t0 > 0.1 else PRIOR_RISE

    def _aim(self, d: dict, darks: list[dict], lead: float) -> tuple[float, float] | None:
        """The bin centre deepest inside d where it will be `lead` s from now, clear of every dark disc."""
        best, best_dist = None, None
        for px, py in bin_centres(d):
            if py < HUD_H:
                continue
            dist = math.hypot(px - d["x"], py - (d["y"] - lead))
            if dist > d["r"] - INSIDE:
                continue
            if any(math.hypot(px - k["x"], py - k["y"]) <= k["r"] + CLEAR for k in darks):
                continue
            if best is None or dist < best_dist:
                best, best_dist = (px, py), dist
        return best

    def act(self, state: dict, now: float) -> dict:
        targets = state["targets"]
        for d in targets:
            if d["id"] not in self.first:
                self.first[d["id"]] = (now, d["y"], now + self.rng.uniform(0.1, 0.2))
        darks = [d for d in targets if d["kind"] == "dark"]
        out = {"keys": set(), "move": None, "click": None}
        if self.plan is not None:
            d = next((t for t in targets if t["id"] == self.plan["id"]), None)
            if d is None:
                self.plan = None  # it rose away before the hand got there
                return out
            lead = self._speed(d, now) * 0.02  # where it will be when the click reaches the page
            aim = self._aim(d, darks, lead)
            if aim is None:
                self.plan = None  # a dark disc drifted over it, or it is leaving: let it go
            elif now >= self.plan["click_at"]:
                out["click"] = out["move"] = aim  # the hand followed it within its bin, as Pop's teacher does
                self.pointer, self.plan = aim, None
                self.ready_at = now + self.rng.uniform(0.04, 0.08)
            elif now >= self.plan["move_at"] and not self.plan["moved"]:
                out["move"], self.pointer = aim, aim
                self.plan["moved"] = True
            return out
        if now < self.ready_at:
            return out
        choices = []
        for d in targets:
            if d["kind"] != "bright" or now < self.first[d["id"]][2]:
                continue
            aim = self._aim(d, darks, self._speed(d, now) * 0.15)
            if aim is not None:
                choices.append((math.hypot(aim[0] - self.pointer[0], aim[1] - self.pointer[1]), d["id"]))
        if choices:
            dist, tid = min(choices)
            move_at = now + 0.05 + dist / 3000 + self.rng.uniform(0, 0.03)  # farther takes a hand longer
            self.plan = {"id": tid, "move_at": move_at, "click_at": move_at + self.rng.uniform(0.07, 0.11),
                         "moved": False}
        return out
