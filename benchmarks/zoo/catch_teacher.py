"""Zoo Catch's scripted teacher: it holds the arrow keys like a person watching the falling squares."""
from __future__ import annotations

import numpy as np

W = 480             # canvas width
PADDLE_SPEED = 300  # px/s while an arrow is held (what a player learns in a few seconds of play)
PRIOR_FALL = 125    # px/s assumed for a square seen too briefly to judge its speed
DANGER_S = 0.45     # a red square landing sooner than this is stepped away from
MARGIN = 6          # px kept between the paddle and a red square
DEADBAND = 6        # px: close enough, let go of the keys


class Teacher:
    """Moves under the green square that lands first and can still be reached; steps aside from red ones."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.first: dict[int, tuple[float, float, float]] = {}  # id -> (seen at, its bottom then, noticed at)
        self.keys: set[str] = set()
        self.next_change = 0.0

    def _known(self, items: list[dict], now: float) -> list[tuple[dict, float]]:
        """The squares noticed (a reaction time after they appeared), each with its estimated fall speed."""
        out = []
        for it in items:
            bottom = it["y"] + it["h"]
            if it["id"] not in self.first:
                self.first[it["id"]] = (now, bottom, now + self.rng.uniform(0.1, 0.2))
            t0, b0, noticed = self.first[it["id"]]
            if now < noticed:
                continue
            speed = (bottom - b0) / (now - t0) if now - t0 > 0.1 else PRIOR_FALL
            out.append((it, max(speed, 30.0)))
        return out

    def act(self, state: dict, now: float) -> dict:
        pad = state["paddle"]
        half, centre = pad["w"] / 2, pad["x"] + pad["w"] / 2
        goal = W / 2  # with nothing to catch, wait in the middle, ready for either side
        best = None
        bad = []
        for it, speed in self._known(state["items"], now):
            t_land = (pad["y"] - (it["y"] + it["h"])) / speed
            if t_land < 0:
                continue  # already past the paddle
            if it["kind"] == "bad":
                bad.append((it, t_land))
                continue
            reach = abs(it["x"] + it["w"] / 2 - centre) - (half - 4)
            if reach <= PADDLE_SPEED * t_land and (best is None or t_land < best[1]):
                best = (it, t_land)
        if best is not None:
            goal = best[0]["x"] + best[0]["w"] / 2
        goal = min(W - half, max(half, goal))
        for _ in range(3):  # a few passes: stepping away from one red square may put us under another
            moved = False
            for it, t_land in bad:
                if t_land > DANGER_S:
                    continue
                lo, hi = it["x"] - half - MARGIN, it["x"] + it["w"] + half + MARGIN
                if lo < goal < hi:
                    sides = [s for s in (lo, hi) if half <= s <= W - half]
                    goal = min(sides, key=lambda s: abs(s - centre)) if sides else goal
                    moved = True
            if not moved:
                break
        want = set()
        if goal - centre > DEADBAND:
            want = {"right"}
        elif centre - goal > DEADBAND:
            want = {"left"}
        # a hand changes what it holds a few dozen times a second at most
        if want != self.keys and now >= self.next_change:
            self.keys = want
            self.next_change = now + self.rng.uniform(0.03, 0.06)
        return {"keys": set(self.keys), "move": None, "click": None}
