"""Backend selection, Wayland (simulated by its environment variables), and what only the portable backend needs:
a window manager on X11, and one pywinctl per X display (tests/test_sink.py and test_capture.py run the
safety and I/O bars on both backends)."""
from __future__ import annotations

import os
import sys

import pytest
from conftest import read_line

from hakisa import backends
from hakisa.backends import DisplayError, select_backend, use_backend, wayland_status
from hakisa.capture import Capture

WAYLAND = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}


def test_selection_auto_env_and_flag(monkeypatch):
    monkeypatch.delenv("HAKISA_BACKEND", raising=False)
    assert select_backend() == ("x11" if sys.platform.startswith("linux") else "portable")
    assert select_backend("portable") == "portable"
    monkeypatch.setenv("HAKISA_BACKEND", "portable")
    assert select_backend() == "portable" and select_backend("x11") == "x11"  # an explicit choice wins
    with pytest.raises(ValueError, match="unknown backend"):
        select_backend("wayland")
    monkeypatch.delenv("HAKISA_BACKEND")
    assert use_backend("portable") == "portable" and os.environ["HAKISA_BACKEND"] == "portable"  # the CLI's --backend
    assert backends.get_backend().NAME == "portable"


@pytest.mark.parametrize("with_display", [False, True], ids=["no-DISPLAY", "XWayland"])
@pytest.mark.parametrize("variables", [WAYLAND, {"XDG_SESSION_TYPE": "wayland"}, {"WAYLAND_DISPLAY": "wayland-0"}],
                         ids=["both", "session-type", "wayland-display"])
def test_wayland_is_detected_and_explained(monkeypatch, with_display, variables):
    from hakisa.doctor import check_session

    for k in ("XDG_SESSION_TYPE", "WAYLAND_DISPLAY", "DISPLAY"):
        monkeypatch.delenv(k, raising=False)
    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    if with_display:
        monkeypatch.setenv("DISPLAY", ":77")
        msg = wayland_status()
        assert "X11/XWayland windows only" in msg and "Native Wayland windows cannot" in msg and ":77" in msg
        assert check_session()["status"] == "warn"
    else:
        msg = wayland_status()
        assert "nothing works" in msg and "Xorg" in msg and "Xvfb" in msg
        assert check_session()["status"] == "fail"
        for backend in backends.BACKENDS:  # never a bare Xlib or mss error: ours, with the explanation
            with pytest.raises(DisplayError, match="Wayland session with no X display"):
                Capture(region=(0, 0, 10, 10), backend=backend)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert wayland_status() is None


@pytest.mark.x11
def test_a_failed_grab_under_xwayland_is_explained(backend, xvfb, monkeypatch):
    """XWayland answers a grab over a native Wayland window with `XGetImage() failed`: the capture turns it into
    our DisplayError, which says that only X11/XWayland windows can be captured, and `hakisa doctor` prints it."""
    import mss
    from mss.exception import ScreenShotError

    from hakisa.doctor import check_capture

    with Capture(region=(0, 0, 64, 36)) as cap:
        assert cap.grab().shape == (36, 64, 4)  # a real grab first: only the failure below is simulated
    for k, v in WAYLAND.items():
        monkeypatch.setenv(k, v)

    def fail(self, monitor):
        raise ScreenShotError("XGetImage() failed")

    monkeypatch.setattr(mss.MSS, "grab", fail)
    with Capture(region=(0, 0, 64, 36)) as cap:
        with pytest.raises(DisplayError, match=r"XGetImage\(\) failed.*X11/XWayland windows only"):
            cap.grab()
    check = check_capture(None, 0.05, backend)
    assert check["status"] == "fail" and "X11/XWayland windows only" in check["detail"], check


@pytest.mark.x11
def test_portable_on_x11_needs_a_window_manager(xvfb, xwin):
    """The plain fixture's Xvfb has no WM: the portable backend says so (and how to fix it), not "no window"."""
    xwin(title="lonely")
    with pytest.raises(DisplayError, match="window manager"):
        Capture(title="lonely", backend="portable")


