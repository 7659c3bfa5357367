"""A scripted player's hands on a game canvas: real XTest key and pointer events, as a keyboard and mouse make.

    hands = Hands(app.display, app.canvas_region[:2], keys=["left", "right"])
    hands.apply({"keys": {"left"}, "move": None, "click": None})   # press what is newly held, release the rest
    hands.apply({"keys": set(), "move": (120, 80), "click": (120, 80)})
    hands.tap("r"); hands.release_all(); hands.close()

Importable on its own so that any caller (the zoo's teacher harness, or a scripted teacher taking over from an
agent mid-game) drives a page the same way. It sends through `hakisa.backends.x11.Input`, the agent's own
XTest path; only changes are sent, as the agent's sink does.
"""
from __future__ import annotations

import time
from typing import Iterable

from hakisa.backends import get_backend

# the keys every harness needs besides a game's own: R (restart) and F10 (the recorder's stop hotkey)
ALWAYS = ("r", "f10")


class Hands:
    """Held keys, pointer and left button on `display`; positions are canvas px from `origin` (screen px)."""

    def __init__(self, display: str, origin: tuple[int, int], keys: Iterable[str] = ()):
        self.origin = (int(origin[0]), int(origin[1]))
        self.input = get_backend("x11").Input(display, sorted(set(keys) | set(ALWAYS)))
        self.held: set[str] = set()
        self.pointer: tuple[int, int] | None = None

    def apply(self, action: dict) -> None:
        """Do what a Teacher's act() returned: hold exactly action["keys"], move to "move", click at "click"."""
        want = set(action.get("keys") or ())
        for k in sorted(self.held - want):
            self.input.release(k)
        for k in sorted(want - self.held):
            self.input.press(k)
        self.held = want
        if action.get("move") is not None:
            self._move(*action["move"])
        self.input.flush()
        if action.get("click") is not None:
            self.click(*action["click"])

    def _move(self, x: float, y: float) -> None:
        p = (int(self.origin[0] + x), int(self.origin[1] + y))
        if p != self.pointer:
            self.input.move(*p)
            self.pointer = p

    def click(self, x: float, y: float, hold: float = 0.01) -> None:
        """A left click at canvas (x, y): the pointer goes there first, then the button goes down and up."""
        self._move(x, y)
        self.input.button("left", True)
        self.input.sync()
        time.sleep(hold)  # a real click has the button down for a moment; the page sees both events
        self.input.button("left", False)
        self.input.sync()

    def tap(self, key: str, hold: float = 0.05) -> None:
        """Press and release one key (R to restart, F10 to stop the recorder)."""
        self.input.press(key)
        self.input.sync()
        time.sleep(hold)
        self.input.release(key)
        self.input.sync()

    def release_all(self) -> None:
        """Lift every held key (a game ended, or we stop)."""
        self.apply({"keys": set()})
        self.input.sync()

    def close(self) -> None:
        if self.input is not None:
            try:
                self.release_all()
            finally:
                self.input.close()
                self.input = None
