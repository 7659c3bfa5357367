"""Live screen capture (mss) and X11 window lookup: `Capture`, `find_window`, focus, regions.

A live target is a fixed screen region or an X11 window found by title. Window lookups go through
python-xlib on one long-lived connection; pixels come from one long-lived mss handle (XShmGetImage,
~0.3 ms for 640x360). Opening either per frame costs milliseconds, so neither is ever reopened.
What a frame becomes for the model is `hakisa.preprocess`.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from hakisa.preprocess import FrameStack, ObsSpec, preprocess

Region = tuple[int, int, int, int]  # (left, top, width, height) in absolute screen pixels


class DisplayError(RuntimeError):
    """No X display to capture from or send input to."""


class WindowNotFound(LookupError):
    """No window whose title contains the requested text (the message lists the visible ones)."""


class RegionError(ValueError):
    """A region (or a window's geometry) that is empty or not fully on the screen."""


class WindowInfo(NamedTuple):
    id: int
    title: str
    region: Region
    viewable: bool


def open_display(display: str | None = None):
    """An Xlib connection to `display` (default $DISPLAY), with an error that says what to do."""
    name = display or os.environ.get("DISPLAY")
    if not name:
        raise DisplayError(
            "no X display: DISPLAY is not set. Live capture and input need an X11 server. On a desktop, run "
            "from its session (DISPLAY=:0); on a headless machine start a virtual one, e.g. `Xvfb :99 &` and "
            "`export DISPLAY=:99`, or from Python `with hakisa.xserver.Xvfb() as d: os.environ['DISPLAY'] = d`.")
    from Xlib import display as xdisplay
    from Xlib.error import DisplayError as XDisplayError

    try:
        return xdisplay.Display(name)
    except (XDisplayError, OSError, ConnectionError) as e:
        raise DisplayError(f"cannot connect to X display {name!r} ({e}). Is the X server (or Xvfb) running, "
                           "and is DISPLAY right? `hakisa.xserver.Xvfb` starts a private one.") from e


def _title(dpy, win) -> str:
    from Xlib import X

    # _NET_WM_NAME is UTF-8 and what modern toolkits (Chromium, Tk, GTK) set; WM_NAME is the fallback
    for atom in (dpy.intern_atom("_NET_WM_NAME"), dpy.intern_atom("WM_NAME")):
        prop = win.get_full_property(atom, X.AnyPropertyType)
        if prop is not None and prop.value:
            v = prop.value
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return ""


def _region(dpy, win) -> Region:
    geo = win.get_geometry()
    origin = dpy.screen().root.translate_coords(win, 0, 0)  # absolute position of the window's inside
    return (int(origin.x), int(origin.y), int(geo.width), int(geo.height))


def _candidates(dpy) -> list:
    """Top-level windows: the WM's client list if there is a WM, else a walk of the window tree."""
    from Xlib import X
    from Xlib.error import XError

    root = dpy.screen().root
    prop = root.get_full_property(dpy.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
    if prop is not None and len(prop.value):
        return [dpy.create_resource_object("window", int(w)) for w in prop.value]
    out, todo = [], [(root, 0)]
    while todo:  # breadth-first, so a top-level window comes before its (usually untitled) children
        win, depth = todo.pop(0)
        if depth > 0:
            out.append(win)
        if depth < 3:  # clients sit at depth 1 (no WM) or 2 (reparenting WM); deeper ones are widgets
            try:
                todo.extend((c, depth + 1) for c in win.query_tree().children)
            except XError:  # it vanished since its parent listed it (a starting browser makes and drops windows)
                continue
    return out


def list_windows(dpy=None, *, viewable_only: bool = True) -> list[WindowInfo]:
    """Titled windows on the display (`dpy`: an Xlib Display, or None for $DISPLAY)."""
    from Xlib import X
    from Xlib.error import XError

    own = dpy is None
    dpy = dpy or open_display()
    try:
        out = []
        for w in _candidates(dpy):
            try:  # windows can vanish between the listing and the query
                title = _title(dpy, w)
                if not title:
                    continue
                viewable = w.get_attributes().map_state == X.IsViewable
                if viewable or not viewable_only:
                    out.append(WindowInfo(w.id, title, _region(dpy, w), viewable))
            except XError:
                continue
        return out
    finally:
        if own:
            dpy.close()


def find_window(title: str, dpy=None) -> WindowInfo:
    """The first viewable window whose title contains `title` (case-sensitive, then -insensitive)."""
    wins = list_windows(dpy)
    for match in (lambda t: title in t, lambda t: title.lower() in t.lower()):
        hits = [w for w in wins if match(w.title)]
        if hits:
            return hits[0]
    shown = "\n  ".join(f"{w.title!r} at {w.region}" for w in wins) or "(none)"
    raise WindowNotFound(f"no visible window whose title contains {title!r}. Visible windows:\n  {shown}")


def window_region(wid: int, dpy=None) -> Region:
    """Absolute (left, top, width, height) of the inside of window `wid`."""
    own = dpy is None
    dpy = dpy or open_display()
    try:
        return _region(dpy, dpy.create_resource_object("window", wid))
    finally:
        if own:
            dpy.close()


def window_state(wid: int, dpy=None) -> tuple[Region, bool]:
    """(absolute region, has keyboard focus) of window `wid`: what a live tool checks before acting."""
    own = dpy is None
    dpy = dpy or open_display()
    try:
        return window_region(wid, dpy), has_focus(wid, dpy)
    finally:
        if own:
            dpy.close()


def _ancestors(dpy, win) -> list[int]:
    out = []
    while True:
        tree = win.query_tree()
        if not tree.parent or tree.parent.id == tree.root.id:
            return out
        win = tree.parent
        out.append(win.id)


def give_focus(wid: int, dpy=None) -> None:
    """Give window `wid` the keyboard focus, as a click on it or a window manager would."""
    from Xlib import X

    own = dpy is None
    dpy = dpy or open_display()
    try:
        dpy.set_input_focus(dpy.create_resource_object("window", wid), X.RevertToParent, X.CurrentTime)
        dpy.sync()
    finally:
        if own:
            dpy.close()


def has_focus(wid: int, dpy=None) -> bool:
    """Whether keyboard input now goes to window `wid` (or one of its children).

    True when the focus is the window, a child of it, or its WM frame (an ancestor below the root); with
    no WM and focus PointerRoot, when the pointer is inside the window.
    """
    from Xlib import X
    from Xlib.error import XError

    own = dpy is None
    dpy = dpy or open_display()
    try:
        focus = dpy.get_input_focus().focus
        win = dpy.create_resource_object("window", wid)
        if isinstance(focus, int) or focus.id in (X.NONE, X.PointerRoot):
            if (focus if isinstance(focus, int) else focus.id) != X.PointerRoot:
                return False
            p = dpy.screen().root.query_pointer()
            left, top, w, h = _region(dpy, win)
            return left <= p.root_x < left + w and top <= p.root_y < top + h
        if focus.id == wid:
            return True
        if focus.id == dpy.screen().root.id:
            return False
        return wid in _ancestors(dpy, focus) or focus.id in _ancestors(dpy, win)
    except XError:
        return False
    finally:
        if own:
            dpy.close()


class Capture:
    """Grabs a region or a window (found by title or id) with one long-lived mss handle.

    `Capture(region=(0, 0, 640, 360))`, `Capture(title="Hakisa Duel")` or `Capture(window=0x400001)`.
    A window is followed: its geometry is re-read when the server reports a ConfigureNotify and every
    `follow_every` grabs (two X round trips), so moving it moves the capture.
    `grab()` -> BGRA [H, W, 4]; `frame()` -> one preprocessed frame; `obs()` -> the stack of the last
    `spec.stack` frames.
    """

    def __init__(self, region: Region | None = None, *, title: str | None = None, window: int | None = None,
                 spec: ObsSpec | None = None, display: str | None = None, follow_every: int = 60):
        if sum(v is not None for v in (region, title, window)) != 1:
            raise ValueError("Capture needs exactly one of region=, title= or window=")
        self.spec = spec or ObsSpec()
        self.display_name = display or os.environ.get("DISPLAY")
        self._dpy = open_display(self.display_name)  # fails early and clearly without a display
        import mss

        self._sct = mss.MSS(display=self.display_name)
        screen = self._sct.monitors[0]  # the whole virtual screen
        self.screen: Region = (screen["left"], screen["top"], screen["width"], screen["height"])
        self.window_id: int | None = None
        self.title = title
        if title is not None:
            info = find_window(title, self._dpy)
            self.window_id, self.title = info.id, info.title
        elif window is not None:
            self.window_id = int(window)
        self._win = self._dpy.create_resource_object("window", self.window_id) if self.window_id else None
        if self._win is not None:  # ConfigureNotify tells us of moves/resizes without polling
            from Xlib import X

            self._win.change_attributes(event_mask=X.StructureNotifyMask)
        self.follow_every = max(1, follow_every)
        self._n = 0
        self.region: Region = self._check(tuple(int(v) for v in region) if region is not None else self._query())
        self.stack = FrameStack(self.spec)

    def _query(self) -> Region:
        from Xlib.error import XError

        try:
            return _region(self._dpy, self._win)
        except XError as e:
            raise WindowNotFound(f"window {self.window_id:#x} ({self.title!r}) is gone: {e}") from e

    def _check(self, region: Region) -> Region:
        left, top, w, h = region
        sl, st, sw, sh = self.screen
        what = f"window {self.title!r}" if self.window_id else "region"
        if w <= 0 or h <= 0:
            raise RegionError(f"{what} {region} is empty (width and height must be > 0)")
        if left < sl or top < st or left + w > sl + sw or top + h > st + sh:
            raise RegionError(f"{what} (left, top, width, height)={region} is not fully on the screen "
                              f"{self.screen}; move it on screen or pick a region inside the screen")
        return region

    def refresh(self) -> Region:
        """Re-read the window's geometry now (called automatically every `follow_every` grabs)."""
        if self._win is not None:
            self.region = self._check(self._query())
        return self.region

    def grab(self) -> np.ndarray:
        """The target's pixels now: BGRA uint8 [H, W, 4] (a view of a fresh buffer, safe to keep)."""
        if self._win is not None:
            self._n += 1
            # an event (a move, a resize, a WM's synthetic ConfigureNotify) or, as a fallback for WM
            # frames that move silently, every `follow_every` grabs: re-read the geometry
            moved = False
            while self._dpy.pending_events():  # a non-blocking read, no round trip
                self._dpy.next_event()
                moved = True
            if moved or self._n % self.follow_every == 0:
                self.refresh()
        left, top, w, h = self.region
        shot = self._sct.grab({"left": left, "top": top, "width": w, "height": h})
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(h, w, 4)

    def frame(self) -> np.ndarray:
        """One preprocessed frame uint8 [C, h, w] (what episode stores keep)."""
        return preprocess(self.grab(), self.spec)

    def obs(self) -> np.ndarray:
        """Grab, preprocess and push onto the frame stack: uint8 [stack*C, h, w]."""
        return self.stack.push(self.frame())

    def has_focus(self) -> bool:
        """Whether the captured window has keyboard focus (always True for a bare region)."""
        return True if self.window_id is None else has_focus(self.window_id, self._dpy)

    def close(self) -> None:
        self._sct.close()
        self._dpy.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
