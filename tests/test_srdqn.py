"""srdqn's parts without a window: the reset, the DQfD margin, the guard, and updates on a filled replay."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hakisa.algos.live_learners import Guard
from hakisa.algos.srdqn import Args, SRDQNLearner, margin_loss, n_step_at, shrink_perturb
from hakisa.input_map import InputMap
from hakisa.model import HakisaNet
from hakisa.preprocess import ObsSpec

SPEC = ObsSpec(width=64, height=48, gray=True, stack=2)
IMAP = InputMap.from_dict({"name": "t", "x_bins": 4, "y_bins": 3, "commands": [
    {"name": "noop", "kind": "noop"}, {"name": "left", "kind": "keys", "keys": ["left"]},
    {"name": "click", "kind": "click_left"}]})


def net(seed: int) -> HakisaNet:
    torch.manual_seed(seed)
    return HakisaNet(SPEC, IMAP, "small", 32)


def test_a_reset_renews_the_heads_and_shrinks_the_encoder_toward_a_fresh_init():
    a, fresh = net(0), net(1)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    shrink_perturb(a, fresh, 0.5)
    sd, fr = a.state_dict(), fresh.state_dict()
    for k in sd:
        if k.startswith(("trunk", "q_v", "adv_")):
            assert torch.equal(sd[k], fr[k]), k
        elif k.startswith("encoder"):
            assert torch.allclose(sd[k], 0.5 * before[k] + 0.5 * fr[k]), k
        else:  # the policy and V heads, which a Q learner does not use, are left alone
            assert torch.equal(sd[k], before[k]), k


def test_the_margin_is_zero_only_where_the_demonstrated_action_wins_by_the_margin():
    n = net(0)
    obs = np.random.default_rng(0).integers(0, 255, (4,) + SPEC.shape, dtype=np.uint8)
    keys = np.tile(np.array([[1, 0, 0]]), (4, 1))  # "left", a keys command: only the command branch counts
    with torch.no_grad():  # Q_cmd = V + (noop 5, left 0, click 0) - mean: noop ahead of the demo by 5
        n.adv_cmd.weight.zero_()
        n.adv_cmd.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    loss = margin_loss(n, obs, keys, 0.8)
    assert abs(loss.item() - 5.8) < 1e-4, loss  # behind by 5, plus the margin
    loss.backward()
    assert n.adv_cmd.bias.grad.abs().sum() > 0
    assert n.adv_x.weight.grad is None or n.adv_x.weight.grad.abs().sum() == 0  # keys teach the pointer nothing
    with torch.no_grad():  # the demonstrated command ahead by 1 > 0.8: the margin is met
        n.adv_cmd.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    assert margin_loss(n, obs, keys, 0.8).item() == 0.0


def test_the_guard_flags_non_finite_and_exploding_values_only():
    g = Guard(factor=100.0, warm=5)
    assert all(g.ok(loss=1.0 + 0.1 * i, q=2.0) for i in range(10))
    assert g.ok(loss=20.0, q=3.0)  # a jump of 20x is learning, not an explosion
    assert not g.ok(loss=float("nan"), q=1.0) and not g.ok(loss=1.0, q=float("inf"))
    assert not g.ok(loss=1e6, q=1.0)
    g.rebase()
    assert g.ok(loss=1e6, q=1.0)  # after a reset the scale is learnt again


def test_updates_on_a_filled_replay_reset_and_anneal_the_horizon():
    args = Args(learning_starts=0, batch_size=8, reset_every=20, reset_quiet=5, n_step_start=10, n_step=3,
                anneal_steps=20, buffer_size=2000)
    learner = SRDQNLearner(net(0), args, None, 1, 4.0, 5)
    rng = np.random.default_rng(0)
    frame = lambda: rng.integers(0, 255, SPEC.shape, dtype=np.uint8)  # noqa: E731
    learner.start_episode(0, frame())
    for t in range(300):
        learner.add(0, np.array([t % 3, t % 4, t % 3]), float(t % 2), t % 50 == 49, False, frame())
        if t % 50 == 49:
            learner.start_episode(0, frame())
    assert n_step_at(args, 0) == 10 and n_step_at(args, 10) in (6, 7) and n_step_at(args, 50) == 3
    for _ in range(25):
        loss, q = learner.update()
        assert np.isfinite(loss) and np.isfinite(q)
        learner.after_update()
    assert learner.n_resets == 1 and learner.last_reset == 20 and learner.quiet_until == 25


def test_a_replay_snapshot_taken_while_the_actor_writes_is_consistent():
    """`FrameReplay.snapshot` copies in chunks while the actor goes on adding transitions between them: every
    transition it keeps must still pair its frame with its action and next frame (each frame carries its write
    count; the action says which frame it was taken on). The actor here writes each time the snapshot is about to
    take the lock (what a thread does between two chunks, but the same on every run): chunks of one slot make the
    copy span hundreds of writes, and the rings go round during it."""
    from hakisa.algos.dqn import FrameReplay

    rb = FrameReplay(2, 2 * 300, (1, 4, 4), 2)
    count = [0, 0]

    def frame(e: int) -> np.ndarray:
        count[e] += 1
        return np.full((1, 4, 4), count[e] % 250, np.uint8)

    def stack(e: int) -> np.ndarray:  # a stack whose newest frame is the next write
        return np.concatenate([np.zeros((1, 4, 4), np.uint8), frame(e)])

    def actor(steps: int) -> None:
        for t in range(steps):
            e = t % 2
            rb.add(e, np.array([count[e], 0, 0]), 1.0, False, False, stack(e))

    class ActorBetweenChunks:
        def __enter__(self):
            actor(4)  # two a window

        def __exit__(self, *exc):
            return False

    for e in range(2):
        rb.start_episode(e, stack(e))
    actor(500)  # 250 of 300 slots a window: not yet wrapped
    snap = rb.snapshot(ActorBetweenChunks())
    assert snap["frames"].shape[1] == rb.filled() < 300
    snap = rb.snapshot(ActorBetweenChunks(), chunk=1)
    back = FrameReplay(2, 2 * 300, (1, 4, 4), 2)
    back.load(snap)
    assert back.wrapped.all() and len(back) > 500
    for e, s in zip(*np.nonzero(back.valid)):
        c = back.actions[e, s, 0]
        assert back.frames[e, s, 0, 0, 0] == c % 250 and back.frames[e, (s + 1) % 300, 0, 0, 0] == (c + 1) % 250
    b = back.sample(64, 3, 0.99, np.random.default_rng(0))
    assert b["obs"].shape == (64, 2, 4, 4)
    small = FrameReplay(2, 2 * 200, (1, 4, 4), 2)
    with pytest.raises(ValueError, match="does not fit"):
        small.load(snap)  # a wrapped ring of 300 slots into one of 200


def test_a_learners_replay_target_and_counters_come_back_from_its_checkpoint(tmp_path):
    """What `hakisa train --resume` keeps of a Q learner (issue 38 part 5): its replay, its target net and its
    counters go through checkpoint/learner.safetensors and config.json; a learner restored from them samples the
    same transitions and goes on counting where the first stopped."""
    from safetensors.numpy import load_file

    from hakisa.model import read_checkpoint_config, save_checkpoint

    args = Args(learning_starts=0, batch_size=8, buffer_size=2000)
    first = SRDQNLearner(net(0), args, None, 1, 4.0, 5)
    rng = np.random.default_rng(0)
    first.start_episode(0, rng.integers(0, 255, SPEC.shape, dtype=np.uint8))
    for t in range(120):
        first.add(0, np.array([t % 3, t % 4, t % 3]), float(t % 2), False, False,
                  rng.integers(0, 255, SPEC.shape, dtype=np.uint8))
    for _ in range(10):
        first.update()
        first.after_update()  # the EMA moves the target away from a copy of the online net
    first.snapshot_wanted.set()
    first.serve_snapshot()
    snap = first.take_snapshot()
    arrays, scalars = snap["state"]
    save_checkpoint(tmp_path / "ck", first.net, {}, {}, optimizer=first.opt, resume={"learner": scalars},
                    arrays={"learner": arrays})

    second = SRDQNLearner(net(1), args, None, 1, 4.0, 5)
    kept = read_checkpoint_config(tmp_path / "ck")["resume"]["learner"]
    assert second.restore(load_file(str(tmp_path / "ck" / "learner.safetensors")), kept, 120, snap["grad_steps"])
    assert len(second.rb) == len(first.rb) == 120 and (second.env_steps, second.grad_steps) == (120, 10)
    for k, v in first.target.state_dict().items():
        assert torch.equal(second.target.state_dict()[k], v), k
    a = first.rb.sample(16, 3, 0.99, np.random.default_rng(5))
    b = second.rb.sample(16, 3, 0.99, np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
