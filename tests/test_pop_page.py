"""Hakisa Pop (hakisa/games/pop): the page's pure rules and pixel layout, checked under Node.

tests/pop_core.js requires pop.js (the same file the page runs) and exits 1 on the first failed check,
so a failure here names the check in the captured stderr.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "pop_core.js"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (needed to run pop.js's core)")
def test_pop_core_rules_and_layout():
    proc = subprocess.run(["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"pop_core.js failed (rc {proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
    lines = proc.stdout.strip().splitlines()
    assert lines, "pop_core.js printed nothing"
    report = json.loads(lines[-1])
    assert report["ok"] is True
    assert report["checks"] > 1000
    assert report["perfect_score"] == 57          # a click on every target's next tick, 20 s
    assert report["expiry_game_ticks"] == 600     # three unclicked targets: 3 x (20 gap + 180 life)
