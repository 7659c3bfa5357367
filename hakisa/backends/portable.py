"""The portable backend: pywinctl for windows, pynput Controllers for input. Windows, macOS and X11.

No Xlib call of ours lives here: on X11 the libraries make them (pywinctl through ewmhlib, pynput through
XTest), so running it under Xvfb exercises the same calls it makes on Windows and macOS.

Coordinates (docs/backends.md): one system per platform, the one the mouse takes and mss grabs in.
  - Windows: physical pixels. The process is made per-monitor DPI aware (below) before mss, pywinctl or
    pynput run; otherwise Windows scales coordinates per program and a window's rectangle, the grab and the
    pointer disagree on a scaled monitor.
  - macOS: points. mss grabs at nominal resolution (one pixel per point on Retina), pywinctl reports points
    and pynput moves the pointer in points, so a region is the same rectangle for all three.
  - X11: X pixels (no scaling in the protocol).

What differs per platform is kept to three small spots: a window's inside is pywinctl's `box` on X11 but its
`getClientFrame()` on Windows and macOS (on X11 `box` already is the inside and getClientFrame subtracts
the frame again); X11 needs a window manager (pywinctl reads the EWMH client list and active window); and
on macOS focus is the frontmost application (pywinctl's per-window answer runs osascript, tens of ms).
"""
from __future__ import annotations

import importlib
import os
import socket
import struct
import sys
import threading
import time
from collections import OrderedDict
from typing import Sequence

from hakisa import backends
from hakisa.backends import DisplayError, Region, WindowInfo, WindowNotFound, _env_lock, on_display

NAME = "portable"
X11 = sys.platform not in ("win32", "cygwin", "darwin")
MAC = sys.platform == "darwin"
POLL_S = 0.1  # a followed window's geometry is re-read at most this often (no move events to wait for)


def _dpi_aware() -> None:
    """Windows: per-monitor DPI awareness, before anything asks for a coordinate. mss sets the same when its
    first handle opens, but pywinbox/pymonctl set the weaker system-wide awareness at import if nothing has
    been set, and the first call wins."""
    import ctypes

    try:
        ctypes.windll.shcore.SetProcessDpiAwareness(2)  # PROCESS_PER_MONITOR_DPI_AWARE (Windows 8.1+)
    except (AttributeError, OSError):
        ctypes.windll.user32.SetProcessDPIAware()  # Vista .. 8: system-wide awareness


if sys.platform in ("win32", "cygwin"):
    _dpi_aware()

# ---- pywinctl, one copy per X display ------------------------------------------------------------
# On X11, ewmhlib (under pywinctl) opens $DISPLAY at import and keeps it as the module's default, so one
# import serves one display. Tests and fleets use several private displays in one process: each gets its own
# import of the four modules (the functions of each copy keep using that copy's connection). At import
# ewmhlib also connects to EVERY X server in /tmp/.X11-unix unless XDG_SESSION_TYPE is "wayland", and then
# resolves a window id on whichever server lists it; X ids repeat across servers, so that could pick the
# wrong one. We import with that switch set, so it connects to our display only.
_LIBS = ("pywinctl", "pywinbox", "pymonctl", "ewmhlib")
_copies: OrderedDict[str, list] = OrderedDict()  # display -> [pywinctl module, ewmhlib module, users]
_KEEP_IDLE = 4  # copies kept for displays no Windows uses now (a window search retried in a loop reuses one)


def _import_pywinctl(display: str | None):
    if not X11:
        try:
            import pywinctl
        except ImportError as e:
            raise DisplayError(f"the portable backend needs pywinctl ({e}): pip install 'hakisa[portable]'") from e
        return pywinctl, None
    import shutil

    if not shutil.which("xrandr"):  # pymonctl calls sys.exit(1) at import without it
        raise DisplayError("the portable backend's window library (pywinctl, through pymonctl) needs xrandr on "
                           "X11: apt-get install x11-xserver-utils (or use --backend x11)")
    with _env_lock:
        for k in [k for k in sys.modules if k.split(".")[0] in _LIBS]:
            del sys.modules[k]  # the previous display's copy lives on in _copies
        old = {k: os.environ.get(k) for k in ("DISPLAY", "XDG_SESSION_TYPE")}
        os.environ.update(DISPLAY=display, XDG_SESSION_TYPE="wayland")
        try:
            pywinctl = importlib.import_module("pywinctl")
            ewmhlib = importlib.import_module("ewmhlib")
        except ImportError as e:
            raise DisplayError(f"the portable backend needs pywinctl ({e}): pip install 'hakisa[portable]'") from e
        except SystemExit as e:
            raise DisplayError(f"pywinctl could not start on X display {display} (exit {e.code}): is xrandr "
                               "installed and the display running?") from None
        except Exception as e:  # python-xlib could not connect
            raise DisplayError(f"pywinctl cannot connect to X display {display!r} ({e})") from e
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return pywinctl, ewmhlib


