"""A desktop game (a game file whose window.launch is a `command`) behind the page interface teach.py drives.

    with DesktopApp(game_file, read_state) as app:
        app.display, app.canvas_region          # its private Xvfb, the canvas on that screen
        app.evaluate("hakisa.state()")          # {"mode", "score", "lives", **read_state(canvas pixels)}

A page answers `hakisa.state()` from its own variables; a desktop program has none to ask, so the state is read
from the canvas's pixels, as the recorder and the agent see them: "mode" and "score" from the game file's own
readers (`play` while its `in_play` rule holds, `over` while its `done` rule does, else `menu`), the rest from the
teacher's `read_state(rgb)`. So a desktop teacher acts only on what the screen shows, by construction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class DesktopApp:
    def __init__(self, game_file: Path, read_state):
        from hakisa.game import Game

        self.game = Game.load(game_file)
        self.read_state = read_state
        self.judge = self.game.judge()
        self._live = self._cap = None

    def __enter__(self) -> "DesktopApp":
        from hakisa.capture import Capture

        self._live = self.game.open(private=True).__enter__()
        self.display, self.canvas_region = self._live.display, tuple(self._live.region)
        self._cap = Capture(region=self.canvas_region, display=self.display).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._cap is not None:
            self._cap.__exit__(None, None, None)
        if self._live is not None:
            self._live.close()

    def _mode(self, readings: dict) -> str:
        return "play" if self.judge.in_play(readings) else "over" if self.judge.is_done(readings) else "menu"

    def state(self) -> dict:
        frame = self._cap.grab()  # BGRA, as the recorder grabs it
        readings = self.judge.read(frame)
        score = readings.get(self.game.score) if self.game.score else None
        rgb = np.ascontiguousarray(frame[..., 2::-1])
        return {"mode": self._mode(readings), "score": int(score) if score is not None else None,
                "lives": readings.get("lives"), **self.read_state(rgb)}

    def evaluate(self, expr: str):
        """The two page expressions teach.py asks: hakisa.state() and hakisa.mode() (the readers alone)."""
        if expr.strip() == "hakisa.mode()":
            return self._mode(self.judge.read(self._cap.grab()))
        return self.state()
