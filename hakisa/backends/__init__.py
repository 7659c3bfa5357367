"""Backends: the few platform calls the live parts need, behind one small interface.

    from hakisa.backends import get_backend
    be = get_backend()                       # "auto": x11 on Linux, portable on Windows and macOS
    wins = be.Windows(display)               # list, find by title, geometry, moved?, focus
    keys = be.Input(display, ["left", "j"])  # press/release keys, move/click the mouse, where the pointer is

Everything else (mss capture, what a step sends, clamping, focus gating, the kill switch, the guardian)
lives once, in capture.py and sink.py, and calls only these. Two implementations:
  - x11 (`backends/x11.py`): python-xlib on our own connection, XTest for input. The fast default on Linux.
  - portable (`backends/portable.py`): pywinctl for windows, pynput Controllers for input. Runs on
    Windows, macOS and X11 (on X11 through the libraries' own Xlib code), so it is tested here.
Both use mss for pixels and a pynput Listener for the kill-switch key. docs/backends.md has the details:
selection, coordinates under display scaling (HiDPI), Wayland.

Choosing: `backend=` where a Capture or a sink is made, else $HAKISA_BACKEND, else "auto". The CLI's
`--backend` sets $HAKISA_BACKEND for the process, so every capture, sink, guardian and worker it starts agrees.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from contextlib import contextmanager
from typing import NamedTuple, Sequence

from hakisa.backends.xlib_errors import fix_randr_errors

fix_randr_errors()  # before any X connection of ours or our libraries' (pywinctl, pynput) opens: see that module

BACKENDS = ("x11", "portable")
BUTTONS = ("left", "right", "middle")  # the mouse buttons a sink may press (the guardian's slots, in this order)

Region = tuple[int, int, int, int]  # (left, top, width, height) in the backend's screen coordinates


class DisplayError(RuntimeError):
    """No display to capture from or send input to (or one we cannot use: Wayland, no window manager)."""


class WindowNotFound(LookupError):
    """No window whose title contains the requested text (the message lists the visible ones)."""


class RegionError(ValueError):
    """A region (or a window's geometry) that is empty or not fully on the screen."""


class WindowInfo(NamedTuple):
    """One titled top-level window as a backend lists it: its handle, title, inside region, and whether it is
    shown now (mapped on X11; visible and not minimised on the portable backend)."""

    id: int  # the backend's window handle: an X window id, a Win32 HWND (macOS: pywinctl's (app, title))
    title: str
    region: Region  # the window's inside (client area), absolute
    viewable: bool


# ---- selection ----------------------------------------------------------------------------------
def select_backend(name: str | None = None) -> str:
    """The backend to use: `name`, else $HAKISA_BACKEND, else "auto" (Linux and other X11 systems -> x11,
    Windows and macOS -> portable)."""
    name = (name or os.environ.get("HAKISA_BACKEND") or "auto").lower()
    if name == "auto":
        return "portable" if sys.platform in ("win32", "cygwin", "darwin") else "x11"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose auto, {', '.join(BACKENDS)}")
    if name == "x11" and sys.platform in ("win32", "darwin"):
        raise DisplayError("the x11 backend needs an X server (Linux, BSD); use --backend portable here")
    return name


def get_backend(name: str | None = None):
    """The backend module (`hakisa.backends.x11` or `.portable`); both define `NAME`, `Windows` and `Input`."""
    name = select_backend(name)
    if name == "x11":
        from hakisa.backends import x11 as mod
    else:
        from hakisa.backends import portable as mod
    return mod


def use_backend(name: str | None) -> str:
    """Make `name` this process's default (the CLI's --backend): sets $HAKISA_BACKEND, which child
    processes (the guardian, a local Ray's workers) inherit. Returns the backend that will run."""
    chosen = select_backend(name)
    if name and name.lower() != "auto":
        os.environ["HAKISA_BACKEND"] = chosen
    return chosen


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("auto", *BACKENDS), default=None,
                   help="capture and input backend (default: $HAKISA_BACKEND, else auto: x11 on Linux, "
                        "portable (pywinctl + pynput) on Windows and macOS)")


# ---- displays and Wayland -----------------------------------------------------------------------
def wayland_session(env=None) -> bool:
    env = os.environ if env is None else env
    return env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(env.get("WAYLAND_DISPLAY"))


WAYLAND_FIX = ("Log in to an X11 ('Xorg') session, or run the game on an Xvfb display: hakisa starts one itself "
               "for a game file with a launch entry when DISPLAY is unset")


def wayland_status(env=None) -> str | None:
    """None outside a Wayland session; else what works there, as a sentence for errors and `hakisa doctor`."""
    env = os.environ if env is None else env
    if not wayland_session(env):
        return None
    if env.get("DISPLAY"):
        return (f"Wayland session with XWayland on DISPLAY={env['DISPLAY']}: capture and input reach X11/XWayland "
                "windows only (a game or browser running through XWayland, e.g. Chromium with "
                "--ozone-platform=x11). Native Wayland windows cannot be found, captured (they grab black or fail) "
                f"or driven. {WAYLAND_FIX}")
    return ("Wayland session with no X display (DISPLAY is unset): nothing works, since mss, XTest and pynput "
            f"can neither see nor drive Wayland windows. {WAYLAND_FIX}")


