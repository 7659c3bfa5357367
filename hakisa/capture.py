"""Live screen capture (mss) and window lookup: `Capture`, `find_window`, focus, regions.

A live target is a fixed screen region or a window found by title. Window lookups go through the
selected backend (hakisa.backends: x11 = python-xlib on one long-lived connection, portable = pywinctl);
pixels come from one long-lived mss handle (XShmGetImage on X11, ~0.3 ms for 640x360). Opening either per
frame costs milliseconds, so neither is ever reopened. What a frame becomes for the model is `hakisa.preprocess`.
"""
from __future__ import annotations

import numpy as np

from hakisa import backends
from hakisa.backends import DisplayError, Region, RegionError, WindowInfo, WindowNotFound, get_backend, select_backend
from hakisa.backends.x11 import open_display
from hakisa.preprocess import FrameStack, ObsSpec, preprocess

__all__ = ["Capture", "DisplayError", "Region", "RegionError", "WindowInfo", "WindowNotFound", "find_window",
           "give_focus", "has_focus", "list_windows", "open_display", "screen_region", "window_region",
           "window_state"]


# One-shot window helpers: `dpy` (an Xlib connection the caller owns) asks through it with the x11 backend;
# without one they open the selected backend's Windows on `display` (default $DISPLAY) for the one question.
def _windows(dpy, backend: str | None, display: str | None):
    if dpy is not None:
        from hakisa.backends import x11

        return x11.Windows(dpy=dpy)
    return get_backend(backend).Windows(display)


def list_windows(dpy=None, *, viewable_only: bool = True, backend: str | None = None,
                 display: str | None = None) -> list[WindowInfo]:
    """Titled windows on the display."""
    with _windows(dpy, backend, display) as w:
        return w.list(viewable_only)


def find_window(title: str, dpy=None, *, backend: str | None = None, display: str | None = None) -> WindowInfo:
    """The first viewable window whose title contains `title` (case-sensitive, then -insensitive)."""
    with _windows(dpy, backend, display) as w:
        return w.find(title)


def window_region(wid, dpy=None, *, backend: str | None = None, display: str | None = None) -> Region:
    """Absolute (left, top, width, height) of the inside of window `wid`."""
    with _windows(dpy, backend, display) as w:
        return w.region(wid)


def window_state(wid, dpy=None, *, backend: str | None = None, display: str | None = None) -> tuple[Region, bool]:
    """(absolute region, has keyboard focus) of window `wid`: what a live tool checks before acting."""
    with _windows(dpy, backend, display) as w:
        return w.region(wid), w.has_focus(wid)


def give_focus(wid, dpy=None, *, backend: str | None = None, display: str | None = None) -> None:
    """Give window `wid` the keyboard focus, as a click on it or a window manager would."""
    with _windows(dpy, backend, display) as w:
        w.give_focus(wid)


def has_focus(wid, dpy=None, *, backend: str | None = None, display: str | None = None) -> bool:
    """Whether keyboard input now goes to window `wid` (or one of its children)."""
    with _windows(dpy, backend, display) as w:
        return w.has_focus(wid)


def _mss(display: str | None):
    import mss

    try:  # `display` is an mss argument on Linux only
        return mss.MSS(display=display) if display else mss.MSS()
    except mss.exception.ScreenShotError as e:
        raise DisplayError(f"cannot open the screen{f' of X display {display!r}' if display else ''} for capture "
                           f"({e}). {backends.wayland_status() or 'Is the X server (or Xvfb) running?'}") from e


def screen_region(display: str | None = None) -> Region:
    """The whole virtual screen (every monitor), in the capture's coordinates."""
    with _mss(backends.check_display(display)) as sct:
        m = sct.monitors[0]
        return (m["left"], m["top"], m["width"], m["height"])


