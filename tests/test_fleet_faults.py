"""Live windows that fail mid-run (issue 38, part 5): a real Xvfb, real Chromium, real XTest keys.

- a page's renderer is killed while `hakisa train` learns on two windows: that window's keys are released,
  its game ends as truncated, the page is opened again, and training goes on to its step budget;
- a window's X server dies: the window is opened again on a new display; when it cannot be, it is retired
  and the other window goes on; when every window is gone, the step says so instead of idling forever.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from hakisa.game import Game

pytestmark = [pytest.mark.x11, pytest.mark.browser]
LIGHTS = Path(__file__).parent / "games" / "lights.json"


def renderers(live) -> list[psutil.Process]:
    kids = psutil.Process(live.app._proc.pid).children(recursive=True)
    return [k for k in kids if "--type=renderer" in " ".join(k.cmdline())]


def step_until(envs, cond, what: str, timeout: float = 60.0):
    """Step the fleet with no-ops until cond(step's results) holds; the results of that step."""
    deadline = time.monotonic() + timeout
    while True:
        out = envs.step(np.zeros((envs.num_envs, 3), np.int64))
        if cond(*out):
            return out
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:g} s (faults: {envs.faults})"


def test_training_goes_on_after_a_page_crashes(xvfb, tmp_path):
    from hakisa.algos import ppo
    from hakisa.envs.fleet import Fleet
    from hakisa.phases.live_train import LiveArgs, train_live

    game = Game.load(LIGHTS)
    args = ppo.Args(num_steps=16, num_minibatches=1, update_epochs=1, total_steps=400, progress=False)
    with Fleet(game, 2, kill_key=None, check_s=0.5) as envs:
        old_live, old_sink = envs.lives[0], envs.envs[0].sink
        released = []
        release = old_sink.release_all
        old_sink.release_all = lambda: released.append(time.monotonic()) or release()
        victims = renderers(old_live)
        assert victims, "no renderer process found under the page's Chromium"
        # 400 steps on two windows at 20 Hz take at least 10 s: the renderer dies 4 s in, mid-run
        killer = threading.Timer(4.0, lambda: [v.kill() for v in victims])
        killer.start()
        try:
            m = train_live(game, "ppo", args, LiveArgs(windows=2, minutes=5), tmp_path / "run", envs=envs)
        finally:
            killer.cancel()
        assert killer.finished.is_set()
        faults = m["faults"]
        assert [(f["window"], f["outcome"]) for f in faults] == [(0, "relaunched")], faults
        assert "page" in faults[0]["reason"] or "chromium" in faults[0]["reason"], faults
        assert released and old_sink._closed  # its keys were released, then its sink closed
        assert envs.lives[0] is not old_live and envs.lives[0].fault() is None
        # training went on to its budget, and the reopened window played games of its own after the fault
        assert m["steps"] >= 400 and m["weight_versions"] >= 2, m
        st = envs.lives[0].app.evaluate("hakisa.state()")
        assert st is not None
    runs = (tmp_path / "run" / "curve.json").read_text()
    assert '"truncated": true' in runs  # the crashed game was booked as cut short, not as a loss


def test_a_dead_x_server_is_reopened_or_retired_and_the_others_go_on(xvfb):
    from hakisa.envs.fleet import Fleet

    game = Game.load(LIGHTS)
    with Fleet(game, 2, kill_key=None, check_s=0.2, relaunch_tries=2) as envs:
        envs.reset()
        old = envs.lives[1]
        old._xvfb.proc.kill()  # window 1's X server dies (its Chromium goes with it)
        obs, r, term, trunc, info = step_until(envs, lambda o, r, te, tr, i: tr[1], "window 1's fault")
        assert "fault" in info and info["_fault"][1] and "X server" in info["fault"][1], info.get("fault")
        assert envs.faults[-1]["outcome"] == "relaunched"
        # a new X server (it may reuse the freed display number) and a new page on it
        assert envs.lives[1] is not old and envs.lives[1]._xvfb.proc.poll() is None and envs.lives[1].fault() is None
        assert envs.active.all()
        # now it cannot be opened again: it is retired after its tries, and window 0 plays on
        envs._open = lambda i=None: (_ for _ in ()).throw(RuntimeError("no display can be started"))
        envs.lives[1]._xvfb.proc.kill()
        step_until(envs, lambda o, r, te, tr, i: not envs.active[1], "window 1's retirement")
        assert envs.faults[-1]["outcome"] == "retired" and len(envs.faults) == 2, envs.faults
        assert envs.active[0]
        hits0 = envs.lives[0].app.evaluate("hakisa.state()")
        for _ in range(10):
            envs.step(np.zeros((2, 3), np.int64))
        assert envs.active[0] and envs.lives[0].app.evaluate("hakisa.state()") is not None, hits0
        # and when the last window goes too, the step raises instead of idling
        envs.lives[0]._xvfb.proc.kill()
        with pytest.raises(RuntimeError, match="every window"):
            step_until(envs, lambda *_: False, "the end of every window", timeout=30)
