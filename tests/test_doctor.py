"""`hakisa doctor` through the real CLI: on its own Xvfb every X check passes and its keys reach its window,
on either backend (--backend, and the JSON says which ran); under Wayland with no X display it says why
nothing can work and what to do instead."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _doctor(env: dict, *argv: str) -> tuple[int, dict]:
    r = subprocess.run([sys.executable, "-m", "hakisa.cli", "doctor", "--json-only", *argv], capture_output=True,
                       text=True, env=env, timeout=120)
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.x11
def test_doctor_on_a_private_xvfb(backend, xvfb):
    env = {k: v for k, v in os.environ.items() if k != "HAKISA_BACKEND"}  # only the flag chooses
    rc, out = _doctor(env, "--seconds", "0.3", "--backend", backend)
    checks = {c["check"]: c for c in out["checks"]}
    assert rc == 0 and out["ok"], out
    assert checks["backend"]["backend"] == backend and checks["backend"]["windows"] >= 0
    assert checks["display"]["status"] == "ok" and checks["display"]["screen"] == [1280, 720]
    assert checks["xtest"]["status"] == "ok"
    assert checks["capture"]["region"] == [0, 0, 1280, 720] and checks["capture"]["grab_ms_p50"] > 0
    assert checks["input"]["status"] == "ok" and checks["input"]["key_press"] >= 5, checks["input"]
    assert checks["torch"]["threads"] >= 1 and isinstance(checks["torch"]["native_bf16"], bool)
    assert set(checks["extras"]["extras"]) >= {"retro", "ray", "sweeps"}


def test_doctor_under_wayland_without_x_says_what_to_do():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {"XDG_SESSION_TYPE": "wayland",
                                                                     "WAYLAND_DISPLAY": "wayland-0"}
    rc, out = _doctor(env)
    checks = {c["check"]: c for c in out["checks"]}
    assert rc == 1 and not out["ok"]
    assert checks["session"]["status"] == "fail" and "Xorg" in checks["session"]["detail"]
    assert "nothing works" in checks["session"]["detail"]
    assert checks["display"]["status"] == "fail" and "Wayland" in checks["display"]["detail"]
    assert checks["input"]["status"] == "skip"
