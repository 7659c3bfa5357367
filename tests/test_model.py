"""HakisaNet: heads, masks, branching dueling, checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hakisa.envs.toy import TOY_SPEC, click_map, keypress_map
from hakisa.input_map import InputMap
from hakisa.model import CheckpointError, HakisaNet, load_checkpoint, save_checkpoint
from hakisa.preprocess import ObsSpec

torch.set_num_threads(1)


def _obs(spec: ObsSpec, b: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b,) + spec.shape, generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("encoder", ["small", "nature"])
def test_heads_shapes_on_default_duel_obs(encoder):
    spec, imap = ObsSpec(), InputMap.load("duel")
    net = HakisaNet(spec, imap, encoder=encoder, hidden=64)
    h = net(_obs(spec, 3))
    assert h.cmd.shape == h.q_cmd.shape == (3, 8)
    assert h.x.shape == h.q_x.shape == h.y.shape == h.q_y.shape == (3, 1)
    assert h.value.shape == (3,)
    a = net.act(_obs(spec, 3))
    assert a.shape == (3, 3) and a.dtype == torch.long and (a[:, 1:] == 0).all()


def test_act_is_the_one_action_path():
    """act "argmax" is each policy head's mode, "sample" draws with softmax's law (the Gumbel-max trick), "q" is
    greedy on the Q branches, all canonical; act_mode plays a DQN checkpoint on Q and anything else on its policy."""
    from hakisa.agent import numpy_policy
    from hakisa.model import act_mode

    torch.manual_seed(0)
    net = HakisaNet(TOY_SPEC, click_map(bins=5), hidden=32).eval()
    with torch.no_grad():  # a peaked command head, so the sampling check has something to match
        net.pi_cmd.bias.copy_(torch.tensor([0.0, -1.0, 2.0]))  # mostly click: x and y get drawn
    obs = _obs(TOY_SPEC, 64)
    with torch.no_grad():
        h = net(obs)
        assert torch.equal(
            net.act(obs, "argmax"), net.canonical(torch.stack([h.cmd.argmax(1), h.x.argmax(1), h.y.argmax(1)], 1))
        )
        assert torch.equal(
            net.act(obs, "q"), net.canonical(torch.stack([h.q_cmd.argmax(1), h.q_x.argmax(1), h.q_y.argmax(1)], 1))
        )
        one = obs[:1].repeat(2000, 1, 1, 1)
        a = net.act(one, "sample", generator=torch.Generator().manual_seed(1))
        p = torch.softmax(net(obs[:1]).x, 1)[0].numpy()
    used = a[:, 0] == int(np.flatnonzero(net.input_map.uses_xy)[0])
    assert (a[~used, 1:] == 0).all()  # canonical: no x/y where the command does not use them
    freq = np.bincount(a[used, 1].numpy(), minlength=5) / int(used.sum())
    assert np.abs(freq - p).max() < 0.06, (freq, p)
    assert numpy_policy(net, "argmax")(obs[0].numpy()).shape == (3,)
    with pytest.raises(ValueError):
        net.act(obs, "greedy")
    assert act_mode({"algo": {"algo": "dqn"}}) == "q" and act_mode({"algo": {"algo": "ppo"}}) == "argmax"
    assert (
        act_mode({}, deterministic=False) == "sample" and act_mode({"algo": {"algo": "dqn"}}, head="policy") == "argmax"
    )
    # deterministic None: what the checkpoint asks for (a study measures it), else argmax; an explicit choice wins
    clone = {"algo": {"algo": "bc", "act": "sample"}}
    assert act_mode(clone, deterministic=None) == "sample" and act_mode(clone, deterministic=True) == "argmax"
    assert act_mode({"algo": {"algo": "ppo"}}, deterministic=None) == "argmax"


def test_branching_dueling_each_branch_mean_equals_shared_value():
    # Q_d = V + A_d - mean(A_d)  =>  mean_a Q_d(s, a) == V(s) for every branch d
    imap = click_map(bins=5)
    net = HakisaNet(TOY_SPEC, imap, hidden=32)
    obs = _obs(TOY_SPEC)
    h = net(obs)
    v = net.q_v(net.features(obs)).squeeze(1)
    for q in (h.q_cmd, h.q_x, h.q_y):
        torch.testing.assert_close(q.mean(1), v, atol=1e-5, rtol=0)
    # and the branches are not all the same function (advantages differ per branch)
    assert not torch.allclose(h.q_x, h.q_y)


def test_xy_heads_get_zero_gradient_for_commands_without_xy():
    imap = click_map()  # noop, "a" (keys), click (xy)
    net = HakisaNet(TOY_SPEC, imap, hidden=32)
    obs = _obs(TOY_SPEC, 4)
    xy_params = [net.pi_x.weight, net.pi_x.bias, net.pi_y.weight, net.pi_y.bias]

    def grads(actions):
        net.zero_grad()
        logp, ent = net.log_prob_entropy(obs, torch.tensor(actions))
        (logp.sum() + ent.sum()).backward()
        return [p.grad.clone() for p in xy_params], net.pi_cmd.weight.grad.clone()

    # keyboard / noop steps with arbitrary x/y indices: x/y heads must learn nothing
    g_xy, g_cmd = grads([[0, 3, 1], [1, 2, 2], [0, 0, 0], [1, 1, 3]])
    assert all(torch.count_nonzero(g) == 0 for g in g_xy)
    assert torch.count_nonzero(g_cmd) > 0
    # click steps do train them
    g_xy, _ = grads([[2, 3, 1], [2, 0, 2], [0, 0, 0], [2, 1, 3]])
    assert all(torch.count_nonzero(g) > 0 for g in g_xy)

    # the DQN loss masks the x/y advantage branches the same way
    from hakisa.algos.dqn import td_loss

    b = {
        "obs": obs.numpy(),
        "next_obs": obs.numpy(),
        "actions": np.array([[0, 3, 1], [1, 2, 2], [0, 0, 0], [1, 1, 3]]),
        "returns": np.ones(4, np.float32),
        "discount": np.full(4, 0.9, np.float32),
        "dones": np.zeros(4, bool),
    }
    net.zero_grad()
    td_loss(net, net, b)[0].backward()
    assert torch.count_nonzero(net.adv_x.weight.grad) == 0 and torch.count_nonzero(net.adv_y.weight.grad) == 0
    assert torch.count_nonzero(net.adv_cmd.weight.grad) > 0


def test_joint_log_prob_is_sum_of_used_heads():
    imap = click_map()
    net = HakisaNet(TOY_SPEC, imap, hidden=32)
    obs = _obs(TOY_SPEC, 2)
    acts = torch.tensor([[2, 1, 3], [1, 1, 3]])
    logp, _ = net.log_prob_entropy(obs, acts)
    cmd, x, y, _ = net.policy(obs)
    ls = [torch.log_softmax(t, 1) for t in (cmd, x, y)]
    torch.testing.assert_close(logp[0], ls[0][0, 2] + ls[1][0, 1] + ls[2][0, 3])
    torch.testing.assert_close(logp[1], ls[0][1, 1])  # keyboard command: x/y don't count


def test_checkpoint_round_trip_and_refusals(tmp_path):
    spec, imap = TOY_SPEC, keypress_map()
    net = HakisaNet(spec, imap, hidden=48)
    with torch.no_grad():
        net.pi_cmd.bias.add_(torch.arange(5.0))  # distinguish from a fresh init
    ck = tmp_path / "ck"
    save_checkpoint(ck, net, {"algo": "ppo", "lr": 1e-3}, {"win_rate": np.float32(0.5)})
    assert sorted(p.name for p in ck.iterdir()) == ["config.json", "model.safetensors"]
    doc = json.loads((ck / "config.json").read_text())
    assert doc["obs_spec"] == spec.to_dict() and doc["input_map"] == imap.to_dict()
    assert (
        doc["model"] == {"encoder": "small", "hidden": 48}
        and doc["algo"]["lr"] == 1e-3
        and doc["metrics"]["win_rate"] == 0.5
    )
    net2, cfg = load_checkpoint(ck, input_map=imap, obs_spec=spec)
    obs = _obs(spec)
    for a, b in zip(net(obs), net2(obs)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)

    # overwrite in place: atomic replace, no temp dirs left behind
    save_checkpoint(ck, net2, {"algo": "ppo"}, {"step": 2})
    assert json.loads((ck / "config.json").read_text())["metrics"] == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]

    with pytest.raises(ValueError, match="input map"):
        load_checkpoint(ck, input_map=click_map())
    with pytest.raises(ValueError, match="expects observations"):
        load_checkpoint(ck, obs_spec=ObsSpec())
    # a run dir resolves to its checkpoint
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint", net)
    assert load_checkpoint(run)[0].hidden == 48


def test_checkpoint_is_not_pickle_and_rejects_foreign_json(tmp_path):
    net = HakisaNet(TOY_SPEC, keypress_map(), hidden=16)
    ck = save_checkpoint(tmp_path / "ck", net)
    assert (ck / "model.safetensors").read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle stream
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a Hakisa checkpoint"):
        load_checkpoint(tmp_path / "bad")


def test_torchvision_encoder_fails_with_a_clear_message():
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match=r"hakisa\[vision\]"):
            HakisaNet(ObsSpec(), InputMap.load("duel"), encoder="torchvision:resnet18")
    else:
        net = HakisaNet(ObsSpec(), InputMap.load("duel"), encoder="torchvision:resnet18", hidden=32)
        assert net(_obs(ObsSpec(), 1)).cmd.shape == (1, 8)
    with pytest.raises(ValueError, match="unknown encoder"):
        HakisaNet(ObsSpec(), InputMap.load("duel"), encoder="resnet")


def test_shipped_duel_checkpoint_loads_and_still_wins_in_the_sim():
    """pretrained:duel-ppo (30 min of PPO, benchmarks/bench_duel_learning.py) against the current rules: a
    rules or renderer change that breaks what it learned shows up here. Random wins 0% of these fights."""
    from hakisa.envs.make import make_vec
    from hakisa.evaluate import evaluate
    from hakisa.model import find_checkpoint, load_checkpoint

    net, doc = load_checkpoint(find_checkpoint("pretrained:duel-ppo"))
    env = make_vec("Hakisa/Duel-v0", 40, seed=777, tier="normal", obs_spec=net.obs_spec)
    s = evaluate(net, env, 40, "sample", seed=777)
    assert s["episodes"] == 40 and s["win_rate"] >= 0.5, s
    with pytest.raises(CheckpointError, match="shipped"):
        find_checkpoint("pretrained:nope")
