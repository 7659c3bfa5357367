"""The zoo protocol on two of its games (one keyboard, one mouse), with tiny budgets, as a user runs it.

Each run is benchmarks/zoo/run.py: the scripted teacher plays the real page in Chromium on its own Xvfb with
real XTest input while `hakisa record` records it; `hakisa play` plays an untrained agent; `hakisa study`
learns from the recording (only a shorter schedule is given: the protocol's defaults otherwise) and, with no
--game, evaluates on the game file the recording was made with; `hakisa play` plays the clone. The bar is
loose (a minute of teacher, a few games) but fails for a clone that learned nothing: such a clone plays
like the untrained agent, and the bar asks for clearly more. No DISPLAY is passed on: every process opens
its own Xvfb.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.x11
@pytest.mark.timeout(900)
@pytest.mark.parametrize("game", ["catch", "clicker"])
def test_zoo_protocol_clone_beats_untrained(tmp_path, game):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    cmd = [sys.executable, str(ROOT / "benchmarks/zoo/run.py"), game, "--minutes", "1", "--episodes", "3",
           "--work", str(tmp_path / "zoo"), "--study-flag=--steps=600", "--study-flag=--eval-episodes=1"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    (e,) = res["games"]
    print(json.dumps(e))
    assert e["game"] == game and e["teacher_games"] >= 2 and e["frames"] >= 600
    # the recording knew its game file: study evaluated on the window without being told which game
    assert e["study"]["eval"]["episodes"] == 1, e["study"]
    assert (tmp_path / "zoo" / game / "bc" / "report.png").exists()
    assert e["teacher_mean"] > e["untrained_ci"][1], e
    # learned something: clearly above the untrained agent, and a real share of the teacher
    assert e["clone_mean"] >= e["untrained_mean"] + 0.15 * (e["teacher_mean"] - e["untrained_mean"]), e
    assert e["clone_mean"] >= 0.25 * e["teacher_mean"], e
