"""distill: a state teacher, a pixel student. It learns what a non-learner cannot, and nothing of the
teacher (or of the state) is in the agent it saves."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hakisa.algos import distill
from hakisa.envs.make import make_vec
from hakisa.evaluate import evaluate
from hakisa.model import HakisaNet, load_checkpoint


class ClickWithState:
    """Toy/Click-v0 (click the cell the dot is in) with its true state: the dot's cell, one-hot in x and y."""

    def __init__(self, n: int, seed: int):
        self.envs = make_vec("Toy/Click-v0", n, seed=seed)
        self.num_envs, self.obs_spec, self.input_map = n, self.envs.obs_spec, self.envs.input_map
        self.single_observation_space = self.envs.single_observation_space

    def state(self) -> np.ndarray:
        bx, by = self.input_map.x_bins, self.input_map.y_bins
        out = np.zeros((self.num_envs, bx + by), np.float32)
        for i, (x, y) in enumerate(self.envs.get_attr("target")):
            out[i, x], out[i, bx + y] = 1, 1
        return out

    def reset(self, **kw):
        return self.envs.reset(**kw)

    def step(self, actions):
        return self.envs.step(actions)

    def close(self):
        self.envs.close()


def _student(envs, seed=0):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return HakisaNet(envs.obs_spec, envs.input_map, hidden=64)


def test_distill_teaches_a_pixel_student_to_click_where_the_dot_is(tmp_path):
    """Both stages and the x/y heads: the teacher learns the click from the state, the student from the
    teacher's labels on its own frames. A student that learned nothing scores ~0.3 (chance: 1/3 * 1/16)."""
    envs = ClickWithState(8, seed=0)
    net = _student(envs)
    args = distill.Args(total_steps=24_576, teacher_frac=0.5, teacher_lr=3e-3, teacher_num_steps=32,
                        beta_steps=4096, lr=1e-3, batch_size=128, replay_ratio=2.0, buffer_size=8192,
                        threads=1, progress=False)
    m = distill.train(envs, args, tmp_path / "run", net=net)
    assert m["teacher_steps"] <= 12_288 and m["student_steps"] > 0
    assert m["global_step"] == m["teacher_steps"] + m["student_steps"]
    test = make_vec("Toy/Click-v0", 8, seed=99)
    learned = evaluate(net, test, 40, seed=99)["mean_return"]
    untrained = evaluate(_student(envs, seed=1), make_vec("Toy/Click-v0", 8, seed=99), 40, seed=99)["mean_return"]
    assert untrained < 1.5
    assert learned > 8, (learned, untrained, m)
    # the teacher went to teacher/, beside the agent, and a second student can start from it
    columns = [f"s{i}" for i in range(8)]  # an env without state_names: its columns are numbered
    teacher = distill.StateNet.load(tmp_path / "run" / "teacher", envs.input_map, columns)
    assert teacher.columns == columns


class ClickWithWinner(ClickWithState):
    """ClickWithState whose episodes report a winner (1: at least 12 of its 16 clicks hit), as a won-or-lost
    game's do; with no winner, student_target could never be read."""

    def __init__(self, n: int, seed: int):
        super().__init__(n, seed)
        self.ret = np.zeros(n)

    def step(self, actions):
        obs, r, term, trunc, infos = self.envs.step(actions)
        self.ret += r
        done = term | trunc
        infos = dict(infos)
        # on the step an episode ends, its info is final_info (Gymnasium's autoreset): the winner goes there
        infos["final_info"] = {**infos.get("final_info", {}), "winner": np.where(self.ret >= 12, 1, 2),
                               "_winner": done}
        self.ret[done] = 0
        return obs, r, term, trunc, infos


