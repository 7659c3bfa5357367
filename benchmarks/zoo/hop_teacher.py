"""The scripted teacher of Hakisa Hop (benchmarks/zoo/hop), played through benchmarks/zoo/teach.py."""
from __future__ import annotations

import numpy as np

GROUND_Y = 280             # the ground line's first row, as drawn
JUMP_S, JUMP_H = 0.6, 72.0  # how long and how high a jump is: what a player learns in a few tries
PRESS_TO_JUMP = 0.015      # key down to the first raised frame: half a 60 Hz tick plus the input path
STEP = 1 / 60              # the time grid the plans are checked on (one page tick)


def feet(t: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Height of the runner's feet above the ground at times t for jumps that start at `start` (NaN: none)."""
    u = (t - start) / JUMP_S
    return np.where((u >= 0) & (u <= 1), JUMP_H * 4 * u * (1 - u), 0.0)


class Teacher:
    """Watches the obstacles scroll in, judges their speed, and taps jump so each block or low flyer passes
    under its feet while keeping its head out of the high flyers, with a person's reaction and timing jitter."""

    def __init__(self, rng: np.random.Generator, reaction=(0.1, 0.2), jitter_s=0.03, commit_s=0.25):
        self.rng, self.reaction, self.jitter_s, self.commit_s = rng, reaction, jitter_s, commit_s
        self.reset()

    def reset(self) -> None:
        self.seen: dict[int, float] = {}      # obstacle id -> when it may be acted on (seen + reaction time)
        self.track: dict[int, list[tuple[float, float]]] = {}  # id -> [(now, left edge)], for its speed
        self.speed = 200.0                    # px/s: a guess until an obstacle has been watched a while
        self.press_at: float | None = None   # a committed tap: when the key goes down
        self.release_at = 0.0

    def act(self, state: dict, now: float) -> dict:
        hands = {"keys": set(), "move": None, "click": None}
        if state.get("mode") != "play":
            self.press_at = None
            return hands
        if now < self.release_at:
            hands["keys"] = {"space"}
            return hands
        known = self._look(state["obstacles"], now)
        runner = state["runner"]
        grounded = runner["y"] + runner["h"] >= GROUND_Y
        if self.press_at is None and grounded:
            when = self._plan(known, runner, now)
            if when is not None and when - now <= self.commit_s:
                # a person times the tap while the obstacle comes close, and never exactly
                self.press_at = when + float(self.rng.normal(0.0, self.jitter_s))
        if self.press_at is not None and now >= self.press_at:
            self.press_at = None
            if grounded:  # a tap while still in the air would be wasted
                self.release_at = now + float(self.rng.uniform(0.08, 0.16))
                hands["keys"] = {"space"}
        return hands

    def _look(self, obstacles: list[dict], now: float) -> list[dict]:
        """Update what has been seen; the obstacles the teacher has had time to react to, not yet passed."""
        ids = set()
        for o in obstacles:
            i = o["id"]
            ids.add(i)
            if i not in self.seen:
                self.seen[i] = now + float(self.rng.uniform(*self.reaction))
            if o["x"] > 0:  # the left edge is not clipped: it moves with the obstacle
                tr = self.track.setdefault(i, [])
                if not tr or tr[-1][1] != o["x"]:
                    tr.append((now, float(o["x"])))
                while len(tr) > 2 and now - tr[1][0] >= 0.3:
                    tr.pop(0)
                if len(tr) >= 2 and tr[-1][0] - tr[0][0] >= 0.1:
                    self.speed = (tr[0][1] - tr[-1][1]) / (tr[-1][0] - tr[0][0])
        for i in list(self.track):
            if i not in ids:
                del self.track[i]
        return [o for o in obstacles if now >= self.seen[o["id"]] and not o["cleared"]]

    def _hits(self, known: list[dict], runner: dict, now: float, starts: np.ndarray, until: np.ndarray) -> np.ndarray:
        """For each jump start in `starts` (NaN: no jump), how many of `known` the runner touches between now
        and that plan's `until`; the obstacles move on at the judged speed."""
        rx, rw, rh = runner["x"], runner["w"], runner["h"]
        t = now + np.arange(0.0, float(until.max() - now) + STEP, STEP)           # [T]
        f = feet(t[None, :], starts[:, None])                                    # [D, T]
        hits = np.zeros(len(starts), int)
        for o in known:
            bottom, top = GROUND_Y - (o["y"] + o["h"]), GROUND_Y - o["y"]
            left = o["x"] - self.speed * (t - now)
            beside = (left < rx + rw) & (left + o["w"] > rx)                     # [T]
            touch = beside[None, :] & (f < top) & (f + rh > bottom) & (t[None, :] <= until[:, None])
            hits += touch.any(axis=1)
        return hits

    def _plan(self, known: list[dict], runner: dict, now: float) -> float | None:
        """When to press so that the next obstacle in the way is cleared; None: no jump needed now."""
        if not known:
            return None
        passed = np.array([now + max(0.0, (o["x"] + o["w"] - runner["x"]) / self.speed) for o in known])
        standing = [self._hits([o], runner, now, np.array([np.nan]), np.array([p]))[0] for o, p in zip(known, passed)]
        in_way = [p for p, h in zip(passed, standing) if h]
        if not in_way:
            return None
        # a jump is judged until the first obstacle in the way has gone by, or until it lands if that is later
        first = min(in_way)
        delays = np.arange(0.0, max(first - now, 0.0) + STEP, STEP)
        starts = now + delays + PRESS_TO_JUMP
        hits = self._hits(known, runner, now, starts, np.maximum(first, starts + JUMP_S))
        ok = np.flatnonzero(hits == hits.min())
        # the widest run of equally good delays, and its middle: the most room for an imprecise tap
        runs = np.split(ok, np.flatnonzero(np.diff(ok) > 1) + 1)
        run = max(runs, key=len)
        return now + float(delays[run[len(run) // 2]])
