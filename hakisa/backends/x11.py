"""The x11 backend: python-xlib on our own X connection for windows, XTest for input. The default on Linux.

Window lookups are a few X round trips on one long-lived connection (opening one costs milliseconds, so it
is never reopened per frame). Moves and focus changes arrive as events on that connection (ConfigureNotify,
FocusIn/FocusOut), so a loop learns of them without asking the server every step.

Input goes through XTest, never XSendEvent: XTest input is what a real keyboard produces, so every app
accepts it and the server tracks it (query_keymap sees it down). Events are written straight to our
connection and flushed once per step: pynput's Controller syncs (a server round trip) after every event.
"""
from __future__ import annotations

import os
from typing import Sequence

from hakisa import backends
from hakisa.backends import DisplayError, Region, WindowInfo, WindowNotFound

NAME = "x11"


def open_display(display: str | None = None):
    """An Xlib connection to `display` (default $DISPLAY), with an error that says what to do."""
    name = backends.check_display(display)
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


def list_windows(dpy, viewable_only: bool = True) -> list[WindowInfo]:
    """Titled windows on the display of the Xlib connection `dpy`."""
    from Xlib import X
    from Xlib.error import XError

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


def _ancestors(dpy, win) -> list[int]:
    out = []
    while True:
        tree = win.query_tree()
        if not tree.parent or tree.parent.id == tree.root.id:
            return out
        win = tree.parent
        out.append(win.id)


def give_focus(dpy, wid: int) -> None:
    from Xlib import X

    dpy.set_input_focus(dpy.create_resource_object("window", wid), X.RevertToParent, X.CurrentTime)
    dpy.sync()


def has_focus(dpy, wid: int) -> bool:
    """Whether keyboard input now goes to window `wid` (or one of its children).

    True when the focus is the window, a child of it, or its WM frame (an ancestor below the root); with
    no WM and focus PointerRoot, when the pointer is inside the window.
    """
    from Xlib import X
    from Xlib.error import XError

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


class Windows(backends.Windows):
    """Window queries on one Xlib connection of our own (or `dpy`, a connection the caller owns)."""

    name = NAME

    def __init__(self, display: str | None = None, dpy=None):
        self._own = dpy is None
        self.dpy = open_display(display) if dpy is None else dpy
        self._moved = False
        self._focus_events = False  # a FocusIn/FocusOut arrived since the cached focus answer
        self._focus_cache: tuple[int, bool, bool] | None = None  # (wid, events will tell of a change, focused)
        self._watched: dict[int, int] = {}  # window id -> the event mask we selected on it

    def list(self, viewable_only: bool = True) -> list[WindowInfo]:
        return list_windows(self.dpy, viewable_only)

    def region(self, wid: int) -> Region:
        from Xlib.error import XError

        try:
            return _region(self.dpy, self.dpy.create_resource_object("window", wid))
        except XError as e:
            raise WindowNotFound(f"window {wid:#x} is gone: {e}") from e

    def has_focus(self, wid: int) -> bool:
        return has_focus(self.dpy, wid)

    def give_focus(self, wid: int) -> None:
        give_focus(self.dpy, wid)

    def _select(self, wid: int, mask: int) -> None:
        self._watched[wid] = self._watched.get(wid, 0) | mask
        self.dpy.create_resource_object("window", wid).change_attributes(event_mask=self._watched[wid])

    def _drain(self) -> None:
        from Xlib import X

        while self.dpy.pending_events():  # a non-blocking read, no round trip
            ev = self.dpy.next_event()
            if ev.type in (X.FocusIn, X.FocusOut):
                self._focus_events = True
            else:  # a move, a resize, a WM's synthetic ConfigureNotify
                self._moved = True

    def follow(self, wid: int) -> None:
        from Xlib import X

        self._select(wid, X.StructureNotifyMask)  # ConfigureNotify tells us of moves/resizes without polling

    def moved(self) -> bool:
        self._drain()
        moved, self._moved = self._moved, False
        return moved

    def focused(self, wid: int) -> bool:
        """Cached, event-driven focus check: no X round trip in the common case.

        While focus is on the window (or inside it) the server sends us a FocusOut when it leaves, so we
        re-query only when an event arrived. Focus on a WM frame or PointerRoot gives no such event for
        our window, so then we ask every step (one round trip).
        """
        from Xlib import X

        if wid not in self._watched or not self._watched[wid] & X.FocusChangeMask:
            self._select(wid, X.FocusChangeMask)
        self._drain()
        cache = self._focus_cache
        if cache is not None and cache[0] == wid and cache[1] and not self._focus_events:
            return cache[2]
        self._focus_events = False
        focus = self.dpy.get_input_focus().focus
        fid = focus if isinstance(focus, int) else focus.id
        focused = has_focus(self.dpy, wid)
        inside = focused and fid not in (X.NONE, X.PointerRoot) and (
            fid == wid or wid in _ancestors(self.dpy, focus))
        self._focus_cache = (wid, inside, focused)
        return focused

    def screen_size(self) -> tuple[int, int]:
        scr = self.dpy.screen()
        return int(scr.width_in_pixels), int(scr.height_in_pixels)

    def close(self) -> None:
        from Xlib.error import ConnectionClosedError

        if self._own and self.dpy is not None:
            try:
                self.dpy.close()
            except (ConnectionClosedError, OSError):
                pass  # the X server is gone: nothing to close
            self.dpy = None


