"""Live windows that fail mid-run (issue 38, part 5): a real Xvfb, real Chromium, real XTest keys. (A page that
crashes while `hakisa train` learns, then a kill -9 and --resume: tests/test_resume.py.)

- a window's X server dies: the window is opened again on a new display; when it cannot be, it is retired
  and the other window goes on; when every window is gone, the step says so instead of idling forever.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from hakisa.game import Game

pytestmark = [pytest.mark.x11, pytest.mark.browser]
LIGHTS = Path(__file__).parent / "games" / "lights.json"


def step_until(envs, cond, what: str, timeout: float = 60.0):
    """Step the fleet with no-ops until cond(step's results) holds; the results of that step."""
    deadline = time.monotonic() + timeout
    while True:
        out = envs.step(np.zeros((envs.num_envs, 3), np.int64))
        if cond(*out):
            return out
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:g} s (faults: {envs.faults})"


def test_a_dead_x_server_is_reopened_or_retired_and_the_others_go_on(xvfb):
    from hakisa.envs.fleet import Fleet

    game = Game.load(LIGHTS)
    with Fleet(game, 2, kill_key=None, check_s=0.2, relaunch_tries=2) as envs:
        envs.reset()
        # each window on its own X server, passed to what needs it: the process's DISPLAY stays the test's
        assert os.environ["DISPLAY"] == xvfb and {lg.display for lg in envs.lives}.isdisjoint({xvfb})
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


def test_a_window_that_fails_after_its_last_game_is_not_opened_again(xvfb):
    """Winding down (every window retired: its game plays out, no other starts), a window that dies is let go:
    no relaunch for a game it would not play, and the fleet's key release at the end still works."""
    from hakisa.envs.fleet import Fleet

    game = Game.load(LIGHTS)
    with Fleet(game, 2, kill_key=None, check_s=0.2) as envs:
        envs.reset()
        envs.retire(1)
        old = envs.lives[1]
        old._xvfb.proc.kill()
        step_until(envs, lambda o, r, te, tr, i: not envs.active[1], "window 1's end")
        assert envs.faults[-1]["outcome"].startswith("retired") and envs.lives[1] is old, envs.faults
        assert envs.active[0] and len(envs.faults) == 1
        envs.release_all()  # the dead window's keys went with its server: no error
