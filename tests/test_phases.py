"""The phase verbs end to end on a toy pixel env: train -> play, explore -> consolidate -> play, evolve."""
from __future__ import annotations

import json

import numpy as np
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
    assert (
        cli(
            [
                "play",
                "--checkpoint",
                str(run / "checkpoint"),
                "--env",
                "Toy/KeyPress-v0",
                "--episodes",
                "24",
                "--num-envs",
                "8",
            ]
        )
        == 0
    )
    s = _last_json(capsys)
    assert s["episodes"] == 24 and s["mean_length"] == 16 and s["mode"] == "argmax"
    assert s["mean_return"] > 8  # chance: 3.2 of 16
    # a checkpoint for another game is refused, clearly: one line, exit status 2
    capsys.readouterr()
    assert cli(["play", "--checkpoint", str(run / "checkpoint"), "--env", "Toy/Click-v0", "--episodes", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hakisa: ") and "input map" in err[0], err


def test_explore_consolidate_play(tmp_path, capsys):
    data = tmp_path / "explore"
    assert (
        cli(
            [
                "explore",
                "--env",
                "Toy/KeyPress-v0",
                "--episodes",
                "40",
                "--num-envs",
                "8",
                "--out",
                str(data),
                "--epsilon",
                "1.0",
            ]
        )
        == 0
    )
    s = _last_json(capsys)
    assert s["episodes"] == 40
    from hakisa.data import EpisodeStore

    store = EpisodeStore(data)
    assert len(store.episodes) == 40 and store.meta["source"] == "explore"
    ep = store.episode(0)
    assert ep["frames"].shape == (16, 1, 40, 40) and ep["actions"].shape == (16, 3) and ep["dones"].sum() == 0
    # random play, then offline DQN on it: the greedy Q policy must beat chance by far
    assert (
        cli(
            [
                "consolidate",
                "--data",
                str(data),
                "--steps",
                "300",
                "--batch-size",
                "32",
                "--lr",
                "2e-3",
                "--gamma",
                "0.5",
                "--target-every",
                "50",
                "--hidden",
                "64",
                "--run",
                "off",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    _last_json(capsys)
    assert (
        cli(
            [
                "play",
                "--checkpoint",
                str(tmp_path / "runs" / "off"),
                "--env",
                "Toy/KeyPress-v0",
                "--episodes",
                "16",
                "--num-envs",
                "8",
            ]
        )
        == 0
    )
    s = _last_json(capsys)
    assert s["mode"] == "q"
    assert s["mean_return"] > 10, s  # chance: 3.2 of 16


def test_explore_consolidate_ppo_loop_learns(tmp_path, capsys):
    """Hakisa's explore -> consolidate loop with PPO: explored episodes carry the behaviour log-probs and
    values; consolidate --algo ppo updates the net that explored; a few rounds must leave chance far behind."""
    from hakisa.data import EpisodeStore, Transitions
    from hakisa.envs.toy import TOY_SPEC, keypress_map
    from hakisa.model import HakisaNet, save_checkpoint

    torch.manual_seed(0)
    ckpt = tmp_path / "round0"
    save_checkpoint(ckpt, HakisaNet(TOY_SPEC, keypress_map(), hidden=64))
    returns = []
    for k in range(1, 9):
        data = tmp_path / f"explore{k}"
        assert (
            cli(
                [
                    "explore",
                    "--env",
                    "Toy/KeyPress-v0",
                    "--checkpoint",
                    str(ckpt),
                    "--episodes",
                    "64",
                    "--num-envs",
                    "8",
                    "--out",
                    str(data),
                    "--seed",
                    str(k),
                ]
            )
            == 0
        )
        returns.append(_last_json(capsys)["mean_return"])
        if k == 1:
            tr = Transitions(EpisodeStore(data))
            assert tr.logp is not None and tr.values is not None and len(tr.logp) == 64 * 16
            assert (tr.logp < 0).all() and (tr.logp > -2.0).all()  # log(1/5) = -1.6 for an untrained net
        assert (
            cli(
                [
                    "consolidate",
                    "--algo",
                    "ppo",
                    "--data",
                    str(data),
                    "--init",
                    str(ckpt),
                    "--epochs",
                    "8",
                    "--lr",
                    "3e-3",
                    "--clip",
                    "0.2",
                    "--batch-size",
                    "256",
                    "--run",
                    f"round{k}",
                    "--runs-dir",
                    str(tmp_path),
                    "--no-progress",
                ]
            )
            == 0
        )
        m = _last_json(capsys)
        assert m["algo"] == "ppo" and m["steps"] == 64 * 15  # each cut episode's last step only bootstraps
        ckpt = tmp_path / f"round{k}" / "checkpoint"
    assert returns[0] < 6, returns  # chance: 3.2 of 16
    assert max(returns[-2:]) > 10, returns
    # a teacher's episodes (no log-probs) are refused with a clear message
    with pytest.raises(ValueError, match="no behaviour log-probs"):
        from hakisa.phases.consolidate import episode_gae

        src = tmp_path / "greedy"
        cli(["explore", "--env", "Toy/KeyPress-v0", "--episodes", "8", "--greedy", "--out", str(src)])
        episode_gae(Transitions(EpisodeStore(src)))


def test_episode_gae_bootstraps_cut_episodes_and_not_terminal_ones(tmp_path):
    """GAE per stored episode, checked against the recursion by hand: a terminated episode ends on 0,
    a cut one (time limit) only lends its last step's V as the bootstrap."""

    from hakisa.data import EpisodeStore, EpisodeWriter, Transitions
    from hakisa.envs.toy import TOY_SPEC, keypress_map
    from hakisa.phases.consolidate import episode_gae

    frame = np.zeros((1, 40, 40), np.uint8)
    eps = [([1.0, 0.0, 2.0], [0.5, 0.2, 0.1], True), ([0.0, 1.0, 0.0], [0.3, 0.4, 0.9], False)]
    with EpisodeWriter(
        tmp_path / "d", {"input_map": keypress_map(), "obs_spec": TOY_SPEC, "source": "explore", "fps": 15}
    ) as w:
        for rewards, values, term in eps:
            w.begin_episode()
            for t, (r, v) in enumerate(zip(rewards, values)):
                w.add(frame, [0, 0, 0], r, term and t == 2, logp=-1.0, value=v)
            w.end_episode()
    tr = Transitions(EpisodeStore(tmp_path / "d"))
    g, lam = 0.9, 0.5
    idx, adv, ret, scale = episode_gae(tr, g, lam)
    assert idx.tolist() == [0, 1, 2, 3, 4]  # the cut episode's last step is only a bootstrap
    disc = [1.0, 0.9, 2.81, 0.0, 1.0, 0.9]  # forward discounted sums per episode
    assert scale == pytest.approx(np.std(disc) + 1e-8)

    def gae(r, v, v_next):
        d = [r[t] / scale + g * v_next[t] - v[t] for t in range(len(r))]
        out, run = [], 0.0
        for t in reversed(range(len(d))):
            run = d[t] + g * lam * run
            out.insert(0, run)
        return out

    want = gae([1.0, 0.0, 2.0], [0.5, 0.2, 0.1], [0.2, 0.1, 0.0]) + gae([0.0, 1.0], [0.3, 0.4], [0.4, 0.9])
    assert adv == pytest.approx(np.array(want, np.float32), rel=1e-5)
    assert ret == pytest.approx(adv + np.array([0.5, 0.2, 0.1, 0.3, 0.4], np.float32), rel=1e-5)


def test_value_warmup_fits_the_critic_and_leaves_the_policy_alone(tmp_path):
    """consolidate_ppo(value_epochs=N) first fits only the value head (a clone's never-trained critic):
    V moves towards the episodes' returns, and up to the PPO step the policy's logits are the clone's."""
    from hakisa.algos import ppo
    from hakisa.data import EpisodeStore, EpisodeWriter, Transitions
    from hakisa.envs.make import make_vec
    from hakisa.envs.toy import TOY_SPEC, keypress_map
    from hakisa.evaluate import evaluate
    from hakisa.model import HakisaNet
    from hakisa.phases import consolidate as cons

    torch.manual_seed(0)
    net = HakisaNet(TOY_SPEC, keypress_map(), hidden=64)
    env = make_vec("Toy/KeyPress-v0", 8, seed=0)
    meta = {"input_map": env.input_map, "obs_spec": env.obs_spec, "source": "explore", "fps": 15}
    with EpisodeWriter(tmp_path / "d", meta) as w:
        evaluate(net, env, 32, "sample", collect=w)
    tr = Transitions(EpisodeStore(tmp_path / "d"))
    idx, _, ret0, _ = cons.episode_gae(tr)  # targets from the values stored while exploring
    obs = torch.from_numpy(tr.stacked(idx))

    def v_loss():
        with torch.no_grad():
            return float(0.5 * ((net.policy(obs)[3] - torch.from_numpy(ret0)) ** 2).mean())

    def policy_params():  # everything but the value head
        return {k: p.detach().clone() for k, p in net.named_parameters() if not k.startswith("v.")}

    before_params, before_loss = policy_params(), v_loss()
    seen = {}

    def spy(n, *a, **k):  # the PPO step would move the policy: look just before it, then skip it
        seen["params"], seen["loss"] = policy_params(), v_loss()
        return {"grad_steps": 0, "approx_kl": torch.tensor(0.0), "v_loss": torch.tensor(0.0), "clipfracs": [0.0]}

    orig, ppo.update_policy = ppo.update_policy, spy
    try:
        cons.consolidate_ppo(EpisodeStore(tmp_path / "d"), net, None, value_epochs=30, batch_size=64)
    finally:
        ppo.update_policy = orig
    assert all(torch.equal(seen["params"][k], before_params[k]) for k in before_params)
    assert seen["loss"] < 0.5 * before_loss, (before_loss, seen["loss"])


def test_play_collect_writes_an_episode_store(tmp_path, capsys):
    from hakisa.envs.toy import KeyPressEnv
    from hakisa.model import HakisaNet, save_checkpoint

    env = KeyPressEnv()
    save_checkpoint(tmp_path / "ck", HakisaNet(env.obs_spec, env.input_map, hidden=16), {"algo": "ppo"})
    assert (
        cli(
            [
                "play",
                "--checkpoint",
                str(tmp_path / "ck"),
                "--env",
                "Toy/KeyPress-v0",
                "--episodes",
                "5",
                "--num-envs",
                "2",
                "--collect",
                str(tmp_path / "played"),
            ]
        )
        == 0
    )
    s = _last_json(capsys)
    from hakisa.data import EpisodeStore

    store = EpisodeStore(tmp_path / "played")
    assert len(store.episodes) == 5 and store.meta["source"] == "play"
    assert abs(sum(float(store.episode(i)["rewards"].sum()) for i in range(5)) / 5 - s["mean_return"]) < 1e-6
    # a simulator's frames are stamped on its own clock (a frame every 1/fps s), not on how fast it ran here
    t = store.episode(0)["timestamps"]
    assert np.allclose(np.diff(t), 1 / store.meta["fps"], atol=1e-6), np.diff(t)[:5]


def test_evolve_cli(tmp_path, capsys):
    assert (
        cli(
            [
                "evolve",
                "--env",
                "Toy/KeyPress-v0",
                "--algo",
                "es",
                "--generations",
                "3",
                "--pop",
                "4",
                "--episodes-per-member",
                "1",
                "--hidden",
                "16",
                "--run",
                "es",
                "--runs-dir",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    s = _last_json(capsys)
    assert s["generations"] == 3 and (tmp_path / "es" / "checkpoint" / "config.json").exists()


def test_evaluate_gives_every_env_its_share_of_episodes():
    # env 0's episodes are 3x shorter: it must not use up env 1's quota (short episodes over-counted)
    import gymnasium as gym

    from hakisa.envs.toy import KeyPressEnv
    from hakisa.evaluate import evaluate
    from hakisa.model import HakisaNet

    envs = gym.vector.SyncVectorEnv(
        [lambda: KeyPressEnv(episode_len=3), lambda: KeyPressEnv(episode_len=9)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    net = HakisaNet(KeyPressEnv().obs_spec, KeyPressEnv().input_map, hidden=16)
    s = evaluate(net, envs, 4, seed=0)
    assert s["episodes"] == 4 and s["mean_length"] == (3 + 3 + 9 + 9) / 4


def test_evaluate_tells_its_observer_every_step_and_each_counted_episode():
    """play_live's timings, GIF and video ride on evaluate's loop through an observer: it must see each step (the
    env's own info, the action sent, the policy's time) and each episode the summary counts, no more."""
    from hakisa.envs.toy import KeyPressEnv
    from hakisa.evaluate import evaluate
    from hakisa.model import HakisaNet

    class Watch:
        def __init__(self):
            self.calls, self.steps, self.episodes = [], [], []

        def before(self):
            self.calls.append("before")

        def after(self, obs, a, r, term, trunc, info, forward_ms):
            self.calls.append("after")
            assert obs.shape == env.observation_space.shape and a.shape == (3,) and forward_ms > 0
            self.steps.append((r, float(info["correct"]), trunc))

        def episode(self, ep):
            self.episodes.append(ep)

    env = KeyPressEnv(episode_len=5)
    net = HakisaNet(env.obs_spec, env.input_map, hidden=16)
    w = Watch()
    s = evaluate(net, env, 3, "sample", seed=0, observer=w)
    assert w.calls == ["before", "after"] * 15  # 3 episodes of 5 steps, and no 4th game started
    assert all(r == c for r, c, _ in w.steps) and [t for *_, t in w.steps].count(True) == 3
    assert [e["length"] for e in w.episodes] == [5, 5, 5] and s["episodes"] == 3
    assert np.isclose(sum(e["return"] for e in w.episodes), sum(r for r, *_ in w.steps))


def test_a_live_runs_settings_come_from_its_flags_then_set():
    """`hakisa train` on a window: the learner's Args and the live trainer's LiveArgs, each field settable by --set
    (no hand copy of LiveArgs fields), the flags that exist for some of them, and an unknown key named."""
    import argparse
    import importlib
    from pathlib import Path

    from hakisa.game import Game
    from hakisa.phases import train

    p = argparse.ArgumentParser()
    train.add_args(p)
    lights = Path(__file__).parent / "games" / "lights.json"
    game, srdqn = Game.load(lights), importlib.import_module("hakisa.algos.srdqn")
    base = ["--game", str(lights), "--algo", "srdqn"]
    a, live, net, cfg = train.live_setup(game, srdqn, p.parse_args(
        base + ["--windows", "2", "--minutes", "3", "--save-minutes", "0.5", "--set", "judge_every=5",
                "--set", "lr=0.0002", "--set", "judge_eps=0.0"]))
    assert (live.windows, live.minutes, live.save_minutes, live.judge_every, live.judge_eps) == (2, 3.0, 0.5, 5, 0.0)
    assert a.lr == 2e-4 and (a.reset_every, a.encoder) == (0, "fine")  # srdqn's live defaults stand
    assert net is None and cfg is None
    with pytest.raises(SystemExit, match="judge_evry"):
        train.live_setup(game, srdqn, p.parse_args(base + ["--set", "judge_evry=5"]))
    # ppo on a window: its LiveArgs' defaults, under the game file's train.live.ppo entry, under --set
    ppo = importlib.import_module("hakisa.algos.ppo")
    args = p.parse_args(["--game", str(lights), "--algo", "ppo", "--set", "ent_coef=0.001"])
    a, *_ = train.live_setup(game, ppo, args)
    assert type(a) is ppo.LiveArgs and (a.lr, a.target_kl, a.ent_coef) == (5e-5, 0.03, 0.001)
    game.doc.setdefault("train", {}).setdefault("live", {})["ppo"] = {"lr": 1e-4, "ent_coef": 0.005}
    a, *_ = train.live_setup(game, ppo, args)
    assert (a.lr, a.ent_coef, a.num_minibatches) == (1e-4, 0.001, 2), a