@pytest.mark.x11
def test_portable_keeps_one_pywinctl_per_display():
    """Fleets open several private displays in one process: each gets its own pywinctl (ewmhlib binds one display
    at import), so a window is found, measured and focused on its own display only."""
    import subprocess

    from hakisa.backends.portable import Windows
    from hakisa.xserver import Xvfb

    with Xvfb(640, 360, wm=True) as a, Xvfb(640, 360, wm=True) as b:
        procs = []
        try:
            for disp, title, x in ((a, "on A", 10), (b, "on B", 200)):
                p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "xwin.py"), "--title",
                                      title, "--x", str(x), "--y", "20", "--width", "320", "--height", "180"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "DISPLAY": disp})
                procs.append(p)
                read_line(p, f"the xwin child {title!r}", expect="READY")
            with Windows(a) as wa, Windows(b) as wb:
                assert [w.title for w in wa.list()] == ["on A"] and [w.title for w in wb.list()] == ["on B"]
                assert wa.find("on A").region == (10, 20, 320, 180) and wb.find("on B").region == (200, 20, 320, 180)
                wid = wb.find("on B").id
                wb.give_focus(wid)
                assert wb.has_focus(wid) and not wa.has_focus(wid)
        finally:
            for p in procs:
                p.stdin.close()
                p.wait(5)


@pytest.mark.x11
def test_a_cached_portable_copy_that_does_not_answer_is_replaced_not_waited_on():
    """Each display's pywinctl copy is kept between uses and checked before reuse. In CI (stop 51) that check
    never returned and a test sat out its 600 s timeout. Here the connection is put in a state python-xlib never
    leaves (a reader that raised mid-read: `recv_active` stays set and every later request spins): the next use
    must drop the copy, cut its connection so nothing is left spinning, and work on a fresh one. A copy whose
    server process is gone is known stale without a round trip."""
    import threading

    from hakisa.backends import portable
    from hakisa.backends.portable import Windows
    from hakisa.xserver import Xvfb

    with Xvfb(640, 360, wm=True) as d:
        Windows(d).close()  # the copy stays cached for the next user
        stale = portable._copies[d]
        stale[1].defaultDisplay.display.recv_active = 1
        titles: list = []

        def use() -> None:
            with Windows(d) as w:
                titles.append([x.title for x in w.list()])

        t = threading.Thread(target=use, daemon=True)
        t.start()
        t.join(60)  # the check's own deadline is 5 s
        assert titles == [[]], "a copy that does not answer was waited on"
        assert portable._copies[d] is not stale
        probes = [x for x in threading.enumerate() if x.name == "hakisa-x-alive"]
        for x in probes:
            x.join(10)
        assert not any(x.is_alive() for x in probes), "the probe of the stale copy was left running"
        sock = portable._copies[d][1].defaultDisplay.display.socket
        assert not portable._server_gone(sock)
    assert portable._server_gone(sock)  # its Xvfb has exited: stale, and no byte was sent to learn it


@pytest.mark.x11
def test_an_x_error_raises_an_xerror_and_leaves_the_connection_usable(xvfb):
    """python-xlib's RandR init files its error classes under the core codes 0-2 (python-xlib #241, #259): a
    BadValue (here a GetProperty past a property's end; in stop 51, a window title Chromium changed between two
    reads) raised AttributeError halfway through a response, and the connection's next request never returned.
    hakisa.backends.xlib_errors puts the core classes back: the error is an XError, the connection answers."""
    import threading

    from Xlib import X, Xatom
    from Xlib.error import BadValue

    from hakisa.backends.x11 import open_display

    dpy = open_display(xvfb)
    answered: dict = {}
    try:
        root = dpy.screen().root
        atom = dpy.intern_atom("HAKISA_TEST")
        root.change_property(atom, Xatom.STRING, 8, b"abc")
        with pytest.raises(BadValue):
            root.get_property(atom, X.AnyPropertyType, 100, 1)  # offset 400 bytes into a 3-byte property
        # off the test's thread: a wedged connection then fails the test instead of hanging it
        t = threading.Thread(target=lambda: answered.setdefault("focus", dpy.get_input_focus()), daemon=True)
        t.start()
        t.join(30)
        assert "focus" in answered, "the connection did not answer after the error"
    finally:
        if "focus" in answered:  # closing a wedged connection can wait forever too
            dpy.close()
