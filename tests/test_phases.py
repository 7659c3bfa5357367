"""The phase verbs end to end on a toy pixel env: train -> play, explore -> consolidate -> play, evolve."""
from __future__ import annotations

import json

import pytest
import torch

from hakisa.cli import main as cli

torch.set_num_threads(1)


def _last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_train_then_play(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli(["train", "--env", "Toy/KeyPress-v0", "--algo", "ppo", "--steps", "3072", "--num-envs", "8",
                "--run", "kp", "--runs-dir", str(runs), "--no-progress",
                "--set", "num_steps=32", "--set", "lr=1e-3", "--set", "threads=1", "--set", "save_every=4"]) == 0
    assert _last_json(capsys)["global_step"] == 3072
    run = runs / "kp"
    assert (run / "config.json").exists() and (run / "checkpoint" / "model.safetensors").exists()
    assert (run / "best" / "config.json").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    assert cli(["play", "--checkpoint", str(run / "checkpoint"), "--env", "Toy/KeyPress-v0", "--episodes", "24", "--num-envs", "8"]) == 0
    s = _last_json(capsys)
    assert s["episodes"] == 24 and s["mean_length"] == 16 and s["head"] == "policy"
    assert s["mean_return"] > 8  # chance: 3.2 of 16
    # a checkpoint for another game is refused, clearly
    with pytest.raises(ValueError, match="input map"):
        cli(["play", "--checkpoint", str(run / "checkpoint"), "--env", "Toy/Click-v0", "--episodes", "2"])


def test_explore_consolidate_play(tmp_path, capsys):
    data = tmp_path / "explore"
    assert cli(["explore", "--env", "Toy/KeyPress-v0", "--episodes", "40", "--num-envs", "8", "--out", str(data),
                "--epsilon", "1.0"]) == 0
    s = _last_json(capsys)
    assert s["episodes"] == 40
    from hakisa.data import EpisodeStore

    store = EpisodeStore(data)
    assert len(store.episodes) == 40 and store.meta["source"] == "explore"
    ep = store.episode(0)
    assert ep["frames"].shape == (16, 1, 40, 40) and ep["actions"].shape == (16, 3) and ep["dones"].sum() == 0
    # random play, then offline DQN on it: the greedy Q policy must beat chance by far
    assert cli(["consolidate", "--data", str(data), "--steps", "300", "--batch-size", "32", "--lr", "2e-3",
                "--gamma", "0.5", "--target-every", "50", "--hidden", "64", "--run", "off", "--runs-dir",
                str(tmp_path / "runs"), "--no-progress", "--threads", "1"]) == 0
    _last_json(capsys)
    assert cli(["play", "--checkpoint", str(tmp_path / "runs" / "off"), "--env", "Toy/KeyPress-v0", "--episodes", "16",
                "--num-envs", "8"]) == 0
    s = _last_json(capsys)
    assert s["head"] == "q"
    assert s["mean_return"] > 10, s  # chance: 3.2 of 16


def test_play_collect_writes_an_episode_store(tmp_path, capsys):
    from hakisa.envs.toy import KeyPressEnv
    from hakisa.model import HakisaNet, save_checkpoint

    env = KeyPressEnv()
    save_checkpoint(tmp_path / "ck", HakisaNet(env.obs_spec, env.input_map, hidden=16), {"algo": "ppo"})
    assert cli(["play", "--checkpoint", str(tmp_path / "ck"), "--env", "Toy/KeyPress-v0", "--episodes", "5",
                "--num-envs", "2", "--collect", str(tmp_path / "played")]) == 0
    s = _last_json(capsys)
    from hakisa.data import EpisodeStore

    store = EpisodeStore(tmp_path / "played")
    assert len(store.episodes) == 5 and store.meta["source"] == "play"
    assert abs(sum(float(store.episode(i)["rewards"].sum()) for i in range(5)) / 5 - s["mean_return"]) < 1e-6


def test_evolve_cli(tmp_path, capsys):
    assert cli(["evolve", "--env", "Toy/KeyPress-v0", "--algo", "es", "--generations", "3", "--pop", "4",
                "--episodes-per-member", "1", "--hidden", "16", "--run", "es", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    s = _last_json(capsys)
    assert s["generations"] == 3 and (tmp_path / "es" / "checkpoint" / "config.json").exists()


def test_evaluate_gives_every_env_its_share_of_episodes():
    # env 0's episodes are 3x shorter: it must not use up env 1's quota (short episodes over-counted)
    import gymnasium as gym

    from hakisa.envs.toy import KeyPressEnv
    from hakisa.model import HakisaNet
    from hakisa.phases.play import evaluate

    envs = gym.vector.SyncVectorEnv([lambda: KeyPressEnv(episode_len=3), lambda: KeyPressEnv(episode_len=9)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    net = HakisaNet(KeyPressEnv().obs_spec, KeyPressEnv().input_map, hidden=16)
    s = evaluate(net, envs, 4, seed=0)
    assert s["episodes"] == 4 and s["mean_length"] == (3 + 3 + 9 + 9) / 4
