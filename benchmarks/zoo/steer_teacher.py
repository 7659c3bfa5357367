"""Zoo Steer's scripted teacher: it reads the grid and turns the snake along a shortest safe path to the food."""
from __future__ import annotations

from collections import deque

import numpy as np

DIRS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}
MIN_HOLD = 0.12  # s a turn key stays down: a deliberate press, not a flick


class Teacher:
    """At each new head cell it picks the next step by BFS to the food, among the steps that leave room to live."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.head = None                 # the head cell last seen: a new one means the snake moved
        self.food = None                 # (cell, noticed at): new food is noticed a reaction time after it appears
        self.turn: str | None = None     # the heading asked for at the next move
        self.press_at = 0.0              # when the hand presses that key
        self.pressed_at: float | None = None

    def _cells(self, state: dict):
        g = state["grid"]

        def cell(r):
            return (r["x"] - g["x"]) // g["cell"], (r["y"] - g["y"]) // g["cell"]

        return g["cols"], g["rows"], [cell(s) for s in state["snake"]], (cell(state["food"]) if state["food"] else None)

    @staticmethod
    def _bfs(start, blocked, cols, rows, goal=None):
        """Steps from `start` to `goal` over free cells (None: unreachable); with no goal, the cells reachable."""
        if start in blocked or not (0 <= start[0] < cols and 0 <= start[1] < rows):
            return None if goal is not None else 0
        seen, q = {start: 0}, deque([start])
        while q:
            c = q.popleft()
            if c == goal:
                return seen[c]
            for dc, dr in DIRS.values():
                n = (c[0] + dc, c[1] + dr)
                if n not in seen and n not in blocked and 0 <= n[0] < cols and 0 <= n[1] < rows:
                    seen[n] = seen[c] + 1
                    q.append(n)
        return None if goal is not None else len(seen)

    def _choose(self, cols, rows, snake, food) -> str:
        head, neck = snake[0], snake[1]
        heading = next(d for d, v in DIRS.items() if (head[0] - neck[0], head[1] - neck[1]) == v)
        blocked = set(snake[:-1])  # the tail cell is free by the time the head gets anywhere near it
        options = []
        for d, (dc, dr) in DIRS.items():
            if (dc, dr) == (-DIRS[heading][0], -DIRS[heading][1]):
                continue  # the page ignores turning back
            nxt = (head[0] + dc, head[1] + dr)
            room = self._bfs(nxt, blocked, cols, rows)
            if room == 0:
                continue
            dist = self._bfs(nxt, blocked, cols, rows, goal=food) if food else None
            safe = room > len(snake) + 2
            # best: safe, reaches the food soonest, goes straight (fewer presses); else the most room
            options.append((not safe, dist if dist is not None else 10**6, d != heading, -room, d))
        return min(options)[-1] if options else heading

    def act(self, state: dict, now: float) -> dict:
        cols, rows, snake, food = self._cells(state)
        if food is None or self.food is None or self.food[0] != food:
            self.food = (food, now + self.rng.uniform(0.1, 0.2)) if food else None
        known_food = self.food[0] if self.food and now >= self.food[1] else None
        head = snake[0]
        heading = (head[0] - snake[1][0], head[1] - snake[1][1])
        if self.turn is not None and self.pressed_at is not None and now - self.pressed_at >= MIN_HOLD \
                and DIRS[self.turn] == heading:
            self.turn, self.pressed_at = None, None  # the turn is made: let go of the key
        if head != self.head:
            # the snake moved (or restarted): the next step is chosen now and its key goes down a moment
            # later, well before the next move (a cell every 0.133 s)
            self.head = head
            choice = self._choose(cols, rows, snake, known_food)
            if DIRS[choice] != heading and choice != self.turn:
                self.turn, self.pressed_at = choice, None
                self.press_at = now + self.rng.uniform(0.02, 0.05)
        keys = set()
        if self.turn is not None and now >= self.press_at:
            if self.pressed_at is None:
                self.pressed_at = now
            keys = {self.turn}
        return {"keys": keys, "move": None, "click": None}
