"""`hakisa record --agent`: an agent plays a real X window, a "person" takes over with real XTest input.

On its own Xvfb (the `xvfb`/`xwin` fixtures): tests/xwin.py logs every key event the window receives. The agent
is a real HakisaNet whose command head's bias makes it hold J on every step. The person is this test, pressing
K through XTest on the same display, so the recorder's listener sees both the agent's own XTest events and the
person's, and must tell them apart by what the agent's sink sent. Checked: the person has control within a step
of pressing K, J is released at once, no agent input reaches the window while the person acts, the agent gets
control back after the idle gap, and the store says who acted on every frame (with the agent's log-probs).
Waits count on events and frames, each with its own timeout and message; the only time bounds are lower
bounds (the idle gap), which a loaded machine can only lengthen.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import set_focus

from hakisa.data import EpisodeStore, EpisodeWriter, Transitions
from hakisa.takeover import EchoLog

HZ = 10
IDLE_MS = 400
GAME = {
    "name": "takeover",
    "window": {"title": "takeover target"},
    "obs": {"width": 64, "height": 36, "gray": True, "stack": 2},
    "hz": HZ,
    "input_map": {"name": "takeover", "x_bins": 1, "y_bins": 1, "commands": [
        {"name": "noop", "kind": "noop"},
        {"name": "hold_j", "kind": "keys", "keys": ["j"]},
        {"name": "hold_k", "kind": "keys", "keys": ["k"]}]},
    "rules": {
        "canvas": [320, 180],
        # xwin's background fills most of the window: always in play, one episode until F10
        "readers": {"bg": {"type": "color_fraction", "region": [0, 0, 320, 180], "color": [40, 40, 40], "tol": 10}},
        "in_play": {"reading": "bg", "op": ">=", "value": 0.3},
    },
}
NOOP, HOLD_J, HOLD_K = 0, 1, 2


def _agent_that_holds_j(tmp_path):
    """A real net whose command head always prefers hold_j (its bias dwarfs the small-init weights' output)."""
    import torch

    from hakisa.game import Game
    from hakisa.model import HakisaNet, save_checkpoint

    game_file = tmp_path / "takeover.json"
    game_file.write_text(json.dumps(GAME))
    game = Game.load(game_file)
    torch.manual_seed(0)
    net = HakisaNet(game.obs_spec, game.input_map)
    with torch.no_grad():
        net.pi_cmd.bias.zero_()
        net.pi_cmd.bias[HOLD_J] = 30.0
    return game_file, save_checkpoint(tmp_path / "agent", net)


class Person:
    """Real XTest key events from this test's own X connection: to the recorder, a person at the keyboard."""

    def __init__(self):
        from Xlib import XK, display

        self.dpy, self.XK = display.Display(), XK

    def key(self, name: str, down: bool) -> float:
        from Xlib import X
        from Xlib.ext import xtest

        code = self.dpy.keysym_to_keycode(self.XK.string_to_keysym(name))
        t = time.time()
        xtest.fake_input(self.dpy, X.KeyPress if down else X.KeyRelease, code)
        self.dpy.sync()
        return t

    def close(self):
        self.dpy.close()


def _keys(w) -> list[tuple[str, str]]:
    return [(e[0], e[2]) for e in w.events() if e[0] in ("KeyPress", "KeyRelease")]


def _wait(cond, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"{what} (waited {timeout:g} s)")


def _runs(v) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a in v.tolist():
        if out and out[-1][0] == a:
            out[-1][1] += 1
        else:
            out.append([a, 1])
    return [tuple(r) for r in out]


@pytest.mark.x11
def test_person_takes_over_and_gives_back(xvfb, xwin, tmp_path):
    from Xlib import X, display

    dpy = display.Display()  # no auto-repeat: the window's key log is then exactly what was sent
    dpy.change_keyboard_control(auto_repeat_mode=X.AutoRepeatModeOff)
    dpy.sync()
    dpy.close()
    game_file, ckpt = _agent_that_holds_j(tmp_path)
    w = xwin(title="takeover target", x=100, y=80, width=320, height=180)
    set_focus(w.wid)
    out = tmp_path / "ds"
    rec = subprocess.Popen([sys.executable, "-m", "hakisa.cli", "record", "--game", str(game_file),
                            "--agent", str(ckpt), "--idle-ms", str(IDLE_MS), "--out", str(out), "--quiet"],
                           env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    person = Person()
    try:
        _wait(lambda: ("KeyPress", "j") in _keys(w), "the agent never pressed J in the window", 60)
        n0 = len(_keys(w))
        time.sleep(1.0)  # ~10 agent steps holding J
        assert _keys(w) == [("KeyPress", "j")], "the agent should press J once and hold it"
        t_press = person.key("k", True)
        _wait(lambda: ("KeyRelease", "j") in _keys(w)[n0:], "the agent's J was not released after the person's K", 10)
        time.sleep(1.5)  # the person holds K for ~15 steps
        t_release = person.key("k", False)
        i_rk = _wait(lambda: _keys(w).index(("KeyRelease", "k")) if ("KeyRelease", "k") in _keys(w) else None,
                     "the window never got the person's K release", 10)
        _wait(lambda: ("KeyPress", "j") in _keys(w)[i_rk:], "control never came back to the agent after the idle gap",
              15)
        time.sleep(1.0)  # the agent plays on for ~10 steps
        person.key("F10", True)  # the recorder's stop key: never game input, never a takeover
        person.key("F10", False)
        stdout, stderr = rec.communicate(timeout=60)
    finally:
        person.close()
        if rec.poll() is None:
            rec.kill()
            rec.wait(10)
    assert rec.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["takeovers"] == 1, summary

    # the window: J held, the person's K, J released at once, nothing from the agent until K is up and the gap over
    keys = [k for k in _keys(w) if k[1] in ("j", "k")]
    i_k = keys.index(("KeyPress", "k"))
    i_rel_j = keys.index(("KeyRelease", "j"))
    i_rel_k = keys.index(("KeyRelease", "k"))
    i_back = keys.index(("KeyPress", "j"), i_rel_k)
    assert keys[:i_k] == [("KeyPress", "j")], keys
    assert i_k < i_rel_j < i_rel_k, f"J must be released while the person holds K: {keys}"
    assert sorted(keys[i_k:i_back]) == sorted([("KeyPress", "k"), ("KeyRelease", "j"), ("KeyRelease", "k")]), keys

    # the store: who acted on every frame, the labels sent, the agent's log-probs
    s = EpisodeStore(out)
    assert s.meta["source"] == "teacher" and s.meta["agent"] == str(ckpt), s.meta
    assert len(s.episodes) == 1
    ep = s.episode(0)
    actor, ts, cmd = ep["actor"], ep["timestamps"], ep["actions"][:, 0]
    runs = _runs(actor)
    assert [a for a, _ in runs] == [1, 0, 1], runs
    assert runs[0][1] >= 5 and runs[1][1] >= 10 and runs[2][1] >= 3, runs
    first_person = runs[0][1]
    late = int(((ts >= t_press) & (np.arange(len(ts)) < first_person)).sum())
    # one step, plus one for the listener thread of a loaded machine
    assert late <= 2, f"{late} agent frames after the person pressed K"
    back = first_person + runs[1][1]
    assert ts[back] - t_release >= IDLE_MS / 1000 - 0.05, "the agent took control back before the idle gap"
    assert ((ts > t_release) & (actor == 0)).sum() >= 2, "no idle frames between the person's release and the agent"
    agent = actor == 1
    assert (cmd[agent] == HOLD_J).all()
    assert np.isfinite(ep["logp"][agent]).all() and (ep["logp"][agent] > -0.01).all()  # p(hold_j) ~ 1
    assert np.isnan(ep["logp"][~agent]).all() and np.isnan(ep["value"][~agent]).all()
    holding_k = (actor == 0) & (ts > t_press + 0.3) & (ts < t_release - 0.1)
    assert holding_k.sum() >= 8 and (cmd[holding_k] == HOLD_K).all(), cmd[actor == 0]
    idle = (actor == 0) & (ts > t_release + 0.15)
    assert (cmd[idle] == NOOP).all(), cmd[actor == 0]

    tr = Transitions(s, cache_dir=tmp_path / "cache")
    assert (tr.actor == actor).all()
    info = subprocess.run([sys.executable, "-m", "hakisa.cli", "data", "info", str(out), "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    d = json.loads(info.stdout)
    assert d["actors"] == {"person": runs[1][1], "agent": runs[0][1] + runs[2][1], "takeovers": 1}, d["actors"]


# ---- pure pieces (no X) ---------------------------------------------------------------------------
def test_echo_log_tells_the_agents_events_from_a_persons():
    log = EchoLog(window=0.2, px=3)
    log.sent([("press", "j"), ("move", 100, 50), ("click", "left")])
    assert log.is_echo("down", "j")
    assert log.is_echo("down", "j")  # the held key's auto-repeat
    assert not log.is_echo("down", "k")  # a key the agent never touched: the person
    assert log.is_echo("move", "", 102, 49) and not log.is_echo("move", "", 102, 49)  # each echo once
    assert not log.is_echo("move", "", 140, 50)
    assert log.is_echo("press", "left") and log.is_echo("release", "left")
    assert not log.is_echo("press", "left")  # a second click: the person's
    log.sent([("release", "j")])
    assert log.is_echo("down", "j")  # a repeat the server made before the release, seen after it was sent
    assert log.is_echo("up", "j")
    assert not log.is_echo("down", "j")  # J pressed after the agent's release was seen: the person's
    log.sent([("press", "k"), ("release", "k")])
    time.sleep(0.3)  # the release's echo never came (lost): after the window, a K is the person's
    assert not log.is_echo("down", "k")
    assert not log.is_echo("move", "", 100, 50)


def test_actor_column_old_stores_read_as_teacher(tmp_path):
    from hakisa.data.cli import info
    from hakisa.input_map import InputMap
    from hakisa.preprocess import ObsSpec

    imap = InputMap.from_dict(GAME["input_map"])
    spec = ObsSpec(width=16, height=8, stack=2)
    meta = {"input_map": imap, "obs_spec": spec, "fps": 10, "source": "teacher"}
    f = np.zeros((1, 8, 16), np.uint8)
    with EpisodeWriter(tmp_path / "ds", meta, chunk_frames=3) as w:  # a teacher's episode: no actor column
        w.begin_episode()
        for _ in range(4):
            w.add(f, [HOLD_K, 0, 0])
    # an agent's session appended: agent, agent | agent (a chunk boundary), person, person | agent
    acts = [1, 1, 1, 0, 0, 1]
    with EpisodeWriter(tmp_path / "ds", meta | {"agent": "x"}, chunk_frames=3) as w:
        w.begin_episode()
        for a in acts:
            w.add(f, [HOLD_J if a else HOLD_K, 0, 0], actor=a, logp=-0.1 if a else float("nan"))
        with pytest.raises(ValueError, match="actor"):
            w.add(f, [0, 0, 0], actor=2)
    s = EpisodeStore(tmp_path / "ds")
    assert "actor" not in s.episode(0) and (s.episode(1)["actor"] == acts).all()
    assert s.actor_counts() == {"person": 4 + 2, "agent": 4, "takeovers": 1}
    assert s.check().ok
    tr = Transitions(s, stack=2, cache_dir=tmp_path / "cache")
    assert tr.actor.tolist() == [0] * 4 + acts
    assert info(s)["actors"]["takeovers"] == 1
