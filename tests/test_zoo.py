"""The zoo protocol with tiny budgets, as a user runs it, on two games: Catch (keyboard) and Clicker (mouse).

Each run is benchmarks/zoo/run.py: the scripted teacher plays the real page in Chromium on its own Xvfb with
real XTest input while `hakisa record` records it; `hakisa study` learns from the recording (only a shorter
schedule is given and its own games are left out: the protocol's defaults otherwise) and, with no --game,
finds the game file the recording was made with; `hakisa play` plays the clone. The untrained agent's row is
the last full protocol run's 20 games (UNTRAINED). No DISPLAY is passed on: every process opens its own Xvfb.

The bars are loose (a minute and a half of teacher, about five games; trimmed to 72 s it failed once beside
two spinning processes: 4 recorded games leave 3 to learn from) but fail for a clone that learned nothing:
its held-out accuracy stays at chance. Three games of play are too few to rank agents that are close, so
Catch's play is held to a small share of the teacher's lead. Clicker's command head needs more than 1.5
minutes of clicks to leave chance (its 6-minute protocol run reaches 80 % of the teacher;
benchmarks/zoo/README.md): here its pointer heads are the check, and its play only has to be not clearly worse
than random clicks.

Each test must stay under 300 s beside two spinning processes (issue 38's bar). Measured there on 2026-12-07
with the two tests side by side, as CI's two workers run them: 324 s and 301 s with one game of study's own and
2,000 steps, study running ~9 steps/s with its two copies sharing the cores with the spinners. So study plays no
game of its own (study's games on a window are tests/test_pop_live.py's; here the check is that study found the
recording's game file), the clone plays three, and study's steps are each game's own: Catch's held-out command
head passed 0.7 by step 400 of 1,200, Clicker's x head needs more (0.27 at step 700 in one run, 0.48 at 600 in
another). Then, in three suite runs in a row beside two spinners (benchmarks/suite_busy_2026-12-07.json): catch
260, 253, 237 s; clicker 273, 278, 267 s. Both are marked long (collected first).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The untrained agent's 20 games from the last full protocol run: its score is the game's, not this recording's,
# and 20 games measured once pin it down better than a few played again (which cost ~85 s of each test).
UNTRAINED = ROOT / "benchmarks" / "zoo_2026-12-07.json"


def run_protocol(game: str, work: Path, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    cmd = [sys.executable, str(ROOT / "benchmarks/zoo/run.py"), game, "--minutes", "1.5", "--episodes", "3",
           "--work", str(work), f"--study-flag=--steps={steps}", "--study-flag=--eval-episodes=0",
           "--untrained", str(UNTRAINED)]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1000)
    assert p.returncode == 0, f"{game}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    (e,) = json.loads(p.stdout.strip().splitlines()[-1])["games"]
    print(json.dumps(e))
    assert e["game"] == game and e["teacher_games"] >= 3 and e["frames"] >= 900, e
    # the recording knew its game file: study found it without being told which game
    config = json.loads((work / game / "bc" / "config.json").read_text())
    assert Path(config["game_file"]) == ROOT / "benchmarks" / "zoo" / f"{game}.json", config["game_file"]
    assert (work / game / "bc" / "report.png").exists()
    assert e["teacher_mean"] > e["untrained_ci"][1], e
    return e


@pytest.mark.x11
@pytest.mark.long
@pytest.mark.timeout(1100)
def test_zoo_protocol_catch_clone_learned(tmp_path):
    e = run_protocol("catch", tmp_path / "zoo", steps=700)
    assert e["study"]["best"]["balanced_acc_cmd"] >= 0.5, e["study"]  # chance: 1/3 over noop, left, right
    assert e["clone_mean"] >= e["untrained_mean"] + 0.1 * (e["teacher_mean"] - e["untrained_mean"]), e


@pytest.mark.x11
@pytest.mark.long
@pytest.mark.timeout(1100)
def test_zoo_protocol_clicker_clone_learned(tmp_path):
    e = run_protocol("clicker", tmp_path / "zoo", steps=1200)
    # where it clicks: chance is 1 over the ~15 x bins the teacher used. This is the learning check.
    assert e["study"]["best"]["balanced_acc_x"] >= 0.3, e["study"]
    # With its command head still at chance, a few games cannot rank the clone against random clicks (CI,
    # 2026-12-07: clone 2.5 [0.8, 4.2] against 4 untrained games' 3.0 [1.6, 4.4]; a rerun: 4.5 against 2.5),
    # so play is only held to not being clearly worse: its interval reaches the untrained agent's.
    assert e["clone_ci"][1] >= e["untrained_ci"][0], e