class Capture:
    """Grabs a region or a window (found by title or id) with one long-lived mss handle.

    `Capture(region=(0, 0, 640, 360))`, `Capture(title="Hakisa Duel")` or `Capture(window=0x400001)`.
    A window is followed: its geometry is re-read when the backend says it may have moved (x11: a
    ConfigureNotify; portable: every 0.1 s) and every `follow_every` grabs, so moving it moves the capture.
    `grab()` -> BGRA [H, W, 4]; `frame()` -> one preprocessed frame; `obs()` -> the stack of the last
    `spec.stack` frames. backend: "x11", "portable" or None ($HAKISA_BACKEND, else auto); a sink made for
    this capture uses the same one.
    """

    def __init__(self, region: Region | None = None, *, title: str | None = None, window=None,
                 spec: ObsSpec | None = None, display: str | None = None, follow_every: int = 60,
                 backend: str | None = None):
        if sum(v is not None for v in (region, title, window)) != 1:
            raise ValueError("Capture needs exactly one of region=, title= or window=")
        self.spec = spec or ObsSpec()
        self.backend = select_backend(backend)
        be = get_backend(self.backend)  # first: on Windows it makes the process DPI aware before mss runs
        self.display_name = backends.check_display(display)  # fails early and clearly without a display
        self._sct = _mss(self.display_name)
        self._windows = None
        try:
            screen = self._sct.monitors[0]  # the whole virtual screen
            self.screen: Region = (screen["left"], screen["top"], screen["width"], screen["height"])
            self.window_id = None
            self.title = title
            if title is not None or window is not None:
                self._windows = be.Windows(self.display_name)
                if title is not None:
                    info = self._windows.find(title)
                    self.window_id, self.title = info.id, info.title
                else:
                    self.window_id = window if isinstance(window, tuple) else int(window)  # macOS handles are tuples
                self._windows.follow(self.window_id)
            self.follow_every = max(1, follow_every)
            self._n = 0
            self.region: Region = self._check(tuple(int(v) for v in region) if region is not None else self._query())
        except BaseException:
            self.close()
            raise
        self.stack = FrameStack(self.spec)

    def _query(self) -> Region:
        return self._windows.region(self.window_id)

    def _check(self, region: Region) -> Region:
        left, top, w, h = region
        sl, st, sw, sh = self.screen
        what = f"window {self.title!r}" if self.window_id is not None else "region"
        if w <= 0 or h <= 0:
            raise RegionError(f"{what} {region} is empty (width and height must be > 0)")
        if left < sl or top < st or left + w > sl + sw or top + h > st + sh:
            raise RegionError(f"{what} (left, top, width, height)={region} is not fully on the screen "
                              f"{self.screen}; move it on screen or pick a region inside the screen")
        return region

    def refresh(self) -> Region:
        """Re-read the window's geometry now (called automatically every `follow_every` grabs)."""
        if self._windows is not None:
            self.region = self._check(self._query())
        return self.region

    def grab(self) -> np.ndarray:
        """The target's pixels now: BGRA uint8 [H, W, 4] (a view of a fresh buffer, safe to keep)."""
        if self._windows is not None:
            self._n += 1
            # the backend's "it may have moved" (an event, or a timer) or, as a fallback for WM frames
            # that move silently, every `follow_every` grabs: re-read the geometry
            if self._windows.moved() or self._n % self.follow_every == 0:
                self.refresh()
        left, top, w, h = self.region
        try:
            shot = self._sct.grab({"left": left, "top": top, "width": w, "height": h})
        except Exception as e:  # mss's ScreenShotError ("XGetImage() failed", ...): say what it means
            raise backends.grab_failed(self.region, e) from e
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)

    def frame(self) -> np.ndarray:
        """One preprocessed frame uint8 [C, h, w] (what episode stores keep)."""
        return preprocess(self.grab(), self.spec)

    def obs(self) -> np.ndarray:
        """Grab, preprocess and push onto the frame stack: uint8 [stack*C, h, w]."""
        return self.stack.push(self.frame())

    def has_focus(self) -> bool:
        """Whether the captured window has keyboard focus (always True for a bare region)."""
        return True if self._windows is None else self._windows.has_focus(self.window_id)

    def close(self) -> None:
        self._sct.close()
        if self._windows is not None:
            self._windows.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