def keysym(name: str) -> int:
    """pynput key name ("left", "space", "f12", "j", "1") -> X keysym."""
    from Xlib import XK

    if len(name) == 1:
        return XK.string_to_keysym(name) or (ord(name) if ord(name) < 256 else 0x01000000 | ord(name))
    from pynput.keyboard import Key

    try:
        return Key[name].value.vk
    except KeyError:
        ks = XK.string_to_keysym(name)
        if ks:
            return ks
        raise ValueError(f"unknown key name {name!r}: use pynput's names ('left', 'space', 'f12', 'j')") from None


def check_key(name: str) -> None:
    """Raise ValueError for a key name this backend cannot press."""
    keysym(name)


X_BUTTONS = {"left": 1, "middle": 2, "right": 3}  # X core button numbers


class Input(backends.Input):
    """XTest input on our own connection: each event is written, and the step flushed once (no round trip)."""

    name = NAME

    def __init__(self, display: str | None, keys: Sequence[str]):
        super().__init__(display, keys)
        from Xlib import X
        from Xlib.ext import xtest

        self._X, self._fake = X, xtest.fake_input
        self.dpy = open_display(display)
        if not self.dpy.has_extension("XTEST"):
            self.dpy.close()
            raise DisplayError(f"X display {display or os.environ.get('DISPLAY')} has no XTEST extension: "
                               "cannot send input")
        self._codes = {}
        for name in self.keys:
            with backends.on_display(display):  # pynput names special keys, and needs a display at import
                ks = keysym(name)
            code = self.dpy.keysym_to_keycode(ks)
            if not code:
                self.dpy.close()
                raise ValueError(f"key {name!r} (keysym {ks:#x}) is not on this X keyboard map")
            self._codes[name] = code

    def press(self, key: str) -> None:
        self._fake(self.dpy, self._X.KeyPress, self._codes[key])

    def release(self, key: str) -> None:
        self._fake(self.dpy, self._X.KeyRelease, self._codes[key])

    def move(self, x: int, y: int) -> None:
        self._fake(self.dpy, self._X.MotionNotify, x=x, y=y)  # absolute, screen 0

    def button(self, button: str, down: bool) -> None:
        self._fake(self.dpy, self._X.ButtonPress if down else self._X.ButtonRelease, X_BUTTONS[button])

    def pointer(self) -> tuple[int, int]:
        p = self.dpy.screen().root.query_pointer()
        return int(p.root_x), int(p.root_y)

    def flush(self) -> None:
        self.dpy.flush()  # one write per step; no round trip

    def sync(self) -> None:
        self.dpy.sync()

    def close(self) -> None:
        from Xlib.error import ConnectionClosedError

        if self.dpy is None:
            return
        try:
            self.dpy.sync()
            self.dpy.close()
        except (ConnectionClosedError, OSError):
            pass  # the X server is gone, and every key with it
        self.dpy = None
