"""Shared fixtures. X11 ones never touch an outer DISPLAY: each test gets its own Xvfb.

    def test_something(xvfb):              # ":N", and DISPLAY=":N" inside this test only
        ...
    def test_window(xvfb, xwin):           # a real X client window (tests/xwin.py) on that display
        w = xwin(title="target", x=100, y=80, width=640, height=360)
        w.wid, w.region, w.events(), w.wait_for("KeyPress", "j")
    def test_focus(xvfb, xwin):
        set_focus(w.wid)                   # plain helper below: XSetInputFocus on the test's display
    def test_both(backend, xvfb, xwin):    # runs once per backend ("x11", "portable"): HAKISA_BACKEND is set,
        ...                                # and the portable run's Xvfb has a window manager (openbox)

A child that reports on stdout: `read_line(proc, "what it is", expect="READY")`, a timeout with a message.
Mark such tests `@pytest.mark.x11`. Subprocesses that need the display: `env=os.environ.copy()`
(monkeypatch has already set DISPLAY and HAKISA_BACKEND there for the test's duration).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    """Tests marked `long` (minutes of real-time play) go first: with `-n 2` (scripts/test.sh) a worker takes
    one at the start instead of leaving it for the end, when the other worker has nothing left to run."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


BACKENDS = ["x11", "portable"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The capture/input backend a test runs on: each test that takes it runs once per backend."""
    return request.param


@pytest.fixture
def xvfb(request, monkeypatch):
    """A private 1280x720 Xvfb for one test; DISPLAY points at it for the test's duration only.
    With the `backend` fixture, HAKISA_BACKEND is that backend, and a portable run gets a window manager
    (pywinctl finds windows and focus through EWMH); without it, the x11 backend and no window manager."""
    from hakisa.xserver import Xvfb

    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames else "x11"
    monkeypatch.setenv("HAKISA_BACKEND", backend)
    server = Xvfb(width=1280, height=720, wm=backend == "portable")
    disp = server.start()
    monkeypatch.setenv("DISPLAY", disp)
    try:
        yield disp
    finally:
        server.stop()


def read_line(proc: subprocess.Popen, what: str, expect: str = "", timeout: float = 30.0) -> str:
    """The next line `proc` prints on stdout (text mode), which must start with `expect`. A child that prints
    nothing in `timeout` s, exits first, or prints something else is killed and named in an AssertionError
    with its stderr (when it was piped), so a stuck child costs seconds, never the per-test timeout."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = box[0] if box else None
    if line and line.startswith(expect):
        return line
    if line == "":  # end of its stdout: it is exiting
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    alive = proc.poll() is None
    if alive:
        proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    err = [""]
    if proc.stderr is not None:  # a grandchild may still hold the pipe open: read it with a timeout too
        grab = threading.Thread(target=lambda: err.__setitem__(0, proc.stderr.read()), daemon=True)
        grab.start()
        grab.join(5)
    err = err[0].decode(errors="replace") if isinstance(err[0], bytes) else err[0]
    why = (f"printed {line!r}" if line else f"exited with code {proc.returncode} before printing a line"
           if not alive else "closed its stdout" if line == "" else f"printed no line in {timeout:g} s")
    raise AssertionError(f"{what} {why}, {expect or 'a line'} expected (its stderr: {err.strip()[-2000:] or 'empty'})")


class XWin:
    """Handle on a running tests/xwin.py window: id, absolute region, and its received-events log."""

    def __init__(self, proc: subprocess.Popen, wid: int, log: Path, title: str, region: tuple[int, int, int, int]):
        self.proc, self.wid, self.log, self.title, self.region = proc, wid, log, title, region

    def events(self) -> list[list[str]]:
        """Received events so far, each split: ["KeyPress", "44", "j"], ["Motion", "10", "20"], ..."""
        return [ln.split() for ln in self.log.read_text().splitlines()] if self.log.exists() else []

    def keys(self, kind: str = "KeyPress") -> list[str]:
        return [e[2] for e in self.events() if e[0] == kind]

    def wait_for(self, *fields: str, timeout: float = 10.0) -> bool:
        """Wait until an event whose leading fields equal `fields` arrives (True) or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e[:len(fields)] == list(fields) for e in self.events()):
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def xwin(xvfb, tmp_path):
    """Factory: `xwin(title=..., x=, y=, width=, height=)` starts a real X client window and waits for it."""
    wins: list[XWin] = []

    def start(title: str = "xwin", x: int = 100, y: int = 80, width: int = 640, height: int = 360) -> XWin:
        log = tmp_path / f"events-{len(wins)}.txt"
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "xwin.py"), "--title", title, "--x", str(x), "--y", str(y),
             "--width", str(width), "--height", str(height), "--log", str(log)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(), text=True)
        line = read_line(proc, f"the xwin child {title!r}", expect="READY")  # once mapped and drawn
        w = XWin(proc, int(line.split()[1]), log, title, (x, y, width, height))
        wins.append(w)
        return w

    yield start
    for w in wins:
        w.close()


def set_focus(wid: int) -> None:
    """Give keyboard focus to window `wid` on $DISPLAY (what a click or a WM would do). Under a window manager,
    wait until it has noticed too (its _NET_ACTIVE_WINDOW, which the portable backend reads, follows the
    server's focus a moment later)."""
    from Xlib import X, display

    dpy = display.Display()
    try:
        dpy.set_input_focus(dpy.create_resource_object("window", wid), X.RevertToParent, X.CurrentTime)
        dpy.sync()
        root = dpy.screen().root
        if root.get_full_property(dpy.intern_atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType) is None:
            return
        active, deadline = dpy.intern_atom("_NET_ACTIVE_WINDOW"), time.monotonic() + 5
        while time.monotonic() < deadline:
            prop = root.get_full_property(active, X.AnyPropertyType)
            if prop is not None and len(prop.value) and int(prop.value[0]) == wid:
                return
            time.sleep(0.005)
        raise AssertionError(f"the window manager did not make {wid:#x} the active window")
    finally:
        dpy.close()


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for a test module (starting one costs seconds), shut down after the module. Modules that
    use it skip first when the extra is missing: `pytest.importorskip("ray", reason=...)`."""
    import ray

    from hakisa.distributed import init_ray

    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()
