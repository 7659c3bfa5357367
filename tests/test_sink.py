"""The input sink's guarantees, proved with real Xvfb, real X client windows and real XTest events.

The display-free part (DryRunSink, the pure `plan`) comes first; every x11 test starts its own Xvfb and
runs once per backend (the `backend` fixture: x11, and portable, i.e. pynput + pywinctl under openbox).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import read_line, set_focus

from hakisa.input_map import Command, Decoded, InputMap
from hakisa.sink import DryRunSink, KillSwitch, plan

HERE = Path(__file__).parent
DUEL = InputMap.load("duel")
LEFT_ROLL = [6, 0, 0]  # duel map: left+roll holds Left and Space


def mouse_map(rel_max: float = 100.0) -> InputMap:
    return InputMap("mouse", [Command("noop", "noop"), Command("move", "move"), Command("click", "click_left"),
                              Command("rclick", "click_right"), Command("look", "rel_move"),
                              Command("fire", "tap", ("f",))], x_bins=8, y_bins=8, rel_max=rel_max)


# ---- no display --------------------------------------------------------------------------------
def test_dry_run_click_at_keeps_held_keys_and_clamps():
    sink = DryRunSink(DUEL, (10, 20, 100, 50))
    sink.send([1, 0, 0])
    assert sink.click_at(0.5, 7.0) == [("move", 60, 69), ("click", "left")]
    assert sink.held == {"left"}


def test_dry_run_diffs_held_keys():
    sink = DryRunSink(DUEL)
    assert sink.send([1, 0, 0]) == [("press", "left")]
    assert sink.send([1, 0, 0]) == []  # still held: nothing to send
    assert sink.send(LEFT_ROLL) == [("press", "space")]
    assert sink.send([2, 0, 0]) == [("release", "left"), ("release", "space"), ("press", "right")]
    assert sink.held == {"right"}
    sink.close()
    assert sink.log[-1] == (4, ("release", "right")) and sink.held == frozenset()


def test_plan_clamps_every_mouse_target_inside_the_region():
    region = (100, 50, 640, 360)
    rng = np.random.default_rng(0)
    for _ in range(500):
        d = Decoded(mouse=tuple(rng.normal(0.5, 5, 2))) if rng.random() < 0.5 else \
            Decoded(rel=tuple(rng.normal(0, 1e6, 2)))
        pointer = tuple(int(v) for v in rng.integers(-5000, 5000, 2))
        (_, x, y), = plan(d, frozenset(), region, pointer)
        assert 100 <= x < 740 and 50 <= y < 410
    (_, x, y), = plan(Decoded(rel=(float("nan"), 1e300)), frozenset(), region, (0, 0))
    assert (x, y) == (100, 409)


# ---- real X11 ----------------------------------------------------------------------------------
def keys_down() -> set[int]:
    """Keycodes the X server reports down right now."""
    from Xlib import display

    dpy = display.Display()
    try:
        km = dpy.query_keymap()
    finally:
        dpy.close()
    return {i * 8 + b for i, byte in enumerate(km) for b in range(8) if byte >> b & 1}


def pointer() -> tuple[int, int]:
    from Xlib import display

    dpy = display.Display()
    try:
        p = dpy.screen().root.query_pointer()
        return p.root_x, p.root_y
    finally:
        dpy.close()


def wait_until(pred, timeout=10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


LEFT, SPACE = 113, 65  # Xvfb's default keymap (evdev): the test also checks the window names them


@pytest.mark.x11
def test_keys_arrive_in_the_window(backend, xvfb, xwin):
    from Xlib import X, display

    from hakisa.capture import Capture
    from hakisa.sink import make_sink

    w = xwin(title="game")
    set_focus(w.wid)
    dpy = display.Display()  # no auto-repeat: a scheduler stall must not add presses to the exact log
    dpy.change_keyboard_control(auto_repeat_mode=X.AutoRepeatModeOff)
    dpy.sync()
    dpy.close()
    with Capture(title="game") as cap, make_sink(DUEL, cap, kill_key=None) as sink:
        assert cap.backend == sink.backend == backend  # HAKISA_BACKEND, set by the fixture, chose it
        for a in ([1, 0, 0], [1, 0, 0], LEFT_ROLL, [4, 0, 0], [0, 0, 0]):
            sink.send(a)
        assert w.wait_for("KeyRelease", str(44), "j")
    ev = [e for e in w.events() if e[0].startswith("Key")]
    assert [(e[0], e[2]) for e in ev] == [
        ("KeyPress", "Left"),  # held for two steps: pressed once
        ("KeyPress", "space"),  # left+roll: only the new key is pressed
        ("KeyRelease", "Left"), ("KeyRelease", "space"), ("KeyPress", "j"),
        ("KeyRelease", "j")]  # noop releases it
    assert int(ev[0][1]) == LEFT and int(ev[1][1]) == SPACE


@pytest.mark.x11
def test_mouse_never_leaves_the_region(backend, xvfb, xwin):
    from hakisa.sink import make_sink

    w = xwin(title="mouse game", x=200, y=150, width=320, height=180)
    set_focus(w.wid)
    left, top, width, height = w.region
    imap = mouse_map(rel_max=1e6)
    rng = np.random.default_rng(1)
    with make_sink(imap, w.region, require_focus=w.wid, kill_key=None) as sink:
        sink.send([1, 0, 7])  # in range: bin centres
        sink.sync()
        assert pointer() == (left + int(0.5 / 8 * width), top + int(7.5 / 8 * height))
        for _ in range(60):  # out-of-range bins (negative, huge) and enormous relative moves
            cmd = int(rng.choice([1, 2, 3, 4]))
            x, y = (int(v) for v in rng.integers(-1000, 1000, 2))
            sink.send([cmd, x, y])
            sink.sync()
            px, py = pointer()
            assert left <= px < left + width and top <= py < top + height, (cmd, x, y, px, py)
        sink.send([0, 0, 0])
        sink.click_at(5.0, -2.0)  # the out-of-vocabulary click is clamped too
        sink.sync()
        assert pointer() == (left + width - 1, top)
    assert w.wait_for("ButtonPress")
    for e in w.events():  # what the window saw: every click and motion inside it
        if e[0] in ("ButtonPress", "Motion"):
            ex, ey = int(e[-2]), int(e[-1])
            assert 0 <= ex < width and 0 <= ey < height, e


@pytest.mark.x11
def test_nothing_is_sent_while_another_window_has_focus(backend, xvfb, xwin):
    from hakisa.capture import Capture
    from hakisa.sink import make_sink

    target = xwin(title="target game", x=0, y=0, width=320, height=180)
    other = xwin(title="terminal", x=400, y=300, width=320, height=180)
    set_focus(other.wid)
    before = pointer()
    imap = InputMap("mixed", DUEL.commands + [Command("move", "move")], x_bins=4, y_bins=4)
    with Capture(title="target game") as cap, make_sink(imap, cap, kill_key=None) as sink:
        for a in ([1, 0, 0], LEFT_ROLL, [4, 0, 0], [8, 3, 3]):
            assert sink.send(a) == [] and sink.paused
        assert pointer() == before and keys_down() == set()
        set_focus(target.wid)
        sink.send(LEFT_ROLL)
        sink.sync()
        assert not sink.paused and {LEFT, SPACE} <= keys_down()
        set_focus(other.wid)  # focus lost while holding: release once, then nothing
        assert sink.send([4, 0, 0]) == [] and sink.paused
        sink.sync()
        assert keys_down() == set()
        sink.send([8, 3, 3])
        sink.sync()
        assert pointer() == before
    assert target.wait_for("KeyPress", str(LEFT))
    assert other.keys("KeyPress") == []  # the other window never got a key press


def _child(title: str, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "live_child.py"), "--title", title, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    read_line(proc, f"live_child.py on {title!r}", expect="SENT")
    assert wait_until(lambda: {LEFT, SPACE} <= keys_down())  # the loop is holding Left+Space
    return proc


@pytest.mark.x11
def test_held_keys_are_released_after_kill_9(backend, xvfb, xwin):
    w = xwin(title="crash game")
    set_focus(w.wid)
    # control: without the guardian a SIGKILLed loop leaves its keys stuck down in the X server
    proc = _child("crash game", "--no-guardian")
    proc.kill()
    proc.wait()
    assert not wait_until(lambda: keys_down() == set(), timeout=1.0), "XTest released them by itself?"
    from Xlib import X, display
    from Xlib.ext import xtest

    dpy = display.Display()  # unstick them by hand for the real test
    for code in keys_down():
        xtest.fake_input(dpy, X.KeyRelease, code)
    dpy.sync()
    dpy.close()
    assert keys_down() == set()
    # with the guardian (the default), kill -9 of the loop still ends with nothing held
    proc = _child("crash game")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: keys_down() == set()), f"still down after kill -9: {keys_down()}"
    assert w.wait_for("KeyRelease", str(SPACE))


@pytest.mark.x11
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_release_held_keys(backend, xvfb, xwin, sig):
    w = xwin(title="signal game")
    set_focus(w.wid)
    proc = _child("signal game", "--no-guardian")  # the in-process handlers alone must do it
    proc.send_signal(sig)
    proc.wait(10)
    assert keys_down() == set()


@pytest.mark.x11
@pytest.mark.parametrize("how", ["exception", "atexit"])
def test_exceptions_and_exit_release_held_keys(backend, xvfb, xwin, how):
    w = xwin(title="exit game")
    set_focus(w.wid)
    extra = ["--raise-at", "5"] if how == "exception" else ["--no-close", "--steps", "5"]
    # no guardian: these paths are the in-process handlers' job; the key really was down at some point
    proc = subprocess.Popen([sys.executable, str(HERE / "live_child.py"), "--title", "exit game", "--no-guardian",
                             "--hz", "100", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    out, err = proc.communicate(timeout=30)
    if how == "exception":
        assert proc.returncode != 0 and "a bug in the policy" in err
    else:
        assert proc.returncode == 0 and "EXITING" in out
    assert w.wait_for("KeyPress", str(LEFT)) and w.wait_for("KeyRelease", str(LEFT))
    assert keys_down() == set()


@pytest.mark.x11
def test_kill_switch_stops_the_loop_and_releases(backend, xvfb, xwin):
    w = xwin(title="kill game")
    set_focus(w.wid)
    proc = _child("kill game")
    subprocess.run(["xdotool", "key", "F12"], check=True, env=os.environ.copy())  # a real XTest key press
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert json.loads(out.strip().splitlines()[-1])["stopped"] == "kill_switch"
    assert keys_down() == set()


@pytest.mark.x11
@pytest.mark.parametrize("guardian", [True, False], ids=["listener-in-guardian", "listener-in-process"])
def test_kill_switch_raises_in_process(backend, xvfb, xwin, guardian):
    from hakisa.sink import make_sink

    w = xwin(title="kill2")
    set_focus(w.wid)
    with make_sink(DUEL, w.region, require_focus=w.wid, kill_key="f9", guardian=guardian) as sink:
        sink.send(LEFT_ROLL)
        sink.sync()
        assert {LEFT, SPACE} <= keys_down()
        subprocess.run(["xdotool", "key", "F9"], check=True, env=os.environ.copy())
        assert wait_until(lambda: sink.killed)
        with pytest.raises(KillSwitch):
            sink.send([1, 0, 0])
    assert keys_down() == set()


@pytest.mark.x11
@pytest.mark.browser
def test_keys_reach_a_real_chromium_page(backend, xvfb, tmp_path):
    """The sink's XTest keys become DOM keydown/keyup in Chromium (the page writes them to its title)."""
    from hakisa.capture import Capture, list_windows
    from hakisa.sink import make_sink

    page = tmp_path / "keys.html"
    page.write_text("<title>hakisa keys</title><body style='margin:0;background:#ff0000'><script>"
                    "addEventListener('keydown', e => document.title = 'down ' + e.code);"
                    "addEventListener('keyup', e => document.title = 'up ' + e.code)</script>")
    chromium = subprocess.Popen(
        ["/usr/bin/chromium", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--test-type",
         f"--user-data-dir={tmp_path / 'profile'}", f"--app=file://{page}", "--window-position=0,0",
         "--window-size=640,360"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        titles = lambda: [w.title for w in list_windows()]  # noqa: E731
        assert wait_until(lambda: "hakisa keys" in titles(), timeout=30), titles()
        with Capture(title="hakisa keys") as cap:
            set_focus(cap.window_id)
            assert wait_until(lambda: (cap.grab()[cap.region[3] // 2, cap.region[2] // 2, :3] == (0, 0, 255)).all())
            with make_sink(DUEL, cap) as sink:
                sink.send([4, 0, 0])  # attack: J down
                assert wait_until(lambda: "down KeyJ" in titles()), titles()
                sink.send([0, 0, 0])
                assert wait_until(lambda: "up KeyJ" in titles()), titles()
                sink.send(LEFT_ROLL)  # Left then Space go down; closing the sink releases them
                assert wait_until(lambda: "down Space" in titles()), titles()
            assert wait_until(lambda: any(t in ("up ArrowLeft", "up Space") for t in titles())), titles()
    finally:
        chromium.terminate()
        chromium.wait(10)


@pytest.mark.x11
@pytest.mark.skipif(not shutil.which("openbox"), reason="openbox (a reparenting window manager) is not installed")
def test_under_a_real_window_manager(backend, xvfb, xwin):
    """A desktop has a WM: windows are reparented into frames, found via _NET_CLIENT_LIST, moved and
    focused by the WM. Capture must still see exactly the client area and follow moves, and the sink
    must still send only to the focused game."""
    import time

    from xwin import RECTS

    from hakisa.capture import Capture, list_windows
    from hakisa.sink import make_sink

    wm = None  # the portable run's Xvfb has one already (hakisa's minimal openbox); x11 gets a stock openbox
    if not _wm_running():
        wm = subprocess.Popen(["openbox"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=os.environ.copy())
    try:
        assert wait_until(lambda: _wm_running())  # the WM is up and managing
        game = xwin(title="wm game", x=50, y=100, width=400, height=240)
        other = xwin(title="wm other", x=700, y=100, width=400, height=240)
        assert wait_until(lambda: {"wm game", "wm other"} <= {w.title for w in list_windows()})
        xdo = lambda *a: subprocess.run(["xdotool", *a], check=True, env=os.environ.copy())  # noqa: E731
        with Capture(title="wm game") as cap, make_sink(DUEL, cap, kill_key=None) as sink:
            x, y, w, h, rgb = RECTS[0]
            assert (cap.grab()[y:y + h, x:x + w, :3] == rgb[::-1]).all()  # the client area, not the frame
            xdo("windowactivate", "--sync", str(game.wid))
            # portable reads focus from the WM's _NET_ACTIVE_WINDOW, which follows the server's focus a moment
            # later (docs/backends.md): wait for the sink to see it. Until then it must send nothing.
            sent = []
            assert wait_until(lambda: sent.append(sink.send([4, 0, 0])) or sent[-1] == [("press", "j")])
            assert all(e == [] for e in sent[:-1])
            xdo("windowmove", str(game.wid), "300", "300")  # the WM moves its frame
            assert wait_until(lambda: cap.grab() is not None and cap.region[:2] != (50, 100), timeout=5)
            assert (cap.grab()[y:y + h, x:x + w, :3] == rgb[::-1]).all()
            xdo("windowactivate", "--sync", str(other.wid))
            time.sleep(0.1)
            assert sink.send([5, 0, 0]) == [] and sink.paused
            xdo("windowactivate", "--sync", str(game.wid))
            assert wait_until(lambda: sink.send([5, 0, 0]) is not None and not sink.paused)  # block: K down
        assert game.wait_for("KeyPress", "45", "k")
        assert other.keys("KeyPress") == []
    finally:
        if wm is not None:
            wm.terminate()
            wm.wait(10)


def _wm_running() -> bool:
    from Xlib import X, display

    dpy = display.Display()
    try:
        return dpy.screen().root.get_full_property(dpy.intern_atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType) \
            is not None
    finally:
        dpy.close()
