"""Every notebook runs top to bottom (HAKISA_NB_SMALL=1) with nbclient; any cell error fails the test.

The kernel is the `python3` kernelspec of the interpreter running the tests (the venv's ipykernel
ships it, and jupyter_client maps its `python` to sys.executable), so a clean machine needs nothing
registered. Each notebook runs in its own temporary directory: runs/ and datasets/ land there.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
HAS_RETRO = importlib.util.find_spec("stable_retro") is not None


def run_notebook(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env_before = os.environ.get("HAKISA_NB_SMALL")
    os.environ["HAKISA_NB_SMALL"] = "1"  # the kernel inherits this process's environment
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("HAKISA_NB_SMALL", None)
        else:
            os.environ["HAKISA_NB_SMALL"] = env_before
    return nb


def _outputs(nb) -> str:
    """All text a notebook printed (streams, and the text/plain of rich displays such as tables)."""
    return "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_notebooks_are_generated_and_have_no_outputs():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert all(
            not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
        ), path


def test_01_quickstart_duel(tmp_path):
    nb = run_notebook("01_quickstart_duel.ipynb", tmp_path)
    out = _outputs(nb)
    assert "duel: win %" in out  # the leaderboard printed
    assert (tmp_path / "runs/notebooks/duel-ppo/checkpoint/model.safetensors").exists()
    assert (tmp_path / "runs/notebooks/arena-01/leaderboard.csv").exists()
    assert (tmp_path / "runs/notebooks/plots-01/curves.png").exists()
    assert (tmp_path / "runs/notebooks/diagnose-01/diagnose.json").exists()


def test_02_teacher_and_study(tmp_path):
    nb = run_notebook("02_teacher_and_study.ipynb", tmp_path)
    assert "teacher win rate while recording" in _outputs(nb)
    assert (tmp_path / "datasets/notebooks/teacher-duel/meta.json").exists()
    assert (tmp_path / "runs/notebooks/duel-bc/best/model.safetensors").exists()
    assert (tmp_path / "runs/notebooks/arena-02/leaderboard.json").exists()


@pytest.mark.retro
@pytest.mark.skipif(not HAS_RETRO, reason="stable_retro is not importable")
def test_03_retro_airstriker(tmp_path):
    run_notebook("03_retro_airstriker.ipynb", tmp_path)
    assert (tmp_path / "runs/notebooks/airstriker-ppo/checkpoint/model.safetensors").exists()
    assert (tmp_path / "runs/notebooks/arena-03/leaderboard.csv").exists()


def test_04_rewards_from_pixels(tmp_path):
    nb = run_notebook("04_rewards_from_pixels.ipynb", tmp_path)
    out = _outputs(nb)
    assert "mean absolute error" in out and "held-out accuracy" in out
