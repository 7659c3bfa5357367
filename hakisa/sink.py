"""Sending actions to a real game window, safely.

`make_sink(input_map, capture_or_region)` (a `LiveSink`) turns each action triple into input events:
  - held keys are diffed against the previous step: press only what is newly down, release only what
    is newly up (a held key stays held across steps, as a person's finger would);
  - taps are pressed and released at the step's start; mouse moves/clicks land at the decoded position
    CLAMPED to the region, so no bin, rel move or bug can put the pointer outside the game;
  - while the target window is not focused nothing is sent (held keys are released once, so nothing
    auto-repeats into whatever window has focus now);
  - a kill-switch hotkey (default F12, a pynput keyboard Listener) stops the loop and releases
    everything;
  - release-all on close(), on exceptions through the context manager, on SIGINT/SIGTERM and at exit.
    In-process handlers cannot run on SIGKILL or a segfault, so a tiny GUARDIAN subprocess with its own
    input connection mirrors what is held through shared memory; when its pipe closes (the parent died,
    however) it releases every mirrored key and button and exits. The guardian also hosts the
    kill-switch Listener, so F12 works even while the loop is stuck, and the Listener's per-event work
    never competes with the loop for the GIL. The guardian and the Listener live in hakisa/guardian.py.

All of that is here, once. The platform calls (a key down, the pointer somewhere, which window has focus)
come from the backend (hakisa.backends): x11 (XTest on our own connection, the default on Linux) or
portable (pynput Controllers and pywinctl: Windows, macOS, X11). `XTestSink` is a LiveSink on x11.
Key names are pynput's. `DryRunSink` has the same interface and records the events it would send (no
display needed). pynput needs a display at import time, so it is imported inside functions, never at
module level.

Coordinates: the region and every mouse position are in the backend's screen coordinates, the ones mss
grabs in (X pixels; physical pixels on Windows, DPI aware; points on macOS): see docs/backends.md.
"""
from __future__ import annotations

import atexit
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Union

import numpy as np

from hakisa import backends
from hakisa.backends import BUTTONS, Region
from hakisa.backends.x11 import keysym as _keysym  # noqa: F401  (benchmarks/bench_live.py names keys with it)
from hakisa.guardian import kill_listener, start_guardian
from hakisa.input_map import Decoded, InputMap

if TYPE_CHECKING:
    from hakisa.capture import Capture

# ("press", key) | ("release", key) | ("move", x, y) absolute screen pixels | ("click", "left"|"right")
Event = tuple
Target = Union[Region, "Capture"]


class KillSwitch(Exception):
    """Raised by `send()` (and a live clock's sleep) once the kill-switch hotkey has been pressed; loops stop on it."""

    def __init__(self, msg: str = "kill switch pressed: input stopped and every key released"):
        super().__init__(msg)


def plan(decoded: Decoded, held: frozenset[str], region: Region, pointer: tuple[int, int]) -> list[Event]:
    """The events one step needs, given what is held now and where the pointer is. Pure.

    Order: releases, presses, taps, then the mouse (move, then click at the new position).
    Every mouse position is clamped inside `region`.
    """
    left, top, w, h = region
    events: list[Event] = [("release", k) for k in sorted(held - decoded.held)]
    events += [("press", k) for k in sorted(decoded.held - held)]
    for k in decoded.taps:
        events += [("press", k), ("release", k)] if k not in decoded.held else []
    target = None
    if decoded.mouse is not None:
        target = (left + decoded.mouse[0] * w, top + decoded.mouse[1] * h)
    elif decoded.rel is not None:
        target = (pointer[0] + decoded.rel[0], pointer[1] + decoded.rel[1])
    if target is not None:
        # clamp in float first: a NaN or a 1e12 rel move must still land inside
        x = int(np.clip(np.nan_to_num(target[0], nan=left), left, left + w - 1))
        y = int(np.clip(np.nan_to_num(target[1], nan=top), top, top + h - 1))
        events.append(("move", x, y))
    if decoded.click is not None:
        events.append(("click", decoded.click))
    return events


