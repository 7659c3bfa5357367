"""PPO with Ray rollout workers (hakisa.algos.ppo_ray) on one local Ray: it learns, its policy lag is
bounded and reported, and `hakisa train --workers` runs it. The two-node cluster is tests/test_ray_cluster.py."""
from __future__ import annotations

import json

import pytest
import torch

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'hakisa[ray]'")

from hakisa.algos import ppo  # noqa: E402
from hakisa.algos.ppo_ray import train_ray  # noqa: E402
from hakisa.distributed import EnvRecipe  # noqa: E402
from hakisa.envs.make import make_vec  # noqa: E402
from hakisa.evaluate import evaluate  # noqa: E402
from hakisa.model import HakisaNet, load_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("local_ray")  # one Ray for the module (conftest.py); train_ray and
# RayEvaluator leave a Ray they did not start running


def _net(env_id, seed=0):
    envs = make_vec(env_id, 1)
    torch.set_num_threads(1)  # the orthogonal init's QR depends on the thread count
    torch.manual_seed(seed)
    return HakisaNet(envs.obs_spec, envs.input_map, hidden=64)


def _args(**kw):
    return ppo.Args(**{**dict(num_steps=32, lr=1e-3, clip_coef=0.2, progress=False, threads=1, seed=0), **kw})


def _score(net, env_id="Toy/KeyPress-v0"):
    return evaluate(net, make_vec(env_id, 8, seed=99), 40, seed=99)["mean_return"]


def test_ppo_with_two_ray_workers_learns_keypress(tmp_path):
    net = _net("Toy/KeyPress-v0")
    untrained = _score(_net("Toy/KeyPress-v0", seed=1))
    seen = []
    m = train_ray(EnvRecipe(env_id="Toy/KeyPress-v0", num_envs=4), _args(total_steps=6144), workers=2,
                  run_dir=tmp_path / "run", net=net, on_update=lambda n, info: seen.append(info["batches"]))
    learned = _score(net)
    assert untrained < 8 and learned > 12, (untrained, learned)  # 16 steps, 5 commands: chance is 3.2
    assert m["workers"] == 2 and m["global_step"] == 6144 and m["update"] == 6144 // (2 * 4 * 32)
    # both workers contributed, each with its own episodes
    assert {b["worker"] for batches in seen for b in batches} == {0, 1}
    assert m["episodes"] > 0 and m["workers_replaced"] == 0
    # the run dir is ppo.train's: config, TensorBoard, a checkpoint that loads and plays as well
    assert (tmp_path / "run" / "config.json").exists() and list((tmp_path / "run").glob("events.out.tfevents*"))
    saved, cfg = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert cfg["algo"]["algo"] == "ppo" and _score(saved) == learned


def test_policy_lag_is_bounded_reported_and_carried_by_every_batch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for max_lag in (1, 0):
        per_update = []
        m = train_ray(EnvRecipe(env_id="Toy/Click-v0", num_envs=2), _args(total_steps=2 * 2 * 32 * 6, num_steps=32),
                      workers=2, run_dir=tmp_path / f"lag{max_lag}", net=_net("Toy/Click-v0"), max_lag=max_lag,
                      on_update=lambda n, info: per_update.append((info["policy_version"], info["batches"])))
        assert len(per_update) == 6
        for version, batches in per_update:
            assert len(batches) == 2
            for b in batches:  # the update that made `version` learned from these: their lag is from version - 1
                assert b["lag"] == version - 1 - b["policy_version"] and 0 <= b["lag"] <= max_lag
        lags = [b["lag"] for _, bs in per_update for b in bs]
        assert m["lag_max"] == max(lags) <= max_lag and m["lag_mean"] == pytest.approx(sum(lags) / len(lags))
        assert sum(m["lag_hist"].values()) == len(lags) and m["max_lag"] == max_lag
        if max_lag == 1:  # workers kept stepping during updates: after the first, batches are one version old
            assert m["lag_max"] == 1
        ea = EventAccumulator(str(tmp_path / f"lag{max_lag}"))
        ea.Reload()
        assert len(ea.Scalars("charts/policy_lag")) == 6


def test_ray_trainer_refuses_privileged_heads():
    with pytest.raises(ValueError, match="state"):
        train_ray(EnvRecipe(env_id="Toy/KeyPress-v0", num_envs=2), _args(critic="state"), workers=1)