ALIVE_TIMEOUT_S = 5.0  # a round trip on a healthy local server takes well under a millisecond, even loaded


def _server_gone(sock) -> bool:
    """A local server's process is gone (the socket names it, SO_PEERCRED), without a byte sent: no round trip
    on a dead connection, which is the usual reason a copy is stale (a display number is reused)."""
    if getattr(sock, "family", None) != getattr(socket, "AF_UNIX", None) or not hasattr(socket, "SO_PEERCRED"):
        return False
    try:
        pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
        if pid <= 0:
            return False  # a peer in another pid namespace: unnamed (and kill(0) would mean our own group)
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, struct.error):
        pass  # not ours to signal, or not a peer we can name: the round trip decides
    return False


def _alive(ewmhlib, timeout: float = ALIVE_TIMEOUT_S) -> bool:
    """Whether a cached copy's connection still reaches a server that answers. The round trip runs on a thread
    with a deadline because python-xlib can wait forever: in CI (stop 51) this sync never returned and the test
    sat out its 600 s timeout. The likely cause, found since: python-xlib's RandR error classes filed under core
    error codes made an ordinary BadValue raise halfway through a read, leaving `recv_active` set, and every later
    request then spins (`hakisa/backends/xlib_errors.py` fixes that at its source). The deadline stays for any
    other way a connection can stop answering: the copy is dropped, its connection is cut so that a probe still
    inside it ends, and a fresh connection is made."""
    try:
        if _server_gone(ewmhlib.defaultDisplay.display.socket):
            return False
    except AttributeError:
        pass  # closed already (no socket): the round trip below raises
    answered = threading.Event()

    def probe() -> None:
        try:
            ewmhlib.defaultDisplay.sync()
            answered.set()
        except Exception:
            pass  # its server is gone

    t = threading.Thread(target=probe, name="hakisa-x-alive", daemon=True)
    t.start()
    t.join(timeout)
    if answered.is_set():
        return True
    if t.is_alive():
        _cut(ewmhlib.defaultDisplay.display)  # a probe left spinning would take a core for good
        t.join(timeout)
    return False  # late is stale, even if the cut lets it read its answer