class _SinkBase:
    """What both sinks share: the held-key state, the step bookkeeping, and the context manager."""

    def __init__(self, input_map: InputMap, target: Target):
        self.input_map = input_map
        self.target = target
        self.held: frozenset[str] = frozenset()
        self._killed = False
        # set once the kill switch has released everything: a loop sleeping to its next tick waits on
        # it, so the kill ends the loop at once instead of after the sleep, the capture and the forward
        self.kill_event = threading.Event()
        self.paused = False
        self.steps = 0

    @property
    def killed(self) -> bool:
        return self._killed

    @killed.setter
    def killed(self, value: bool) -> None:
        self._killed = value
        self.kill_event.set() if value else self.kill_event.clear()

    @property
    def region(self) -> Region:
        return self.target if isinstance(self.target, tuple) else self.target.region

    def send(self, action) -> list[Event]:
        """Apply one action triple for this step; returns the events actually sent."""
        if self.killed:
            raise KillSwitch()
        self.steps += 1
        decoded = self.input_map.decode(np.asarray(action).reshape(-1)[:3])
        if not self._focused():
            if not self.paused:
                self.paused = True
                self.release_all()
            return []
        self.paused = False
        pointer = self._pointer() if decoded.rel is not None else (0, 0)  # a round trip: only when needed
        events = plan(decoded, self.held, self.region, pointer)
        self._emit(events)
        self.held = decoded.held
        return events

    def click_at(self, fx: float, fy: float, button: str = "left") -> list[Event]:
        """A click at region fractions (fx, fy), outside the action vocabulary (e.g. a menu's "rematch").

        Same guarantees as send(): focus-gated, clamped to the region; held keys stay held.
        """
        if self.killed:
            raise KillSwitch()
        if not self._focused():
            return []
        events = plan(Decoded(held=self.held, mouse=(fx, fy), click=button), self.held, self.region, (0, 0))
        self._emit(events)
        return events

    def kill(self) -> None:
        """What the kill-switch hotkey does: stop for good (send() raises KillSwitch), release everything."""
        self._killed = True  # first: from here send() refuses
        self.release_all()
        self.kill_event.set()  # last: whoever wakes on it finds every key up

    def sync(self) -> None:
        """Wait until everything sent has been processed (a no-op without a display)."""

    def release_all(self) -> list[Event]:
        events = [("release", k) for k in sorted(self.held)]
        self._emit(events)
        self.held = frozenset()
        return events

    def close(self) -> None:
        self.release_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # hooks
    def _focused(self) -> bool:
        return True

    def _pointer(self) -> tuple[int, int]:
        raise NotImplementedError

    def _emit(self, events: list[Event]) -> None:
        raise NotImplementedError


