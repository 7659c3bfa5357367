"""The scripted teacher of Hakisa Whack (benchmarks/zoo/whack), played through benchmarks/zoo/teach.py."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

CANVAS = (480, 320)
_MAP = json.loads(Path(__file__).with_name("whack.json").read_text())["input_map"]
BINS = (_MAP["x_bins"], _MAP["y_bins"])


def snap(x: float, y: float) -> tuple[float, float]:
    """The centre of the input map's x/y bin holding (x, y): where an agent's click for that bin lands."""
    bx = min(BINS[0] - 1, max(0, int(x / CANVAS[0] * BINS[0])))
    by = min(BINS[1] - 1, max(0, int(y / CANVAS[1] * BINS[1])))
    return (bx + 0.5) * CANVAS[0] / BINS[0], (by + 0.5) * CANVAS[1] / BINS[1]


class Teacher:
    """Goes for the moles in the order they popped up, leaves the bombs alone: reacts after a person's
    reaction time, takes longer to reach a far hole, and clicks once the pointer is on the mole."""

    def __init__(self, rng: np.random.Generator, reaction=(0.1, 0.2), click_delay=(0.06, 0.1)):
        self.rng, self.reaction, self.click_delay = rng, reaction, click_delay
        self.reset()

    def reset(self) -> None:
        self.seen: dict[int, float] = {}   # sprite id -> when it may be acted on (seen + reaction time)
        self.pointer = (CANVAS[0] / 2, CANVAS[1] / 2)
        self.target: int | None = None     # the mole the hand is going for
        self.arrive = self.click_at = 0.0  # when the pointer reaches it; when the button goes down

    def _travel(self, to: tuple[float, float]) -> float:
        """Seconds for the hand to bring the pointer from where it is to `to`: longer for a longer way."""
        d = math.dist(self.pointer, to)
        return (0.05 + 0.2 * d / CANVAS[0]) * float(self.rng.uniform(0.8, 1.2))

    def act(self, state: dict, now: float) -> dict:
        hands = {"keys": set(), "move": None, "click": None}
        if state.get("mode") != "play":
            self.target = None
            return hands
        sprites = {s["id"]: s for s in state["sprites"]}
        for i in sprites:
            if i not in self.seen:
                self.seen[i] = now + float(self.rng.uniform(*self.reaction))
        if self.target is not None and self.target not in sprites:
            self.target = None  # it went down (or was hit) before the hand got there
        if self.target is None:
            moles = [s for s in sprites.values() if s["kind"] == "mole" and now >= self.seen[s["id"]]]
            if not moles:
                return hands
            m = min(moles, key=lambda s: (self.seen[s["id"]], math.dist(self.pointer, self._aim(s))))
            self.target = m["id"]
            self.arrive = now + self._travel(self._aim(m))
            self.click_at = self.arrive + float(self.rng.uniform(*self.click_delay))
            return hands
        aim = self._aim(sprites[self.target])
        if now >= self.click_at:
            hands["click"] = aim
            self.target = None
        elif now >= self.arrive and self.pointer != aim:
            hands["move"] = aim
        self.pointer = aim if now >= self.arrive else self.pointer
        return hands

    @staticmethod
    def _aim(s: dict) -> tuple[float, float]:
        return snap(s["x"] + s["w"] / 2, s["y"] + s["h"] / 2)
