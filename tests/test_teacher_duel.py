"""The real teacher on the real page, small: Chromium under Xvfb, real X key events, `hakisa record` as a
separate process. Two fights; the full >= 20-fight run with study and the 70 % bar is
benchmarks/teacher_study_bench.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hakisa.data import EpisodeStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.browser
@pytest.mark.x11
@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists() or not shutil.which("Xvfb"), reason="needs chromium and Xvfb"
)
@pytest.mark.slow  # 75 s: CI's budget; test_record covers recording from a real page by default
def test_scripted_teacher_records_the_page(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # DuelPage starts its own Xvfb
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "teacher_duel.py"),
            "--fights",
            "2",
            "--tier",
            "easy",
            "--out",
            str(tmp_path / "ds"),
            "--max-seconds",
            "150",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    teacher = json.loads(p.stdout.strip().splitlines()[-1])
    assert teacher["fights"] == 2 and teacher["recorder_rc"] == 0

    s = EpisodeStore(tmp_path / "ds")
    rep = s.check()
    assert rep.ok, rep.errors
    fights = [e for e in s.episodes if e.terminated]
    # the recorder split the fights from pixels alone (the result band) and read each outcome right
    assert len(fights) == 2, [(e.id, e.frames, e.end) for e in s.episodes]
    page_winners = [1] * teacher["page_record"]["wins"] + [2] * teacher["page_record"]["losses"]
    assert sorted(e.end["winner"] for e in fights) == sorted(page_winners)
    names = [c.name for c in s.input_map.commands]
    for i, e in enumerate(s.episodes):
        if not e.terminated:
            continue
        ep = s.episode(i)
        # the last step carries the rules' outcome bonus (win +10, lose -10) on top of its HP deltas
        assert (ep["rewards"][-1] > 5 if e.end["winner"] == 1 else ep["rewards"][-1] < -5) and ep["dones"][-1]
        # ~15 fps of a fight of several seconds, capture never stalled
        assert len(ep["actions"]) > 30 and np.median(np.diff(ep["timestamps"])) < 1 / 15 + 0.01
        used = {names[c] for c in ep["actions"][:, 0]}
        assert {"attack"} <= used and used & {"left", "right"}, used  # what the teacher's X keys did
        assert {("down", "j"), ("up", "j")} <= {
            (str(t), str(k)) for t, k in zip(ep["events"]["type"], ep["events"]["key"])
        }