def _cut(conn) -> None:
    """End a python-xlib connection from outside, without its own close (which flushes, and can wait on the same
    stuck state). Shutting the socket down wakes a reader blocked in select (it reads the end, and raises);
    clearing `recv_active` makes a requester that spins (no reader left) read that end itself, and raise."""
    sock = getattr(conn, "socket", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.recv_active = 0


def _acquire(display: str | None) -> list:
    """The copy for `display` ([pywinctl, ewmhlib, users]), imported if needed; its user count goes up."""
    key = display or ""
    with _env_lock:
        if key in _copies and _copies[key][1] is not None and not _alive(_copies[key][1]):
            # its server is gone or does not answer (not closed: a close could wait on the same connection);
            # anyone still holding it releases that entry, not the new one
            del _copies[key]
        if key not in _copies:
            _copies[key] = [*_import_pywinctl(display), 0]
        _copies.move_to_end(key)
        _copies[key][2] += 1
        return _copies[key]


def _release(entry: list) -> None:
    with _env_lock:
        entry[2] -= 1
        idle = [k for k, v in _copies.items() if v[2] <= 0]
        for k in idle[:max(0, len(idle) - _KEEP_IDLE)]:  # the least recently used go first
            ewmhlib = _copies.pop(k)[1]
            if ewmhlib is not None:
                try:
                    ewmhlib.defaultDisplay.close()
                except Exception:
                    pass  # its server is gone already


def _mac_frontmost_pid() -> int:
    import AppKit  # pyobjc, which pywinctl and pynput need on macOS anyway

    return int(AppKit.NSWorkspace.sharedWorkspace().frontmostApplication().processIdentifier())


class Windows(backends.Windows):
    """Window queries through pywinctl. On X11 a window manager must be running (EWMH)."""

    name = NAME

    def __init__(self, display: str | None = None):
        self.display = backends.check_display(display)
        self._entry = _acquire(self.display)
        self.pwc, ewmhlib = self._entry[0], self._entry[1]
        self._closed = False
        self._wins: dict = {}  # handle -> pywinctl Window
        self._pids: dict = {}
        self._next_poll = 0.0
        if ewmhlib is not None and not ewmhlib.defaultEwmhRoot.getSupportingWMCheck():
            self.close()
            raise DisplayError(f"the portable backend finds windows through the window manager (EWMH), and X "
                               f"display {self.display} has none running: start one (hakisa's own Xvfb displays "
                               "start openbox for this backend), or use --backend x11")

    def _region_of(self, w) -> Region:
        if X11:
            b = w.box
            return (int(b.left), int(b.top), int(b.width), int(b.height))
        r = w.getClientFrame()
        return (int(r.left), int(r.top), int(r.right - r.left), int(r.bottom - r.top))

    def list(self, viewable_only: bool = True) -> list[WindowInfo]:
        out = []
        for w in self.pwc.getAllWindows():
            try:  # windows can vanish between the listing and the query
                title = w.title
                if not title:
                    continue
                viewable = bool(w.visible) and not w.isMinimized
                if viewable or not viewable_only:
                    wid = w.getHandle()
                    self._wins[wid] = w
                    out.append(WindowInfo(wid, title, self._region_of(w), viewable))
            except Exception:
                continue
        return out

    def _win(self, wid):
        w = self._wins.get(wid)
        if w is None:
            if MAC:  # a handle is (app, title): only a listing can turn it back into a window
                self.list(viewable_only=False)
                w = self._wins.get(wid)
            else:
                try:
                    w = self._wins[wid] = self.pwc.Window(wid)
                except Exception as e:
                    raise WindowNotFound(f"window {wid!r} is gone: {e}") from e
            if w is None:
                raise WindowNotFound(f"window {wid!r} is gone")
        return w

    def region(self, wid) -> Region:
        try:
            return self._region_of(self._win(wid))
        except WindowNotFound:
            raise
        except Exception as e:
            raise WindowNotFound(f"window {wid!r} is gone: {e}") from e

    def has_focus(self, wid) -> bool:
        try:
            if MAC:
                if wid not in self._pids:
                    self._pids[wid] = self._win(wid).getPID()
                return self._pids[wid] == _mac_frontmost_pid()
            active = self.pwc.getActiveWindow()
            return active is not None and active.getHandle() == wid
        except Exception:  # a window gone mid-query has no focus
            return False

    def give_focus(self, wid) -> None:
        self._win(wid).activate(wait=True)  # waits (up to ~1.4 s) until the system says it is active

    def follow(self, wid) -> None:
        self._next_poll = time.monotonic() + POLL_S

    def moved(self) -> bool:
        """No move events to listen to: say "maybe" every POLL_S, and the caller re-reads the geometry."""
        t = time.monotonic()
        if t < self._next_poll:
            return False
        self._next_poll = t + POLL_S
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wins.clear()
            _release(self._entry)


# ---- input ----------------------------------------------------------------------------------------
def _pynput(display: str | None):
    try:
        with on_display(display):
            from pynput import keyboard, mouse
    except ImportError as e:  # pynput wraps "no X connection" as ImportError too
        raise DisplayError(f"pynput cannot start ({e})") from e
    return keyboard, mouse


def _key(keyboard, name: str):
    if len(name) == 1:
        return keyboard.KeyCode.from_char(name)
    try:
        return keyboard.Key[name]
    except KeyError:
        raise ValueError(f"unknown key name {name!r}: use pynput's names ('left', 'space', 'f12', 'j')") from None


def check_key(name: str) -> None:
    """Raise ValueError for a key name this backend cannot press."""
    if len(name) != 1:
        from pynput.keyboard import Key

        if name not in Key.__members__:
            raise ValueError(f"unknown key name {name!r}: use pynput's names ('left', 'space', 'f12', 'j')")


class Input(backends.Input):
    """pynput's keyboard and mouse Controllers. On X11 each event is an XTest request plus a round trip
    (pynput syncs after every event): ~0.1-0.2 ms an event on an idle machine, so one a step stays cheap."""

    name = NAME

    def __init__(self, display: str | None, keys: Sequence[str]):
        super().__init__(backends.check_display(display), keys)
        keyboard, mouse = _pynput(self.display)
        self._keys = {name: _key(keyboard, name) for name in self.keys}
        with on_display(self.display):  # each Controller opens its own connection to $DISPLAY (X11)
            self._kb, self._mouse = keyboard.Controller(), mouse.Controller()
        self._buttons = {"left": mouse.Button.left, "right": mouse.Button.right, "middle": mouse.Button.middle}

    def press(self, key: str) -> None:
        self._kb.press(self._keys[key])

    def release(self, key: str) -> None:
        self._kb.release(self._keys[key])

    def move(self, x: int, y: int) -> None:
        self._mouse.position = (x, y)

    def button(self, button: str, down: bool) -> None:
        (self._mouse.press if down else self._mouse.release)(self._buttons[button])

    def pointer(self) -> tuple[int, int]:
        x, y = self._mouse.position
        return int(x), int(y)

    def close(self) -> None:
        for c in (self._kb, self._mouse):  # pynput closes its X connections only when collected
            dpy = c.__dict__.pop("_display", None)  # popped: its __del__ would close it a second time
            if dpy is not None:
                try:
                    dpy.close()
                except Exception:
                    pass
