"""Zoo Dodge's scripted teacher: it holds the arrow keys like a person watching the hazards fly in."""
from __future__ import annotations

import numpy as np

W, H, HUD_H = 480, 320, 28
SHIP_SPEED = 180.0   # px/s while an arrow is held (what a player learns in a few seconds of play)
HORIZON = 0.6        # s of the future it imagines
STEP = 1 / 30        # s between two imagined positions
SWITCH = 0.2         # s: a plan may change keys once, this far ahead
MARGIN = 4           # px kept between the ship and a hazard
MOVES = {"": (0, 0), "up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


class Teacher:
    """Tries each key (and a second key after 0.2 s); keeps the one whose path stays clear and ends nearest the coin."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.ts = np.arange(1, int(round(HORIZON / STEP)) + 1) * STEP            # (T,)
        self.weights = 1.0 - 0.6 * self.ts / HORIZON                               # the nearer, the worse a hit
        plans = [(a, a) for a in MOVES] + [(a, b) for a in MOVES for b in MOVES if a != b]
        self.first_keys = [a for a, _ in plans]
        dirs = np.array([[MOVES[a] if t <= SWITCH else MOVES[b] for t in self.ts] for a, b in plans], float)
        self.offsets = np.cumsum(dirs * SHIP_SPEED * STEP, axis=1)                  # (P, T, 2) from the ship
        self.reset()

    def reset(self) -> None:
        self.seen: dict[int, tuple[float, float, float, float]] = {}  # id -> (seen at, x, y, noticed at)
        self.coin_seen: tuple[tuple[int, int], float] | None = None  # (position, noticed at)
        self.keys: set[str] = set()
        self.next_change = 0.0

    def _hazards(self, state: dict, now: float) -> np.ndarray:
        """(N, 6) rows x, y, w, h, vx, vy of the hazards noticed (a reaction time after they appeared)."""
        rows = []
        for hz in state["hazards"]:
            if hz["id"] not in self.seen:
                self.seen[hz["id"]] = (now, hz["x"], hz["y"], now + self.rng.uniform(0.1, 0.2))
            t0, x0, y0, noticed = self.seen[hz["id"]]
            if now < noticed or now - t0 < 0.05:
                continue
            dt = now - t0
            rows.append([hz["x"], hz["y"], hz["w"], hz["h"], (hz["x"] - x0) / dt, (hz["y"] - y0) / dt])
        return np.array(rows, float).reshape(-1, 6)

    def _coin(self, state: dict, now: float):
        coin = state["coin"]
        if coin is None:
            self.coin_seen = None
            return None
        pos = (coin["x"], coin["y"])
        if self.coin_seen is None or self.coin_seen[0] != pos:
            self.coin_seen = (pos, now + self.rng.uniform(0.1, 0.2))
        return coin if now >= self.coin_seen[1] else None

    def _plan(self, state: dict, now: float) -> str:
        ship = state["ship"]
        sw, sh = ship["w"], ship["h"]
        # where the ship would be along each plan, kept inside the play area as the page keeps it
        pos = np.array([ship["x"], ship["y"]], float) + self.offsets
        pos[..., 0] = np.clip(pos[..., 0], 0, W - sw)
        pos[..., 1] = np.clip(pos[..., 1], HUD_H, H - sh)
        haz = self._hazards(state, now)
        cost = np.zeros(len(pos))
        if len(haz):
            hx = haz[:, 0] + haz[:, 4] * self.ts[:, None]                           # (T, N)
            hy = haz[:, 1] + haz[:, 5] * self.ts[:, None]
            px, py = pos[..., 0][..., None], pos[..., 1][..., None]                # (P, T, 1)
            hit = ((px < hx + haz[:, 2] + MARGIN) & (hx < px + sw + MARGIN)
                   & (py < hy + haz[:, 3] + MARGIN) & (hy < py + sh + MARGIN))      # (P, T, N)
            cost += 1000.0 * (hit.any(axis=2) * self.weights).sum(axis=1)
        coin = self._coin(state, now)
        if coin is not None:
            goal, pull = (coin["x"] + coin["w"] / 2, coin["y"] + coin["h"] / 2), 1.0
        else:
            goal, pull = (W / 2, (HUD_H + H) / 2), 0.3  # nothing to fetch: drift to the middle, room on all sides
        # the mean distance along the path, not at its end: the sooner there, the better (no waiting to go)
        centre = pos + np.array([sw / 2, sh / 2])
        cost += pull * np.hypot(centre[..., 0] - goal[0], centre[..., 1] - goal[1]).mean(axis=1)
        return self.first_keys[int(np.argmin(cost))]

    def act(self, state: dict, now: float) -> dict:
        # a hand changes what it holds a few dozen times a second at most
        if now >= self.next_change:
            key = self._plan(state, now)
            want = {key} if key else set()
            if want != self.keys:
                self.keys = want
                self.next_change = now + self.rng.uniform(0.03, 0.06)
        return {"keys": set(self.keys), "move": None, "click": None}
