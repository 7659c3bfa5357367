"""`hakisa train --resume` (issue 38 part 5): a PPO run killed with SIGKILL goes on from its last checkpoint/,
with its optimizer, counters and minutes, and its TensorBoard curve reads as one run; a live run killed the same
way leaves no browser behind and goes on with its books (steps, games, minutes) and its curve."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from hakisa.model import HakisaNet, load_training_state, save_checkpoint

CMD = [sys.executable, "-m", "hakisa.cli", "train", "--env", "Toy/KeyPress-v0", "--algo", "ppo", "--steps", "8192",
       "--num-envs", "4", "--set", "num_steps=32", "--set", "save_every=1", "--set", "threads=1", "--run", "r",
       "--no-progress"]


def test_the_optimizer_state_round_trips_through_a_checkpoint(tmp_path):
    """Adam's moments and step count, saved as safetensors + JSON beside the weights, load back exactly."""
    from hakisa.envs.make import make_vec

    env = make_vec("Toy/KeyPress-v0", 1, seed=0)
    net = HakisaNet(env.obs_spec, env.input_map, hidden=32)
    env.close()
    opt = torch.optim.Adam(net.parameters(), lr=3e-4, eps=1e-5)
    for _ in range(3):
        opt.zero_grad()
        sum(p.square().sum() for p in net.parameters()).backward()
        opt.step()
    save_checkpoint(tmp_path / "ck", net, {}, {}, optimizer=opt, resume={"update": 7, "global_step": 896})
    fresh = torch.optim.Adam(net.parameters(), lr=1.0)
    assert load_training_state(tmp_path / "ck", fresh) == {"update": 7, "global_step": 896}
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 3e-4
    for pid, st in a["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][pid][k])), (pid, k)


def test_a_killed_ppo_run_resumes_where_its_checkpoint_left_it(tmp_path):
    runs = tmp_path / "runs"
    cmd = CMD + ["--runs-dir", str(runs)]
    ck = runs / "r" / "checkpoint" / "config.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (ck.exists() and json.loads(ck.read_text()).get("resume", {}).get("update", 0) >= 3):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no 3rd checkpoint after 300 s"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    killed = json.loads(ck.read_text())["resume"]
    assert 3 <= killed["update"] < 64  # killed mid-run: 8192 steps are 64 updates of 128
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    done = json.loads(ck.read_text())["resume"]
    assert done["update"] == 64 and done["global_step"] == 8192, done
    assert done["time_s"] > killed["time_s"]  # the minutes before the kill still count
    assert done["grad_steps"] > killed["grad_steps"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(runs / "r"))
    ea.Reload()
    steps = [e.step for e in ea.Scalars("losses/value_loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 8192, steps  # one curve: no step twice, none missing
    assert len(steps) == 64
    files = sorted((runs / "r").glob("events.out.tfevents.*"), key=lambda f: f.stat().st_mtime)
    assert len(files) == 2
    second = EventAccumulator(str(files[-1]))
    second.Reload()
    resumed = [e.step for e in second.Scalars("losses/value_loss")]
    assert resumed[0] == (killed["update"] + 1) * 128, resumed[:3]  # it went on; it did not start again


def test_resume_is_refused_where_it_cannot_work(tmp_path):
    """A run with no checkpoint, and learners that keep no training state: one `hakisa:` line, exit 2."""
    r = subprocess.run(CMD + ["--runs-dir", str(tmp_path), "--resume"], capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "no checkpoint/ to resume from" in lines[0], r.stderr[-2000:]
    r = subprocess.run([c if c != "ppo" else "dqn" for c in CMD] + ["--runs-dir", str(tmp_path), "--resume"],
                       capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "every live run" in lines[0], r.stderr[-2000:]


@pytest.mark.x11
@pytest.mark.browser
@pytest.mark.slow  # 50 s (two live runs in real time): over CI's 20 minutes on a slow day; `pytest -m slow` runs it
def test_a_live_run_outlives_a_crashed_page_and_a_kill_9_and_resumes_with_its_books(xvfb, tmp_path):
    """One run, two faults: its page's renderer is killed (the Fleet reopens the page and training goes on), then
    the run is SIGKILLed (it leaves no browser behind), and `--resume` goes on with its steps, games, minutes and
    curve (tests/test_fleet_faults.py has the X server's death and a retired window)."""
    from pathlib import Path

    lights = Path(__file__).parent / "games" / "lights.json"
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "hakisa.cli", "train", "--game", str(lights), "--algo", "ppo", "--minutes", "0.6",
           "--save-minutes", "0.05", "--run", "r", "--runs-dir", str(runs), "--no-progress"]
    ck = runs / "r" / "checkpoint" / "config.json"

    def books_at(steps: int, what: str) -> dict:
        deadline = time.monotonic() + 120
        while not (ck.exists() and json.loads(ck.read_text()).get("resume", {}).get("steps", 0) >= steps):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, f"no checkpoint past {steps} steps {what} in 120 s"
            time.sleep(0.1)
        return json.loads(ck.read_text())["resume"]

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        books_at(100, "before the crash")
        kids = psutil.Process(proc.pid).children(recursive=True)  # its browser (a session of its own) among them
        renderers = [k for k in kids if "--type=renderer" in " ".join(k.cmdline())]
        assert renderers, [k.name() for k in kids]
        for k in renderers:
            k.kill()
        crashed_at = json.loads(ck.read_text())["resume"]["steps"]
        books_at(crashed_at + 150, "after the page crashed")  # it went on playing and learning
        kids = psutil.Process(proc.pid).children(recursive=True)  # the reopened browser's
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert "the page stopped" in proc.stderr.read()  # the one line the fault printed
    killed = json.loads(ck.read_text())["resume"]
    episodes = json.loads((runs / "r" / "curve.json").read_text())["episodes"]
    assert killed["minutes"] < 0.6 and sum(killed["games"]) >= len(episodes) > 0
    assert any(e["truncated"] for e in episodes)  # the crashed game, cut short
    _, alive = psutil.wait_procs(kids, timeout=15)  # nothing the killed run started outlives it
    assert not alive, [" ".join(k.cmdline())[:80] for k in alive]

    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    done = json.loads(ck.read_text())["resume"]
    assert done["steps"] == m["steps"] > killed["steps"] and done["grad_steps"] > killed["grad_steps"]
    # the budget is the first run's: minutes before the kill count, and the windows played out their last game
    assert 0.6 <= done["minutes"] < 0.6 + 1.0, done
    after = json.loads((runs / "r" / "curve.json").read_text())["episodes"]
    assert after[:len(episodes)] == episodes and len(after) > len(episodes)  # one curve: it went on
    assert all(e["minute"] >= killed["minutes"] - 0.2 for e in after[len(episodes):]), after[len(episodes):][:2]


def test_a_live_q_learners_replay_goes_through_checkpoint_and_back(tmp_path, capsys):
    """The live trainer's path for a Q learner's state, without a window: `checkpoint_job` written by the `Saver`'s
    thread, then `books` and `restore` into a fresh learner, which gets the replay and goes on counting; a learner
    of other windows cannot take that replay and says so in one line, and counts from 0 again."""
    from types import SimpleNamespace

    import numpy as np

    from hakisa.algos.srdqn import Args, SRDQNLearner
    from hakisa.input_map import InputMap
    from hakisa.phases import live_resume
    from hakisa.preprocess import ObsSpec

    SPEC = ObsSpec(width=64, height=48, gray=True, stack=2)
    imap = InputMap.from_dict({"name": "t", "commands": [{"name": "noop", "kind": "noop"},
                                                         {"name": "left", "kind": "keys", "keys": ["left"]}]})

    def net(seed: int) -> HakisaNet:
        torch.manual_seed(seed)
        return HakisaNet(SPEC, imap, "small", 32)

    args = Args(learning_starts=0, batch_size=8, buffer_size=2000)
    first = SRDQNLearner(net(0), args, None, 1, 4.0, 5)
    rng = np.random.default_rng(0)
    first.start_episode(0, rng.integers(0, 255, SPEC.shape, dtype=np.uint8))
    for t in range(120):
        first.add(0, np.array([t % 2, 0, 0]), 1.0, False, False, rng.integers(0, 255, SPEC.shape, dtype=np.uint8))
    for _ in range(10):
        first.update()
        first.after_update()
    first.snapshot_wanted.set()
    first.serve_snapshot()

    def actor(learner, **kw):
        return SimpleNamespace(learner=learner, steps=120, games=np.array([3] * learner.rb.E), best=-np.inf,
                               best_metrics={}, from_checkpoint=False, grad_steps_before=0, run_dir=tmp_path,
                               score_key="mean_score", episodes=[], ck_cfg={}, _judged=lambda g: g >= 0, **kw)

    saver = live_resume.Saver()
    saver.save(live_resume.checkpoint_job(actor(first), first.take_snapshot(), {}, 1.5))
    saver.close()
    b = live_resume.books(tmp_path)
    assert b["grad_steps"] == 10 and (tmp_path / "checkpoint" / "learner.safetensors").exists()

    same = actor(SRDQNLearner(net(1), args, None, 1, 4.0, 5))
    live_resume.restore(same, b)
    assert len(same.learner.rb) == 120 and same.learner.grad_steps == 10 and same.grad_steps_before == 0
    assert "replay is back (120 transitions)" in capsys.readouterr().out

    other = actor(SRDQNLearner(net(1), args, None, 2, 4.0, 5))  # two windows: another replay's shape
    live_resume.restore(other, b)
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "not restored" in said[0], said
    assert len(other.learner.rb) == 0 and other.learner.grad_steps == 0 and other.grad_steps_before == 10
