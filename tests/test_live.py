"""The fixed-rate live loop (`ScreenEnv.step`): pacing without drift or bursts, the kill switch, a real capture."""
from __future__ import annotations

import time

import numpy as np
import pytest

from hakisa.input_map import InputMap
from hakisa.live import TickClock
from hakisa.preprocess import ObsSpec
from hakisa.sink import DryRunSink, KillSwitch


def test_clock_reports_lateness_and_does_not_burst():
    t = TickClock(hz=100)  # 10 ms period
    t.tick(time.perf_counter())
    time.sleep(0.05)  # a 50 ms stall: five ticks missed
    late, missed = t.tick(time.perf_counter())
    assert late >= 0.04 and missed >= 5  # reported...
    start = time.perf_counter()
    late, missed = t.tick(time.perf_counter())  # ...and dropped: the next tick is a full period later, no catch-up
    assert time.perf_counter() - start >= 0.008 and late == 0 and missed == 0


@pytest.mark.x11
def test_the_live_loop_on_a_real_window(backend, xvfb, xwin):
    """`ScreenEnv.step`, the one live loop (play, train, bench io), on a window no game file describes."""
    from hakisa.capture import Capture
    from hakisa.envs.screen import ScreenEnv
    from hakisa.rewards.game import GameJudge

    xwin(title="loop target")
    imap = InputMap.load("duel")
    with Capture(title="loop target", spec=ObsSpec(stack=4), backend=backend) as cap:
        sink = DryRunSink(imap, cap)

        def env_at(hz):
            return ScreenEnv(imap, GameJudge.blank(), capture=cap, sink=sink, hz=hz, gate_input=False, watch=None,
                             own_capture=False)

        env = env_at(200)
        env.reset()
        seen = []
        for i in range(30):
            obs, r, te, tr, info = env.step([(i + 1) % 8, 0, 0])
            seen.append(obs)
        assert seen[0].shape == (4, 90, 160) and seen[0].dtype == np.uint8
        assert seen[0].max() > seen[0].min()  # the window's rectangles, not a blank frame
        tm = info["timing"]
        assert tm["step_ms"] >= tm["capture_ms"] > 0 and info["step"] == 30 and not (te or tr)
        assert [e for _, e in sink.log][:1] == [("press", "left")]  # the first action reached the sink

        sink.killed = True  # what the kill switch sets
        with pytest.raises(KillSwitch):
            env_at(0).step([1, 0, 0])

        # a kill that lands while the loop sleeps to its next tick ends the step then, not a tick later
        import threading

        sink.killed = False
        env = env_at(0.5)  # a 2 s period
        env.reset()
        env.step([0, 0, 0])  # the clock's first tick is now + 2 s
        threading.Timer(0.3, sink.kill).start()
        t0 = time.perf_counter()
        with pytest.raises(KillSwitch):
            env.step([0, 0, 0])
        assert time.perf_counter() - t0 < 1.5  # woke at the kill (~0.3 s), long before the 2 s tick


@pytest.mark.x11
def test_bench_io_prints_its_json(monkeypatch, backend):
    """`hakisa bench io --backend B` end to end (own Xvfb, own window, real keys): the JSON contract and which
    backend ran, not the speed."""
    import json
    import subprocess
    import sys

    monkeypatch.delenv("DISPLAY", raising=False)  # it must start its own server
    monkeypatch.delenv("HAKISA_BACKEND", raising=False)  # only the flag chooses
    out = subprocess.run([sys.executable, "-m", "hakisa.cli", "bench", "io", "--steps", "60", "--hz", "0",
                          "--json-only", "--backend", backend], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["backend"] == backend
    for k in ("capture_ms_p50", "capture_ms_p99", "preprocess_ms_p50", "send_ms_p50", "loop_ms_p50", "loop_ms_p99"):
        assert r[k] > 0, k
    assert r["steps"] == 60 and r["window"] == [640, 360] and r["focused_at_end"]
    # random duel commands were really typed into the bench's window, and all released again
    assert r["window_key_press"] > 10 and r["window_key_press"] == r["window_key_release"]
