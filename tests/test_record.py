"""`hakisa record` on a real X window with real X key events (xdotool), and the kill -9 crash test."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hakisa.data import EpisodeStore, Transitions
from hakisa.input_map import InputMap, InputState
from hakisa.preprocess import ObsSpec, preprocess

FPS = 30


def _recorder(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "hakisa.cli", "record", "--window", "rec target", "--map", "duel",
                             "--fps", str(FPS), "--out", str(out), "--quiet", *extra],
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_recording(out, timeout=20.0):
    """Until the recorder has made its first chunk durable (listeners are up before capture starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = out / "manifest.jsonl"
        if m.exists() and b'"chunk"' in m.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError("recorder never wrote a chunk")


def _xdo(*args):
    subprocess.run(["xdotool", *args], check=True, env=os.environ.copy())


def _hold(key, seconds):
    _xdo("keydown", key)
    time.sleep(seconds)
    _xdo("keyup", key)


def _runs(cmds):
    """[(command, run length)] of consecutive equal commands."""
    out = []
    for c in cmds:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return [tuple(r) for r in out]


@pytest.mark.x11
def test_record_real_window_and_keys(xvfb, xwin, tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from xwin import BG, RECTS

    xwin(title="rec target", x=100, y=80, width=640, height=360)
    out = tmp_path / "ds"
    rec = _recorder(out)
    _wait_recording(out)
    time.sleep(0.3)
    _hold("j", 0.5)  # attack
    time.sleep(0.3)
    _hold("Left", 0.5)  # left
    time.sleep(0.3)
    _xdo("keydown", "Right")  # a chord: right+space = "right+roll"
    _xdo("keydown", "space")
    time.sleep(0.5)
    _xdo("keyup", "space")
    _xdo("keyup", "Right")
    time.sleep(0.3)
    _xdo("key", "F8")  # split hotkey: a second episode starts
    time.sleep(0.5)
    _hold("k", 0.4)  # block
    time.sleep(0.3)
    _xdo("key", "F10")  # stop hotkey
    stdout, stderr = rec.communicate(timeout=20)
    assert rec.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])

    s = EpisodeStore(out)
    assert len(s.episodes) == 2 and all(e.complete for e in s.episodes)
    assert [e.end["reason"] for e in s.episodes] == ["hotkey", "stop"]
    names = [c.name for c in InputMap.load("duel").commands]
    e0, e1 = s.episode(0), s.episode(1)
    runs0 = [(names[c], n) for c, n in _runs(e0["actions"][:, 0].tolist())]
    # each key was held 0.5 s = ~15 frames at 30 fps; the recorder saw exactly these, in order (a chord's
    # keys go down one xdotool call apart, so a 1-2 frame "right" may lead or trail "right+roll")
    held = [(c, n) for c, n in runs0 if c != "noop" and n > 2]
    assert sum(n for c, n in runs0 if c not in ("noop", "attack", "left", "right+roll")) <= 3, runs0
    assert [c for c, _ in held] == ["attack", "left", "right+roll"], runs0
    assert all(10 <= n <= 22 for _, n in held), runs0  # xdotool start-up under load blurs the edges
    runs1 = [(names[c], n) for c, n in _runs(e1["actions"][:, 0].tolist()) if names[c] != "noop"]
    assert [c for c, _ in runs1] == ["block"] and 8 <= runs1[0][1] <= 19, runs1
    # the raw event log has the real X events, hotkeys excluded
    ev = [(str(t), str(k)) for t, k in zip(e0["events"]["type"], e0["events"]["key"])]
    assert ev[:2] == [("down", "j"), ("up", "j")] and ("down", "right") in ev and ("up", "space") in ev
    assert not any(k in ("f8", "f10") for _, k in ev)
    # capture never waits for input: a steady 30 fps through the quiet stretches, nothing dropped
    ts = np.concatenate([e0["timestamps"], e1["timestamps"]])
    gaps = np.diff(ts)
    assert abs(np.median(gaps) - 1 / FPS) < 0.004 and gaps.max() < 0.25
    assert summary["dropped"] <= 10 and summary["frames"] == s.num_frames
    # the frames are the window's pixels through the shared preprocess
    img = np.zeros((360, 640, 4), np.uint8)
    img[:] = (*BG[::-1], 255)
    for x, y, rw, rh, rgb in RECTS:
        img[y:y + rh, x:x + rw] = (*rgb[::-1], 255)
    want = preprocess(img, ObsSpec())
    assert np.abs(e0["frames"][-1].astype(int) - want).max() <= 1


