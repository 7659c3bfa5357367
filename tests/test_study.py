"""Behaviour cloning learns from a small dataset, and the check that says so rejects an agent that learned nothing.

The dataset: the scripted expert fighting the duel sim, written through the EpisodeWriter exactly as the
recorder would (one frame, the action held, reward, done). The full browser version (real page, real X
keys, >= 20 fights, the >= 70 % bar) is scripts/teacher_study_bench.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hakisa.capture import ObsSpec
from hakisa.data import EpisodeStore, EpisodeWriter
from hakisa.phases.study import StudyArgs, class_weights, evaluate_duel, study, validate

SPEC = ObsSpec(width=80, height=45)  # half resolution keeps the default test run short on 2 cores


def write_expert_dataset(root, fights: int, tier: str = "normal", seed: int = 0, n_envs: int = 4) -> float:
    """The scripted expert in the sim -> an episode store. Returns the expert's win rate."""
    from hakisa.envs.duel.env import DuelVecEnv
    from hakisa.envs.duel.expert import expert_keys
    from hakisa.envs.duel.sim import COMMAND_KEYS

    to_cmd = np.full(256, -1)
    to_cmd[COMMAND_KEYS] = np.arange(len(COMMAND_KEYS))
    env = DuelVecEnv(n_envs, tier=tier, seed=seed, obs_spec=SPEC)
    obs, _ = env.reset()
    c = SPEC.channels
    running = [[] for _ in range(n_envs)]
    done, wins = 0, 0
    with EpisodeWriter(root, {"input_map": env.input_map, "obs_spec": SPEC, "fps": 15, "source": "teacher",
                              "game": "duel-sim"}) as w:
        while done < fights:
            cmd = to_cmd[expert_keys(env.fights.sim.state)]
            newest = obs[:, -c:].copy()  # the frame seen before the action
            obs, r, term, _, info = env.step(cmd)
            for i in range(n_envs):
                running[i].append((newest[i], cmd[i], r[i], term[i]))
                if term[i]:
                    if done < fights:
                        w.begin_episode()
                        for t, (f, a, ri, di) in enumerate(running[i]):
                            w.add(f, [a, 0, 0], ri, di, t=t / 15)
                        w.end_episode(winner=int(info["winner"][i]))
                        wins += int(info["winner"][i] == 1)
                    done += 1
                    running[i] = []
    return wins / fights


def learned_something(val: dict, sim: dict, untrained_sim: dict) -> bool:
    """The bar: held-out command accuracy well above always-the-majority, balanced accuracy well above
    chance (~0.17 over the 6 commands the expert uses), and more damage to the boss in the sim than the
    same network untrained."""
    return (val["acc_cmd"] >= val["majority_baseline"] + 0.05 and val["balanced_acc_cmd"] >= 0.30
            and sim["mean_boss_damage"] >= untrained_sim["mean_boss_damage"] + 10)


def test_class_weights():
    w = class_weights(np.array([800, 100, 0, 100]), "sqrt")
    assert w[2] == 0 and w[1] > w[0] and np.isclose((w * [800, 100, 0, 100]).sum(), 1000)
    assert np.allclose(class_weights(np.array([5, 5]), "inverse"), 1)
    with pytest.raises(ValueError):
        class_weights(np.array([1]), "bogus")


def test_bc_learns_from_a_small_dataset(tmp_path):
    expert_wr = write_expert_dataset(tmp_path / "ds", fights=8, seed=3)
    args = StudyArgs(dataset=str(tmp_path / "ds"), out=str(tmp_path / "run"), epochs=4, steps_per_epoch=40,
                     batch_size=64, lr=1e-3, hidden=128, patience=4, val_fraction=0.25, progress=False, seed=0)
    res = study(args)
    from hakisa.model import HakisaNet, load_checkpoint

    net, cfg = load_checkpoint(tmp_path / "run" / "best")  # a normal Hakisa checkpoint
    assert cfg["algo"]["algo"] == "bc" and (tmp_path / "run" / "checkpoint" / "model.safetensors").exists()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    # the split is by episode: no fight is in both
    assert not set(cfg["algo"]["train_episodes"]) & set(cfg["algo"]["val_episodes"])

    store = EpisodeStore(tmp_path / "ds")
    data = store.transitions(stack=SPEC.stack)
    _, val = data.split(0.25, seed=0)
    weights = torch.ones(len(store.input_map.commands))
    uses_xy = torch.as_tensor(store.input_map.uses_xy)
    v_trained = validate(net, val, weights, uses_xy, len(store.input_map.commands))
    assert np.isclose(v_trained["acc_cmd"], res["best"]["acc_cmd"])  # the checkpoint is the reported one
    torch.manual_seed(0)
    untrained = HakisaNet(SPEC, store.input_map, hidden=128)
    v_untrained = validate(untrained, val, weights, uses_xy, len(store.input_map.commands))

    # the first 20 s of 8 sim fights each: enough to see who hits the boss
    sim_trained = evaluate_duel(net, episodes=8, frame_skip=4, seed=99, max_steps=300)
    sim_untrained = evaluate_duel(untrained, episodes=8, frame_skip=4, seed=99, max_steps=300)
    print({"expert_win_rate": expert_wr, "val": res["best"], "sim": sim_trained, "untrained_sim": sim_untrained})
    assert learned_something(res["best"], sim_trained, sim_untrained), (res["best"], sim_trained, sim_untrained)
    # and the same bar rejects the agent that learned nothing
    assert not learned_something(v_untrained, sim_untrained, sim_untrained)
