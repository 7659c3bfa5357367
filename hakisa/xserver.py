"""A private Xvfb display, for tests and for headless runs of the live tools.

`-displayfd` makes the server pick a free display number and tell us which, so parallel tests
(and a user's real desktop) never collide. The server dies with the context, always.

`wm=True` also starts a minimal openbox on it: the portable backend (pywinctl) finds windows and focus
through a window manager (EWMH). Its config keeps geometry exact: no decorations or borders, and a window's
requested position is honoured. `wm=None` (the default) starts one when the selected backend is portable.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time

# No decorations, no border: a window's inside is where it asked to be, as without a WM. A click focuses, as
# on a desktop; a new window does not take the focus by itself (the live tools give it), so what has the
# keyboard never changes behind a test's back.
OPENBOX_RC = """<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <focus><focusNew>no</focusNew><followMouse>no</followMouse></focus>
  <placement><policy>Smart</policy></placement>
  <theme><keepBorder>no</keepBorder></theme>
  <desktops><number>1</number></desktops>
  <mouse><context name="Client"><mousebind button="Left" action="Press"><action name="Focus"/><action name="Raise"/>
  </mousebind></context></mouse>
  <applications><application class="*"><decor>no</decor></application></applications>
</openbox_config>
"""


def die_with_parent() -> None:
    """A `preexec_fn` for what the live tools start (Xvfb, Chromium, a game's command): Linux sends the child
    SIGKILL when the process that started it dies, even by `kill -9`, so a killed run leaves no browser or X
    server behind (a resumed run would find the old window by its title). Elsewhere, or without prctl: nothing."""
    if _prctl is not None:
        _prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _find_prctl():
    # resolved once, here, not in the forked child: a preexec_fn should do as little as it can
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


class Xvfb:
    """`with Xvfb(1280, 720) as display: ...` -> ":N". Also `start()` / `stop()`."""

    def __init__(self, width: int = 1280, height: int = 720, depth: int = 24, wm: bool | None = None):
        self.width, self.height, self.depth = width, height, depth
        if wm is None:
            from hakisa.backends import select_backend

            wm = select_backend() == "portable"
        self.wm = wm
        self.proc: subprocess.Popen | None = None
        self.wm_proc: subprocess.Popen | None = None
        self._rc: str | None = None
        self.display: str | None = None

    def start(self) -> str:
        if shutil.which("Xvfb") is None:
            raise RuntimeError("Xvfb is not installed: run scripts/setup.sh (or apt-get install xvfb)")
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{self.width}x{self.height}x{self.depth}",
             "-nolisten", "tcp", "-noreset", "+extension", "XTEST"],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent)
        os.close(w)
        deadline, buf = time.monotonic() + 15, b""
        with os.fdopen(r, "rb", buffering=0) as f:  # select: a server that never writes must not block us
            while not buf.endswith(b"\n") and time.monotonic() < deadline:
                if not select.select([f], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    break
                chunk = f.read(16)
                if not chunk:
                    break
                buf += chunk
        if not buf.strip().isdigit():
            code = self.proc.poll()
            self.stop()
            raise RuntimeError("Xvfb did not report a display number in 15 s"
                               + (f" (it exited with code {code})" if code is not None else ""))
        self.display = f":{int(buf)}"
        if self.wm:
            self._start_wm()
        return self.display

    def _start_wm(self) -> None:
        if shutil.which("openbox") is None:
            self.stop()
            raise RuntimeError("openbox is not installed (the portable backend needs a window manager on X11): "
                               "run scripts/setup.sh (or apt-get install openbox)")
        fd, self._rc = tempfile.mkstemp(prefix="hakisa-openbox-", suffix=".xml")
        with os.fdopen(fd, "w") as f:
            f.write(OPENBOX_RC)
        self.wm_proc = subprocess.Popen(["openbox", "--config-file", self._rc, "--sm-disable"],
                                        env={**os.environ, "DISPLAY": self.display}, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        from Xlib import X, display

        from hakisa.backends.xlib_errors import fix_randr_errors

        fix_randr_errors()  # before the connection opens: an X error must not wedge the wait (see that module)
        dpy = display.Display(self.display)
        try:
            self._wait_for_wm(dpy, X, deadline=time.monotonic() + 15)
        finally:
            dpy.close()

    def _wait_for_wm(self, dpy, X, deadline: float) -> None:
        """Return once openbox manages new windows. It announces itself (EWMH _NET_SUPPORTING_WM_CHECK on the
        root) before its event loop runs, and a window mapped in between is never mapped (its MapRequest is
        lost): on a busy machine a test's window then waits forever. So a probe window must be mapped by it,
        and be gone from its client list, before anyone else maps one."""
        root = dpy.screen().root
        check, clients = dpy.intern_atom("_NET_SUPPORTING_WM_CHECK"), dpy.intern_atom("_NET_CLIENT_LIST")

        def wait(cond, what: str) -> None:
            while not cond():
                code = self.wm_proc.poll()
                if time.monotonic() > deadline or code is not None:
                    self.stop()
                    raise RuntimeError(f"openbox did not start on the Xvfb display in 15 s: {what}"
                                       + (f" (it exited with code {code})" if code is not None else ""))
                time.sleep(0.02)

        wait(lambda: root.get_full_property(check, X.AnyPropertyType) is not None, "no _NET_SUPPORTING_WM_CHECK")
        probe = root.create_window(-10, -10, 1, 1, 0, X.CopyFromParent)
        probe.map()
        last_map = [time.monotonic()]

        def viewable() -> bool:
            if probe.get_attributes().map_state == X.IsViewable:
                return True
            if time.monotonic() - last_map[0] > 0.5:  # a MapRequest sent before its loop ran: ask again
                probe.map()
                last_map[0] = time.monotonic()
            return False

        wait(viewable, "it did not map a probe window")
        probe.destroy()
        dpy.sync()

        def unlisted() -> bool:
            prop = root.get_full_property(clients, X.AnyPropertyType)
            return prop is None or probe.id not in list(prop.value)

        wait(unlisted, "the probe window stayed in its client list")

    def stop(self) -> None:
        if self.wm_proc is not None:
            self.wm_proc.terminate()
            try:
                self.wm_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.wm_proc.kill()
                self.wm_proc.wait()
            self.wm_proc = None
        if self._rc:
            os.unlink(self._rc)
            self._rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def env(self) -> dict[str, str]:
        """A copy of os.environ pointed at this display (for subprocesses)."""
        assert self.display, "Xvfb not started"
        return {**os.environ, "DISPLAY": self.display}

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