class DryRunSink(_SinkBase):
    """Records what would be sent, as (step, event) pairs in `self.log`. Needs no display.

    The pointer is simulated (starts at the region's centre) so relative moves plan as they would live.
    """

    def __init__(self, input_map: InputMap, target: Target = (0, 0, 640, 360)):
        super().__init__(input_map, target)
        left, top, w, h = self.region
        self.pointer = (left + w // 2, top + h // 2)
        self.log: list[tuple[int, Event]] = []

    def _pointer(self) -> tuple[int, int]:
        return self.pointer

    def _emit(self, events: list[Event]) -> None:
        for e in events:
            if e[0] == "move":
                self.pointer = (e[1], e[2])
            self.log.append((self.steps, e))


class LiveSink(_SinkBase):
    """Real input for a live window, with every safety net listed in the module docstring.

    target: a Capture (the sink follows its region and, by default, requires its window to be focused)
    or a fixed region. backend: "x11", "portable", or None (the Capture's, else $HAKISA_BACKEND, else auto).
    require_focus: a window id, True (the Capture's window), False (never check), or None (= True when the
    target is a window Capture). kill_key: a pynput key name, or None. guardian: run the guardian
    subprocess (release on crash; it also hosts the kill-switch Listener). display: the X display to send
    to (default: the target Capture's, else $DISPLAY). A fleet of private displays gives each sink its own,
    so input sent for one window can never reach another.
    """

    def __init__(self, input_map: InputMap, target: Target, *, kill_key: str | None = "f12",
                 require_focus: int | bool | None = None, guardian: bool = True, handle_signals: bool = True,
                 display: str | None = None, backend: str | None = None):
        self.backend = backends.select_backend(backend or getattr(target, "backend", None))
        be = backends.get_backend(self.backend)
        display = backends.check_display(display or getattr(target, "display_name", None))
        super().__init__(input_map, target)
        self._lock = threading.RLock()  # the kill watcher and signal handlers release concurrently
        self._closed = True  # until __init__ completes, close() has nothing to undo
        self.display = display
        self.kill_key = kill_key
        if kill_key is not None:
            with backends.on_display(display):  # pynput (which names the keys) needs a display at import
                be.check_key(kill_key)  # fail now on a bad name
            if kill_key in input_map.keys:
                raise ValueError(f"the kill key {kill_key!r} is also a key of input map {input_map.name!r}")
        if require_focus is None:
            require_focus = getattr(target, "window_id", None) is not None
        if require_focus is True:
            require_focus = getattr(target, "window_id", None)
            if require_focus is None:
                raise ValueError("require_focus=True needs a window Capture as target, or pass a window id")
        self.focus_window = (None if require_focus is False or require_focus is None  # macOS ids are tuples
                             else require_focus if isinstance(require_focus, tuple) else int(require_focus))
        # what the guardian mirrors: a byte per key of the map (by its index in input_map.keys), then buttons
        self._key_slot = {k: i for i, k in enumerate(input_map.keys)}
        self._button_slot = {b: len(self._key_slot) + j for j, b in enumerate(BUTTONS)}
        self._input = be.Input(display, input_map.keys)
        self._windows = None
        self._guardian: subprocess.Popen | None = None
        self._shm = None
        self._released: list[int] = []  # slots released this step, cleared at the next one
        self._listener = None
        try:
            if self.focus_window is not None:
                self._windows = be.Windows(display)
            if guardian:
                self._guardian, self._shm = start_guardian(self.backend, display, kill_key,
                                                           input_map.keys, self.kill)
            elif kill_key is not None:
                self._listener = kill_listener(kill_key, self.kill, display)
        except BaseException:
            self._input.close()
            if self._windows is not None:
                self._windows.close()
            raise
        self._closed = False
        self._old_handlers: dict[int, object] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        atexit.register(self.close)

    # ---- safety --------------------------------------------------------------------------------
    def kill(self) -> None:
        with self._lock:
            super().kill()

    def _on_signal(self, signum, frame):
        self.release_all()
        old = self._old_handlers.get(signum)
        if callable(old):
            return old(signum, frame)  # e.g. Python's SIGINT handler -> KeyboardInterrupt
        raise SystemExit(128 + signum)  # unwinds `with` blocks; the default action would skip them

    # ---- the hooks ------------------------------------------------------------------------------
    def send(self, action) -> list[Event]:
        with self._lock:  # a kill switch that lands mid-step waits for the step, then releases it all
            return super().send(action)

    def click_at(self, fx: float, fy: float, button: str = "left") -> list[Event]:
        with self._lock:
            return super().click_at(fx, fy, button)

    def _focused(self) -> bool:
        return True if self._windows is None else self._windows.focused(self.focus_window)

    def _pointer(self) -> tuple[int, int]:
        return self._input.pointer()

    def _emit(self, events: list[Event]) -> None:
        with self._lock:
            # The guardian learns of a press before it happens and of a release one step late, so
            # whenever we die it holds a superset of what is down: over-releasing is harmless, a missed
            # release is a stuck key.
            shm, key, button = self._shm, self._key_slot, self._button_slot
            if shm is not None:
                for i in self._released:
                    shm[i] = 0
                self._released = [key[e[1]] for e in events if e[0] == "release"]
                for e in events:
                    if e[0] == "press":
                        shm[key[e[1]]] = 1
                    elif e[0] == "click":
                        shm[button[e[1]]] = 1
                        self._released.append(button[e[1]])
            self._input.emit(events)

    def sync(self) -> None:
        """Wait until everything sent has been processed (tests; precise timing)."""
        with self._lock:
            self._input.sync()

    def release_all(self) -> list[Event]:
        with self._lock:
            if self._closed:
                return []
            return super().release_all()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self.release_all()
                self._input.sync()
            except Exception:  # the display is gone (ConnectionClosedError, OSError), and every key with it
                pass
            self._closed = True
        if self._listener is not None:
            backends.stop_listeners(self._listener)
        for sig, old in self._old_handlers.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, old)
        if self._guardian is not None:
            try:
                self._guardian.stdin.write(b"quit\n")  # a clean exit: nothing left to release
                self._guardian.stdin.close()
                self._guardian.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self._guardian.kill()
            self._guardian = None
            self._shm.close()
        self._input.close()
        if self._windows is not None:
            self._windows.close()
        atexit.unregister(self.close)


class XTestSink(LiveSink):
    """A LiveSink on the x11 backend (XTest on our own X connection): the name the live tools grew up with."""

    def __init__(self, input_map: InputMap, target: Target, **kw):
        kw.setdefault("backend", "x11")
        super().__init__(input_map, target, **kw)


def make_sink(input_map: InputMap, target: Target, *, backend: str | None = None, **kw) -> LiveSink:
    """The live sink for `target` on `backend` (default: the Capture's, else $HAKISA_BACKEND, else auto)."""
    return LiveSink(input_map, target, backend=backend, **kw)
