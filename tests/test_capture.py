"""Live capture against a real Xvfb and a real X client window (tests/xwin.py), on each backend."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import set_focus
from xwin import BG, RECTS

from hakisa.capture import (
    Capture,
    DisplayError,
    RegionError,
    WindowNotFound,
    has_focus,
    list_windows,
    window_state,
)
from hakisa.preprocess import ObsSpec, preprocess


def test_no_display_is_a_clear_error(monkeypatch, backend):
    monkeypatch.delenv("DISPLAY", raising=False)
    for k in ("XDG_SESSION_TYPE", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(DisplayError, match="DISPLAY.*Xvfb"):
        Capture(region=(0, 0, 10, 10), backend=backend)


@pytest.mark.x11
def test_window_capture_matches_drawing(backend, xvfb, xwin):
    w = xwin(title="capture target", x=130, y=70, width=640, height=360)
    with Capture(title="capture target", backend=backend) as cap:
        assert cap.backend == backend
        assert cap.window_id == w.wid
        assert cap.region == (130, 70, 640, 360)
        img = cap.grab()
        assert img.shape == (360, 640, 4) and img.dtype == np.uint8
        bgr = img[..., :3]
        for x, y, rw, rh, rgb in RECTS:  # every pixel of every rectangle, and the background around them
            assert (bgr[y:y + rh, x:x + rw] == rgb[::-1]).all(), rgb
        assert (bgr[200:, 400:] == BG[::-1]).all()
        # the observation goes through the shared preprocess: red (255,0,0) -> gray 76 (BT.601)
        spec = ObsSpec(width=320, height=180, gray=True, stack=2)
        cap.spec = spec
        frame = cap.frame()
        assert frame.shape == (1, 180, 320)
        x, y, rw, rh, _ = RECTS[0]
        assert abs(int(frame[0, y // 2 + rh // 4, x // 2 + rw // 4]) - 76) <= 1
        np.testing.assert_array_equal(frame, preprocess(cap.grab(), spec))


@pytest.mark.x11
@pytest.mark.parametrize("follow_every", [1, 1000], ids=["poll", "configure-event"])
def test_capture_follows_a_moving_window(backend, xvfb, xwin, follow_every):
    import time

    from Xlib import display

    w = xwin(title="mover", x=50, y=40, width=320, height=180)
    with Capture(title="mover", follow_every=follow_every, backend=backend) as cap:
        cap.grab()
        dpy = display.Display()
        dpy.create_resource_object("window", w.wid).configure(x=400, y=300)
        dpy.sync()
        dpy.close()
        deadline = time.monotonic() + 5  # the ConfigureNotify reaches the capture's connection asynchronously
        while True:
            img = cap.grab()
            if cap.region != (50, 40, 320, 180) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert cap.region == (400, 300, 320, 180)
        x, y, rw, rh, rgb = RECTS[1]
        assert (img[y:y + rh, x:x + rw, :3] == rgb[::-1]).all()


@pytest.mark.x11
def test_clear_errors_for_unknown_title_and_offscreen_region(backend, xvfb, xwin):
    xwin(title="present window")
    with pytest.raises(WindowNotFound, match="present window"):  # the message lists what is visible
        Capture(title="no such game", backend=backend)
    with pytest.raises(RegionError, match="not fully on the screen"):
        Capture(region=(1200, 700, 640, 360), backend=backend)
    with pytest.raises(RegionError, match="empty"):
        Capture(region=(0, 0, 0, 10), backend=backend)


@pytest.mark.x11
def test_list_windows_and_focus(backend, xvfb, xwin):
    a = xwin(title="win A", x=0, y=0, width=320, height=180)
    b = xwin(title="win B", x=400, y=0, width=320, height=180)
    titles = {w.title: w for w in list_windows(backend=backend)}
    assert titles["win A"].id == a.wid and titles["win B"].region == (400, 0, 320, 180)
    set_focus(a.wid)
    assert has_focus(a.wid, backend=backend) and not has_focus(b.wid, backend=backend)
    set_focus(b.wid)
    assert has_focus(b.wid, backend=backend) and not has_focus(a.wid, backend=backend)
    assert window_state(b.wid, backend=backend) == ((400, 0, 320, 180), True)
    assert window_state(a.wid, backend=backend) == ((0, 0, 320, 180), False)


@pytest.mark.x11
def test_list_windows_survives_windows_vanishing_mid_walk(xvfb):
    """A starting browser creates and destroys windows while we walk the tree: a window that vanished
    between its parent's listing and its own query is skipped, never a BadWindow error (CI saw one).
    x11 only: the tree walk (no window manager) is the x11 backend's; the portable one reads the WM's list."""
    import threading

    from Xlib import X
    from Xlib import display as xdisplay

    stop = threading.Event()
    churned = [0]

    def churn():
        d = xdisplay.Display(xvfb)
        root = d.screen().root
        while not stop.is_set():
            parent = root.create_window(0, 0, 50, 50, 0, X.CopyFromParent)
            for _ in range(20):  # children to walk into, gone a moment later
                parent.create_window(0, 0, 5, 5, 0, X.CopyFromParent)
            d.sync()
            parent.destroy()
            d.sync()
            churned[0] += 1
        d.close()

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        for _ in range(300):
            assert isinstance(list_windows(viewable_only=False), list)
    finally:
        stop.set()
        t.join(10)
    assert churned[0] > 10  # the race really ran