def test_distill_stops_once_its_student_wins_the_target(tmp_path):
    """student_target: the run ends on what the student learned, not on its step budget (issue 38: a busy
    machine only makes it slower). A student that learned nothing never wins (chance hits ~0.3 of 16), so it
    would play the whole 400k-step budget out and the test fails."""
    envs = ClickWithWinner(8, seed=0)
    net = _student(envs)
    args = distill.Args(total_steps=400_000, teacher_frac=0.1, teacher_lr=3e-3, teacher_num_steps=32,
                        teacher_target=0.9, beta_steps=4096, lr=1e-3, batch_size=128, replay_ratio=2.0,
                        buffer_size=8192, threads=1, progress=False, student_target=0.8)
    m = distill.train(envs, args, tmp_path / "run", net=net)
    assert m.get("stopped") == "student_target" and m["win_rate"] >= 0.8, m
    assert m["global_step"] < 200_000, m


def test_distilled_checkpoint_is_the_pixel_agent_alone(tmp_path):
    """`hakisa train --game duel` (the recipe's learner is distill): the saved agent has exactly a fresh
    HakisaNet's tensors, its config names no state, and it plays an env that cannot show its state."""
    from safetensors.torch import load_file

    from hakisa.cli import main

    rc = main(["train", "--game", "duel", "--steps", "1024", "--num-envs", "4", "--init", "none", "--set",
               "teacher_num_steps=32", "--set", "num_steps=16", "--set", "beta_steps=128", "--no-progress",
               "--run", "d", "--runs-dir", str(tmp_path)])
    assert rc == 0
    run = tmp_path / "d"
    net, cfg = load_checkpoint(run / "checkpoint")
    assert cfg["algo"]["algo"] == "distill" and cfg["metrics"]["student_steps"] > 0
    fresh = HakisaNet(net.obs_spec, net.input_map, net.encoder_name, net.hidden)
    saved = load_file(str(run / "checkpoint" / "model.safetensors"))
    assert set(saved) == set(fresh.state_dict())
    assert all(saved[k].shape == v.shape for k, v in fresh.state_dict().items())
    assert "columns" not in json.dumps(cfg["model"]) and (run / "teacher" / "model.safetensors").exists()

    env = make_vec("Hakisa/Duel-v0", 2, seed=5, tier="easy", obs_spec=net.obs_spec)

    def no_state():  # a window shows pixels only: anything asking it for the true state fails the test
        raise AssertionError("playing asked for the true state")

    env.state = no_state
    assert evaluate(net, env, 2, seed=5)["episodes"] == 2


def test_distill_refuses_an_env_without_state_and_live_training(capsys):
    envs = make_vec("Toy/KeyPress-v0", 2, seed=0)
    with pytest.raises(ValueError, match="state\\(\\) method"):
        distill.train(envs, distill.Args(total_steps=64, progress=False), None, net=_student(envs))
    from hakisa.cli import main

    assert main(["train", "--game", "duel", "--algo", "distill", "--live", "--minutes", "0.1"]) != 0
    assert "trains in a simulator" in capsys.readouterr().err


def test_state_only_steps_skip_the_pixels_but_not_the_fight():
    """The duel's switch for a state teacher: the same fights, rewards and states, no new frames."""
    a, b = make_vec("Hakisa/Duel-v0", 4, seed=3), make_vec("Hakisa/Duel-v0", 4, seed=3)
    oa, _ = a.reset(seed=3)
    b.reset(seed=3)
    b.state_only = True
    rng = np.random.default_rng(0)
    for _ in range(50):
        act = rng.integers(0, 8, 4)
        _, ra, ta, _, _ = a.step(act)
        ob, rb, tb, _, _ = b.step(act)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(a.state(), b.state())
    assert np.array_equal(ob, oa) and not np.array_equal(a.fights.obs, oa)  # b's frames never moved


def test_the_teacher_sees_only_the_columns_it_is_given():
    """teacher_drop names what the screen does not show; the teacher's view leaves it out, by name."""
    envs = make_vec("Hakisa/Duel-v0", 2, seed=0)
    view = distill.StateObs(envs, "boss_cooldown, boss_combo")
    assert "boss_cooldown" in envs.state_names and "boss_cooldown" not in view.names
    assert view.state().shape == (2, len(envs.state_names) - 2)
    full = envs.state()
    np.testing.assert_array_equal(view.state(), full[:, [envs.state_names.index(c) for c in view.names]])
    with pytest.raises(ValueError, match="not state columns"):
        distill.StateObs(envs, "boss_mood")