def test_cli_train_with_workers_writes_a_checkpoint_and_reports_lag(tmp_path, capsys):
    from hakisa.cli import main

    rc = main(["train", "--env", "Toy/KeyPress-v0", "--workers", "2", "--num-envs", "2", "--steps", "512",
               "--set", "num_steps=32", "--set", "threads=1", "--runs-dir", str(tmp_path), "--run", "cli",
               "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["workers"] == 2 and out["lag_max"] <= 1 and out["global_step"] == 512
    assert (tmp_path / "cli" / "checkpoint" / "model.safetensors").exists()


def test_cli_explore_with_workers_writes_every_episode_into_one_store(tmp_path, capsys):
    from hakisa.cli import main
    from hakisa.data import EpisodeStore

    # a trained agent first (serially: quick), so the store's returns tell its episodes from random play's
    envs = make_vec("Toy/KeyPress-v0", 8, seed=0)
    net = _net("Toy/KeyPress-v0")
    ppo.train(envs, _args(total_steps=4096), tmp_path / "agent", net=net)
    rc = main(["explore", "--env", "Toy/KeyPress-v0", "--workers", "2", "--episodes", "7", "--num-envs", "2",
               "--checkpoint", str(tmp_path / "agent"), "--out", str(tmp_path / "data")])
    assert rc == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["episodes"] == 7 and s["workers"] == 2 and s["mean_return"] > 10  # chance is 3.2
    store = EpisodeStore(tmp_path / "data")
    assert len(store.episodes) == 7 and store.meta["source"] == "explore" and store.meta["mode"] == "sample"
    ep = store.episode(0)
    assert ep["frames"].shape == (16, 1, 40, 40) and ep["actions"].shape == (16, 3)
    assert sum(e.ret for e in store.episodes) / 7 == pytest.approx(s["mean_return"])


def test_cli_train_workers_refuses_what_it_cannot_run(capsys):
    from hakisa.cli import main

    # the cloning term belongs to the one-process live trainer: a one-line refusal that names what to drop
    assert main(["train", "--game", "pop", "--workers", "2", "--demos", "datasets/none"]) == 2
    assert "drop --workers" in capsys.readouterr().err
    assert main(["train", "--env", "Toy/KeyPress-v0", "--algo", "dqn", "--workers", "2"]) == 2
    assert "PPO only" in capsys.readouterr().err


@pytest.mark.x11
@pytest.mark.browser
def test_explore_on_a_live_window_worker_with_its_own_display(tmp_path, capsys):
    from hakisa.cli import main
    from hakisa.data import EpisodeStore

    # one worker, one window on the worker's private Xvfb with its own browser; the worker claims a display slot
    rc = main(["explore", "--game", "pop", "--workers", "1", "--episodes", "2", "--out", str(tmp_path / "data")])
    assert rc == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["where"] == "live" and s["episodes"] == 2
    store = EpisodeStore(tmp_path / "data")
    assert len(store.episodes) == 2 and store.meta["where"] == "live"
    assert all(e.complete and e.frames > 1 for e in store.episodes)  # whole games (an untrained net loses fast)


@pytest.mark.x11
@pytest.mark.browser
def test_live_training_on_a_window_worker_with_its_own_display(tmp_path, capsys):
    from hakisa.cli import main
    from hakisa.model import load_checkpoint

    # pop has no simulator: the worker opens one window on its private Xvfb and plays it in real time; two
    # updates of 16 steps, then the run's checkpoint holds the learner's weights
    rc = main(["train", "--game", "pop", "--workers", "1", "--steps", "32", "--set", "num_steps=16",
               "--runs-dir", str(tmp_path), "--run", "live"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["where"] == "live" and out["workers"] == 1 and out["global_step"] == 32 and out["update"] == 2
    net, cfg = load_checkpoint(tmp_path / "live" / "checkpoint")
    assert cfg["algo"]["num_steps"] == 16 and net.input_map.name == "pop"


@pytest.mark.retro
def test_retro_workers_each_own_their_emulator_subprocesses(tmp_path, capsys):
    pytest.importorskip("stable_retro", reason="stable-retro is not installed (pip install -e '.[retro]')")
    from hakisa.cli import main
    from hakisa.envs.retro import AIRSTRIKER

    # stable-retro allows one emulator per process: each worker's envs are subprocesses of its own
    rc = main(["train", "--env", AIRSTRIKER, "--workers", "2", "--num-envs", "2", "--steps", "64",
               "--set", "num_steps=16", "--runs-dir", str(tmp_path), "--run", "retro"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["workers"] == 2 and out["global_step"] == 64 and out["workers_replaced"] == 0
    assert (tmp_path / "retro" / "checkpoint" / "model.safetensors").exists()
