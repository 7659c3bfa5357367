"""`hakisa train --resume` (issue 38 part 5): a PPO run killed with SIGKILL goes on from its last checkpoint/,
with its optimizer, counters and minutes, and its TensorBoard curve reads as one run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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
    assert r.returncode == 2 and len(lines) == 1 and "only ppo in a simulator" in lines[0], r.stderr[-2000:]