def check_display(display: str | None = None) -> str | None:
    """The X display to use on X11 systems (`display`, else $DISPLAY), or a DisplayError that says what to do.
    None on Windows and macOS, which have no display names."""
    if sys.platform in ("win32", "cygwin", "darwin"):
        return None
    name = display or os.environ.get("DISPLAY")
    if not name:
        msg = wayland_status()
        if msg:
            raise DisplayError(msg)
        raise DisplayError(
            "no X display: DISPLAY is not set. Live capture and input need an X11 server. On a desktop, run "
            "from its session (DISPLAY=:0); on a headless machine start a virtual one, e.g. `Xvfb :99 &` and "
            "`export DISPLAY=:99`, or from Python `with hakisa.xserver.Xvfb() as d: os.environ['DISPLAY'] = d`.")
    return name


_env_lock = threading.RLock()


@contextmanager
def on_display(display: str | None):
    """pynput and pywinctl connect to $DISPLAY (X11): point it at `display` while they do."""
    if sys.platform in ("win32", "cygwin", "darwin") or not display:
        yield
        return
    with _env_lock:
        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old


def stop_listeners(*listeners, timeout: float = 2.0) -> None:
    """Stop pynput listeners and wait (up to `timeout` s each) for their threads to end.

    On X11, pynput 1.8 asks its recording connection to disable the RECORD context, and the server reads that
    connection only once an input event arrives: on a quiet display the thread lives on until the server dies,
    and then prints a traceback. Disabling it through the listener's other connection ends it at once."""
    for listener in listeners:
        listener.stop()
        stop_dpy, context = getattr(listener, "_display_stop", None), getattr(listener, "_context", None)
        if stop_dpy is not None and context is not None and listener.is_alive():
            try:
                stop_dpy.record_disable_context(context)
                stop_dpy.flush()
            except Exception:  # the display is gone, and the listener's thread with it
                pass
    for listener in listeners:
        listener.join(timeout)


def grab_failed(region: Region, error: Exception) -> DisplayError:
    """What a failed grab (mss's `XGetImage() failed` and the like) means, as our DisplayError."""
    why = wayland_status() or ("Is the region on this screen, and is the display (or Xvfb) still running? On macOS, "
                               "give the terminal the Screen Recording permission.")
    return DisplayError(f"screen capture of {region} failed ({error}). {why}")


# ---- the interface ------------------------------------------------------------------------------
class Windows:
    """One display's windows. A backend implements the methods that raise NotImplementedError."""

    name = "?"

    def list(self, viewable_only: bool = True) -> list[WindowInfo]:
        """Titled top-level windows."""
        raise NotImplementedError

    def region(self, wid) -> Region:
        """Absolute (left, top, width, height) of the inside of window `wid`; WindowNotFound when it is gone."""
        raise NotImplementedError

    def has_focus(self, wid) -> bool:
        """Whether keyboard input goes to window `wid` now."""
        raise NotImplementedError

    def give_focus(self, wid) -> None:
        """Give window `wid` the keyboard, as a click on it (or a window manager) would."""
        raise NotImplementedError

    def follow(self, wid) -> None:
        """Start noticing moves and resizes of `wid` (see `moved`)."""

    def moved(self) -> bool:
        """Whether the followed window may have moved since the last call (its geometry is then re-read)."""
        return False

    def focused(self, wid) -> bool:
        """`has_focus(wid)` for a loop that asks every step: a backend may answer from a cache it keeps true."""
        return self.has_focus(wid)

    def close(self) -> None:
        pass

    # shared: the same title matching on every backend
    def find(self, title: str) -> WindowInfo:
        """The first viewable window whose title contains `title` (case-sensitive, then -insensitive)."""
        wins = self.list()
        for match in (lambda t: title in t, lambda t: title.lower() in t.lower()):
            hits = [w for w in wins if match(w.title)]
            if hits:
                return hits[0]
        shown = "\n  ".join(f"{w.title!r} at {w.region}" for w in wins) or "(none)"
        raise WindowNotFound(f"no visible window whose title contains {title!r}. Visible windows:\n  {shown}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Input:
    """Keys and the mouse on one display. Key names are pynput's ("left", "space", "f12", "j")."""

    name = "?"

    def __init__(self, display: str | None, keys: Sequence[str]):
        self.display, self.keys = display, list(keys)

    def press(self, key: str) -> None:
        raise NotImplementedError

    def release(self, key: str) -> None:
        raise NotImplementedError

    def move(self, x: int, y: int) -> None:
        """Put the pointer at absolute (x, y)."""
        raise NotImplementedError

    def button(self, button: str, down: bool) -> None:
        raise NotImplementedError

    def pointer(self) -> tuple[int, int]:
        raise NotImplementedError

    def flush(self) -> None:
        """Hand what was sent to the system now (once per step)."""

    def sync(self) -> None:
        """Wait until everything sent has been processed."""

    def close(self) -> None:
        pass

    def emit(self, events) -> None:
        """Send a sink's planned events (sink.plan) in order, then flush once."""
        for e in events:
            kind = e[0]
            if kind == "press":
                self.press(e[1])
            elif kind == "release":
                self.release(e[1])
            elif kind == "move":
                self.move(e[1], e[2])
            elif kind == "click":
                self.button(e[1], True)
                self.button(e[1], False)
        self.flush()
