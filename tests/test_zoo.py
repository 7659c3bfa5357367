"""The zoo protocol on two of its games (one keyboard, one mouse), with tiny budgets, as a user runs it.

Each run is benchmarks/zoo/run.py: the scripted teacher plays the real page in Chromium on its own Xvfb with
real XTest input while `hakisa record` records it; `hakisa play` plays an untrained agent; `hakisa study`
learns from the recording (only a shorter schedule is given: the protocol's defaults otherwise) and, with no
--game, evaluates on the game file the recording was made with; `hakisa play` plays the clone. The bars are
loose (a minute and a half of teacher, a few games) but fail for a clone that learned nothing: its held-out
command accuracy stays at chance, and it plays like the untrained agent. No DISPLAY is passed on: every
process opens its own Xvfb. The two games run side by side, so the suite pays for one (the agents' steps
take a few ms of their 67 ms period, so a busy core delays them without changing what they do).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GAMES = ("catch", "clicker")


@pytest.mark.x11
@pytest.mark.timeout(1200)
def test_zoo_protocol_clones_beat_untrained(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    procs = {}
    for game in GAMES:
        cmd = [sys.executable, str(ROOT / "benchmarks/zoo/run.py"), game, "--minutes", "1.5", "--episodes", "4",
               "--work", str(tmp_path / "zoo"), "--study-flag=--steps=2000", "--study-flag=--eval-episodes=1"]
        procs[game] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
    outs = {}
    try:
        for game, p in procs.items():
            out, err = p.communicate(timeout=1100)
            assert p.returncode == 0, f"{game}: exit {p.returncode}\n{out[-3000:]}\n{err[-3000:]}"
            outs[game] = json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(30)
    for game in GAMES:
        (e,) = outs[game]["games"]
        print(json.dumps(e))
        assert e["game"] == game and e["teacher_games"] >= 3 and e["frames"] >= 900, e
        # the recording knew its game file: study evaluated on the window without being told which game
        assert e["study"]["eval"]["episodes"] == 1, e["study"]
        assert (tmp_path / "zoo" / game / "bc" / "report.png").exists()
        assert e["teacher_mean"] > e["untrained_ci"][1], e
        # learned something: held-out command accuracy well above chance (1/3 over noop and two more), and play
        # better than the untrained agent by a share of the gap to the teacher (a few games are noisy: loose)
        assert e["study"]["best"]["balanced_acc_cmd"] >= 0.45, e["study"]
        assert e["clone_mean"] >= e["untrained_mean"] + 0.2 * (e["teacher_mean"] - e["untrained_mean"]), e