@pytest.mark.x11
def test_kill9_loses_at_most_one_second(xvfb, xwin, tmp_path):
    xwin(title="rec target", x=100, y=80, width=640, height=360)
    out = tmp_path / "ds"
    rec = _recorder(out)
    _wait_recording(out)
    _xdo("keydown", "j")  # mid-action, mid-episode
    time.sleep(2.3)
    killed_at = time.time()
    rec.send_signal(signal.SIGKILL)
    rec.wait(10)
    _xdo("keyup", "j")
    check = subprocess.run(
        [sys.executable, "-m", "hakisa.cli", "data", "check", str(out)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "episode 0 is CUT" in check.stdout
    s = EpisodeStore(out)
    rep = s.check()
    listed = sum(len(e.chunks) for e in s.episodes)
    assert rep.ok and rep.cut == [0] and rep.chunks_ok == listed >= 2  # every complete chunk reads back
    e = s.episode(0)
    lost = killed_at - e["timestamps"][-1]
    assert 0 <= lost <= 1.0, f"lost {lost:.3f} s of frames"
    assert (e["actions"][-10:, 0] == 4).all()  # "attack" was held when it died
    # learners never use the cut step: no next frame, no done
    tr = Transitions(s, stack=4, cache_dir=tmp_path / "cache")
    assert len(tr) == len(e["actions"]) - 1


# ---- pure pieces (no X) ---------------------------------------------------------------------------
def test_input_state_taps_chords_and_hotkeys():
    imap = InputMap.load("duel")
    fired = []
    st = InputState(hotkeys={"f9": lambda: fired.append("pause")})
    region = (0, 0, 640, 360)
    assert imap.commands[st.snapshot(imap, region)[0][0]].name == "noop"  # nothing pressed: explicit noop
    st.key(True, "j")
    st.key(False, "j")  # a tap shorter than a frame still counts for that frame
    a, ev = st.snapshot(imap, region)
    assert imap.commands[a[0]].name == "attack" and [e[1:3] for e in ev] == [("down", "j"), ("up", "j")]
    assert imap.commands[st.snapshot(imap, region)[0][0]].name == "noop"
    st.key(True, "left")
    st.key(True, "space")
    assert imap.commands[st.snapshot(imap, region)[0][0]].name == "left+roll"
    assert imap.commands[st.snapshot(imap, region)[0][0]].name == "left+roll"  # still held
    st.key(True, "f9")
    assert fired == ["pause"] and not any(e[2] == "f9" for e in st.events)


@pytest.mark.x11
@pytest.mark.browser
def test_record_launches_its_game_on_a_private_display_without_one(tmp_path):
    """No DISPLAY at all: `record --launch` opens the game on its own Xvfb, its listeners listen there (they
    were on $DISPLAY, which only a process-wide change made right), and it ends cleanly: no thread left to die
    with a traceback when that display goes."""
    from pathlib import Path

    game = Path(__file__).parent / "games" / "lights.json"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    p = subprocess.run([sys.executable, "-m", "hakisa.cli", "record", "--game", str(game), "--launch", "--out",
                        str(tmp_path / "rec"), "--seconds", "2", "--quiet"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] >= 10, p.stdout


@pytest.mark.x11
def test_listeners_on_a_quiet_display_stop_at_once(xvfb):
    """pynput 1.8 alone leaves a listener's thread waiting for the next input event; stop_listeners ends it."""
    from hakisa.backends import stop_listeners
    from hakisa.recorder import start_listeners

    listeners = start_listeners(InputState(), xvfb)
    stop_listeners(*listeners, timeout=10.0)
    assert not any(listener.is_alive() for listener in listeners)
