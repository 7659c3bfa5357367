"""Zoo Jump's scripted teacher (xjump, Debian's "Falling Tower", a desktop X11 game): it reads the tower from the
window's pixels, walks under the next floor up and jumps.

A desktop game has no page to ask, so `read_state` is the teacher's eyes: it finds the player (its green
trousers) and the floors (runs of bright red bricks) on the canvas the recorder sees, nothing else.
"""
from __future__ import annotations

import cv2
import numpy as np

GAME_SECONDS = 120          # teach.py's bound on one game (the pages' games last 20 s; xjump's until a fall)
PLAY = (16, 65, 482, 385)   # the tower's inside on the canvas (x, y, w, h): jump.json's canvas starts at (16, 90)
BRICK = ((255, 0, 0), (178, 32, 32))  # a floor's bricks, face and shadow; 3 px of mortar between two bricks
GREEN = (0, 255, 0)         # the player's trousers
MIN_RUN = 24                # px of red in a row that make a floor (the player's red shirt is narrower)
FEET = 4                    # px from the trousers' lowest row down to the top of the floor the player stands on
EDGE = 10                   # px kept from a floor's ends before jumping
STILL = 60                  # px/s: slower than this, the player counts as standing still (it jumps straight up)
VMAX = 220                  # px/s: an arrow is held only below this speed (a long hold runs away: see Teacher)
NEAR = 12                   # px from where it is going that count as there
LAND = 8                    # px between the feet and a floor's top that count as standing on it (the sprite's
                            # trousers sit a few px higher or lower from one running frame to the next)
GAIN = 2.5                  # 1/s: the speed it wants is this times the distance left (more: it overshoots)


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of True in a 1-D mask at least MIN_RUN long."""
    d = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, ends) if b - a + 1 >= MIN_RUN]


def read_state(rgb: np.ndarray) -> dict:
    """What the screen shows: the player's (x, feet y) or None, and the floors' top edges with their x spans,
    in canvas px (rgb: the canvas, H x W x 3)."""
    x0, y0, w, h = PLAY
    pf = rgb[y0:y0 + h, x0:x0 + w]
    green = np.all(pf == GREEN, axis=2)
    ys, xs = np.nonzero(green)
    player = (float(xs.mean()) + x0, float(ys.max()) + FEET + y0) if len(xs) else None
    red = np.all(pf == BRICK[0], axis=2) | np.all(pf == BRICK[1], axis=2)
    red = cv2.morphologyEx(red.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, 5), np.uint8)).astype(bool)
    full = red.sum(1) >= MIN_RUN
    tops = np.flatnonzero(full & ~np.concatenate(([False], full[:-1])))
    # spans from a row inside the band: its top row is partly shadow, with wider gaps
    floors = [(int(t) + y0, [(a + x0, b + x0) for a, b in _runs(red[min(t + 3, h - 1)])]) for t in tops]
    return {"player": player, "floors": [(y, spans) for y, spans in floors if spans]}


class Teacher:
    """Stands under the nearest floor above, jumps, and steers toward that floor in the air; its hands change
    at most every 50-100 ms, a person's pace.

    Measured on the window (2026-12-07): a 0.1 s press of an arrow moves the player ~45 px and it stops soon
    after the key is let go on a floor (a longer hold accelerates: 0.3 s, ~190 px), but in the air it keeps its
    speed; a tap of up from a standstill jumps ~100 px, and the floors are 80 px apart, so one jump from under
    a floor reaches it (floors let the player through from below). So it stops, then jumps."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.keys: set[str] = set()
        self.next_at = 0.0
        self.goal: tuple[int, int] | None = None  # the x span of the floor it jumps for (floors sink, spans stay)
        self.last: tuple[float, float, float] | None = None  # (time, x, feet) of the last look: its speed

    @staticmethod
    def _next_floor(px: float, feet: float, floors: list) -> tuple[int, int] | None:
        """On the nearest floor above the feet, the span closest to px."""
        above = [(y, spans) for y, spans in floors if y < feet - 20]
        if not above:
            return None
        _, spans = max(above, key=lambda f: f[0])
        return min(spans, key=lambda sp: 0 if sp[0] <= px <= sp[1] else min(abs(px - sp[0]), abs(px - sp[1])))

    @staticmethod
    def _drive(px: float, vx: float, x: float) -> set[str]:
        """The arrow that brings the player to x: the player slides (an arrow accelerates it, in the air it keeps
        its speed), so the arrow pushes its speed toward GAIN x the distance left (at most VMAX), braking too."""
        want = max(-VMAX, min(VMAX, GAIN * (x - px)))
        if want - vx > STILL / 2:
            return {"right"}
        if want - vx < -STILL / 2:
            return {"left"}
        return set()

    def act(self, state: dict, now: float) -> dict:
        if now < self.next_at:
            return {"keys": self.keys}
        self.next_at = now + self.rng.uniform(0.05, 0.1)
        if state.get("player") is None:
            self.keys, self.goal, self.last = set(), None, None
            return {"keys": self.keys}
        px, feet = state["player"]
        vx = vy = 0.0
        if self.last is not None:
            dt = max(now - self.last[0], 1e-3)
            vx, vy = (px - self.last[1]) / dt, (feet - self.last[2]) / dt
        self.last = (now, px, feet)
        # on a floor: feet at its top, not on the way up (a jump passes through floors from below)
        under = [sp for y, spans in state["floors"] if abs(y - feet) <= LAND and vy > -60
                 for sp in spans if sp[0] - 4 <= px <= sp[1] + 4]
        if under or self.goal is None:
            self.goal = self._next_floor(px, feet, state["floors"])
        if self.goal is None:
            self.keys = set()
            return {"keys": self.keys}
        g0, g1 = self.goal
        if not under:  # in the air: steer for the goal's middle
            self.keys = self._drive(px, vx, (g0 + g1) / 2)
            return {"keys": self.keys}
        c0, c1 = under[0]
        lo, hi = max(g0, c0) + EDGE, min(g1, c1) - EDGE
        if lo <= hi:  # the goal is above this floor: under it, slow, jump straight up
            x = (lo + hi) / 2 if hi - lo < 40 else min(max(px, lo + 20), hi - 20)
            keys = self._drive(px, vx, x)
            if lo <= px <= hi and abs(vx) < 2 * STILL:
                keys = {"up"}
        else:  # beside it: to this floor's nearer end, then a jump toward it (it steers in the air)
            toward = "right" if g0 > c1 else "left"
            edge = c1 - EDGE if toward == "right" else c0 + EDGE
            keys = self._drive(px, vx, edge)
            if abs(px - edge) <= 2 * NEAR:
                keys = {toward, "up"}
        self.keys = keys
        return {"keys": self.keys}
