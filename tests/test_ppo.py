"""PPO: determinism, the KL early stop, and learning on pixel tasks a non-learner fails."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from hakisa.algos import ppo
from hakisa.algos.ppo_rollout import Rollout
from hakisa.algos.privileged import privileged_heads
from hakisa.envs.make import make_vec
from hakisa.evaluate import evaluate
from hakisa.model import HakisaNet

torch.set_num_threads(1)  # also makes init bit-reproducible (QR results depend on the thread count)


def _net(envs, seed=0):
    # here too, not only at import: an earlier test's setup_torch(0) may have left 2 threads, and the
    # orthogonal init's QR differs with the thread count (the order-dependent failure this fixed)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return HakisaNet(envs.obs_spec, envs.input_map, hidden=64)


def _args(**kw):
    base = dict(num_steps=32, lr=1e-3, clip_coef=0.2, progress=False, threads=1, seed=0)
    return ppo.Args(**{**base, **kw})


def _flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def test_same_seed_same_first_updates_different_seed_differs():
    out = []
    for seed in (3, 3, 4):
        envs = make_vec("Toy/KeyPress-v0", 4, seed=0)
        net = _net(envs, seed=0)
        before = _flat(net)
        ppo.train(envs, _args(total_steps=2 * 4 * 32, seed=seed), None, net=net)
        out.append(_flat(net))
    assert not torch.equal(before, out[0])  # it did update
    assert torch.equal(out[0], out[1])  # same seed: bit-identical weights after two updates
    assert not torch.equal(out[0], out[2])  # another seed samples other actions


def test_kl_early_stop_ends_the_whole_update():
    # 4 epochs x 4 minibatches = 16 gradient steps per update without a KL limit
    envs = make_vec("Toy/KeyPress-v0", 4, seed=0)
    m = ppo.train(
        envs, _args(total_steps=2 * 4 * 32, update_epochs=4, num_minibatches=4, target_kl=None), None, net=_net(envs)
    )
    assert m["grad_steps"] == 2 * 16
    # a tiny limit trips at the latest on the 2nd minibatch (the 1st runs on unchanged weights, KL~0);
    # breaking only the minibatch loop would still run >= 1 step in each of the 4 epochs
    envs = make_vec("Toy/KeyPress-v0", 4, seed=0)
    m = ppo.train(
        envs, _args(total_steps=2 * 4 * 32, update_epochs=4, num_minibatches=4, target_kl=1e-12), None, net=_net(envs)
    )
    assert m["grad_steps"] <= 2 * 2


def _random_return(env_id, episodes=40):
    envs = make_vec(env_id, 8, seed=1)
    envs.reset(seed=1)
    envs.single_action_space.seed(0)
    rets, cur = [], np.zeros(8)
    while len(rets) < episodes:
        _, r, te, tr, _ = envs.step(np.stack([envs.single_action_space.sample() for _ in range(8)]))
        cur += r
        for i in np.flatnonzero(te | tr):
            rets.append(cur[i])
            cur[i] = 0
    return float(np.mean(rets))


def test_ppo_learns_keypress_from_pixels():
    envs = make_vec("Toy/KeyPress-v0", 8, seed=0)
    net = _net(envs)
    ppo.train(envs, _args(total_steps=4096), None, net=net)
    learned = evaluate(net, make_vec("Toy/KeyPress-v0", 8, seed=99), 40, seed=99)["mean_return"]
    untrained = evaluate(_net(envs, seed=1), make_vec("Toy/KeyPress-v0", 8, seed=99), 40, seed=99)["mean_return"]
    random = _random_return("Toy/KeyPress-v0")
    assert random < 5 and untrained < 8  # 16 steps, 5 commands: chance is 3.2
    assert learned > 12, (learned, random, untrained)


def test_ppo_learns_to_click_where_the_dot_is():
    # needs the x/y heads: chance of a correct click is 1/3 * 1/16 per step
    envs = make_vec("Toy/Click-v0", 8, seed=0)
    net = _net(envs)
    ppo.train(envs, _args(total_steps=12_288), None, net=net)
    learned = evaluate(net, make_vec("Toy/Click-v0", 8, seed=99), 40, seed=99)["mean_return"]
    random = _random_return("Toy/Click-v0")
    assert random < 1.5
    assert learned > 8, (learned, random)


def test_ppo_runs_on_the_duel_env_and_its_checkpoint_plays(tmp_path):
    # integration only (learning the duel is benchmarks/bench_duel_learning.py's job): contract, info, checkpoint
    envs = make_vec("Hakisa/Duel-v0", 2, seed=0, tier="normal")
    assert envs.obs_spec.shape == (4, 90, 160) and envs.input_map.name == "duel"
    m = ppo.train(envs, _args(total_steps=2 * 2 * 8, num_steps=8, num_minibatches=2, update_epochs=1), tmp_path / "run")
    assert m["global_step"] == 32
    from hakisa.model import load_checkpoint

    net, cfg = load_checkpoint(tmp_path / "run" / "checkpoint", input_map=envs.input_map, obs_spec=envs.obs_spec)
    assert cfg["algo"]["algo"] == "ppo"
    s = evaluate(net, make_vec("Hakisa/Duel-v0", 2, seed=5, tier="easy"), 2, seed=5)
    assert s["episodes"] == 2 and 0.0 <= s["win_rate"] <= 1.0 and s["mean_length"] > 10


def test_running_mean_std_matches_numpy_over_batches():
    from hakisa.algos.common import RunningMeanStd

    rng = np.random.default_rng(0)
    xs = [rng.normal(3.0, 2.0, size=int(rng.integers(1, 50))) for _ in range(40)]
    rms = RunningMeanStd()
    for x in xs:
        rms.update(x)
    allx = np.concatenate(xs)
    assert rms.mean == pytest.approx(allx.mean(), rel=1e-3)
    assert rms.var == pytest.approx(allx.var(), rel=1e-3)


def test_reward_normalisation_makes_value_targets_scale_free():
    """The same task with rewards x1000: with norm_reward the first update moves the weights the same way
    (advantages and value targets are divided by the return std); without it, the value loss explodes."""
    grads = {}
    for norm in (True, False):
        for scale in (1.0, 1000.0):
            base = make_vec("Toy/KeyPress-v0", 4, seed=0)
            envs = gym.wrappers.vector.TransformReward(base, lambda r, s=scale: r * s)
            envs.obs_spec, envs.input_map = base.obs_spec, base.input_map
            m = ppo.train(
                envs,
                _args(total_steps=4 * 32, norm_reward=norm, update_epochs=1, num_minibatches=1),
                None,
                net=_net(envs),
            )
            grads[norm, scale] = m["value_loss"]
    assert grads[True, 1000.0] == pytest.approx(grads[True, 1.0], rel=0.05)
    assert grads[False, 1000.0] > 1e4 * grads[False, 1.0]


def test_minibatch_frames_gathers_the_same_frames_laid_out_for_the_encoder():
    """The update's gather returns exactly b_obs[mb], channels-last, whatever the batch's layout; vector
    observations (a state env's) come back as rows."""
    frames = torch.randint(0, 256, (40, 4, 9, 16), dtype=torch.uint8)
    mb = torch.randperm(40)[:12]
    for b_obs in (frames, frames.contiguous(memory_format=torch.channels_last)):
        got = ppo.minibatch_frames(b_obs)(mb)
        assert torch.equal(got, frames[mb]) and got.is_contiguous(memory_format=torch.channels_last)
    state = torch.randn(40, 7)
    assert torch.equal(ppo.minibatch_frames(state)(mb), state[mb])


def test_keep_freed_memory_keeps_a_freed_big_tensor_in_the_process():
    """In a fresh process (glibc's default), a freed 64 MB tensor goes back to the OS at once (munmap), so the
    next one page-faults in anew; with keep_freed_memory its pages stay resident, ready for the next tensor."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("keep_freed_memory is a glibc setting (mallopt)")
    probe = (
        "import os, sys, torch\n"
        "from hakisa.algos.common import keep_freed_memory\n"
        "assert sys.argv[1] == 'default' or keep_freed_memory()\n"
        "rss = lambda: int(open(f'/proc/{os.getpid()}/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "before = rss()\n"
        "t = torch.ones(64 << 20, dtype=torch.uint8)\n"
        "del t\n"
        "print(rss() - before)\n"
    )
    kept = {}
    for way in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", probe, way], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        kept[way] = int(out.stdout.split()[-1])
    assert kept["default"] < 8 << 20 and kept["keep"] >= 60 << 20, kept


def test_rollout_stores_the_frames_it_saw_laid_out_so_the_update_gathers_them_without_a_copy():
    """Rollout keeps each step's frames, exactly as the env gave them, in channels-last memory: the update's
    row view of the whole rollout is then that very memory (no copy of the batch), and its gathers equal
    the env's frames."""
    envs = make_vec("Toy/KeyPress-v0", 3, seed=0)
    seen = []
    step = envs.step
    envs.step = lambda a: (out := step(a), seen.append(np.asarray(out[0]).copy()))[0]
    roll = Rollout(envs, _args(num_steps=5))
    first = np.asarray(roll.next_obs).copy()
    roll.collect(_net(envs))
    assert torch.equal(roll.obs, torch.from_numpy(np.stack([first] + seen[:-1])))
    b_obs = roll.obs.flatten(0, 1)
    assert b_obs.is_contiguous(memory_format=torch.channels_last)
    mb = torch.tensor([4, 0, 13])
    got = ppo.minibatch_frames(b_obs)(mb)
    assert torch.equal(got, b_obs[mb])
    n, c, h, w = b_obs.shape
    assert b_obs.permute(0, 2, 3, 1).reshape(n, h * w * c).data_ptr() == roll.obs.data_ptr()
    envs.close()


def test_setup_torch_takes_one_thread_only_while_other_processes_keep_the_cores_busy():
    """threads=0 means every core up to 2, or 1 while other processes hold the cores, measured over a short
    window now: busy spinners (this test's own, ended here) count at once (a second of them barely moves the
    one-minute load average setup_torch used to read), and once they end they no longer do."""
    import os
    import subprocess
    import sys
    import time

    from hakisa.algos.common import busy_cores_elsewhere, setup_torch

    cpus = os.cpu_count() or 1
    if cpus < 2:
        pytest.skip("one core: setup_torch always takes 1 thread")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        time.sleep(1.0)
        assert busy_cores_elsewhere() > cpus - 0.5
        setup_torch(0)
        assert torch.get_num_threads() == 1
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    # once they end, 2 threads again, unless other processes of the machine still hold the cores: then
    # every measurement while we retry must have seen them busy (a loaded CI runner, a user's other work)
    time.sleep(0.5)
    seen, deadline = [], time.monotonic() + 10
    while True:
        setup_torch(0)
        if torch.get_num_threads() == min(2, cpus):
            break
        seen.append(round(busy_cores_elsewhere(), 2))
        if time.monotonic() > deadline:
            assert min(seen) > cpus - 1.0, f"1 thread although the cores were free: busy elsewhere {seen}"
            break
    torch.set_num_threads(1)  # as this file's other tests expect


def test_bench_train_runs_both_learners_and_prints_its_json():
    """`hakisa duel bench-train` end to end at a tiny size: both learners really run on the same env and net
    (SB3 through our encoder), and the JSON carries both rates, their ratio and the floor (what a PPO with
    no overhead would reach). Speed is the benchmark's business, not this test's."""
    import json
    import subprocess
    import sys

    pytest.importorskip("stable_baselines3")
    out = subprocess.run(
        [sys.executable, "-m", "hakisa.cli", "duel", "bench-train", "--num-envs", "2", "--steps", "256",
         "--repeats", "1", "--json-only"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ours_sps"] > 0 and res["sb3_sps"] > 0 and res["ours_bf16_sps"] > 0
    assert res["ratio"] == pytest.approx(res["ours_sps"] / res["sb3_sps"], rel=0.02)
    # SB3 also timed with the allocator setting our learners make, its ratios beside the headline ones
    assert res["sb3_same_allocator_sps"] > 0
    assert res["ratio_same_allocator"] == pytest.approx(res["ours_sps"] / res["sb3_same_allocator_sps"], rel=0.02)
    # the floor: the parts every PPO runs, timed alone; overlapping them on every core can only be faster
    for f in res["floor"].values():
        assert 0 < f["update_ms_overlap"] <= f["update_ms_serial"]
        assert f["ceiling_overlap"] >= f["ceiling_serial"] > 0
        assert f["ceiling_serial"] == pytest.approx(f["sps_serial"] / res["sb3_sps"], rel=0.02)
    # a floor that our whole PPO (sampling, GAE, bookkeeping and all) beat by 2x would not be a floor
    assert res["ours_sps"] < 2 * res["floor"]["fp32"]["sps_overlap"]


def test_privileged_critic_trains_but_stays_out_of_the_checkpoint(tmp_path):
    """critic=state and aux_coef read the duel sim's true state in training; the saved agent is the pixel
    net alone (the same tensors as a fresh HakisaNet), and it loads and plays with no state at hand."""
    from safetensors.torch import load_file

    from hakisa.model import load_checkpoint

    envs = make_vec("Hakisa/Duel-v0", 2, seed=0, tier="normal")
    assert envs.state().shape[0] == 2  # the duel sim can show its true state...
    args = _args(total_steps=2 * 2 * 8, num_steps=8, num_minibatches=2, update_epochs=1, critic="state", aux_coef=1.0)
    torch.manual_seed(0)
    priv = privileged_heads(envs, args, 64)
    assert priv.critic is not None and priv.aux is not None
    net = _net(envs)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ppo.train(envs, args, tmp_path / "run", net=net)
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())  # it did learn something
    saved = load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))
    assert set(saved) == set(before)  # ...but no critic or aux tensor is saved with the agent
    loaded, _ = load_checkpoint(tmp_path / "run" / "checkpoint", input_map=envs.input_map, obs_spec=envs.obs_spec)

    env = make_vec("Hakisa/Duel-v0", 2, seed=5, tier="easy")

    def no_state():  # a window shows pixels only: anything asking it for the true state fails the test
        raise AssertionError("playing asked for the true state")

    env.state = no_state
    s = evaluate(loaded, env, 2, seed=5)
    assert s["episodes"] == 2


def test_privileged_options_need_an_env_that_shows_its_state():
    envs = make_vec("Toy/KeyPress-v0", 2, seed=0)
    with pytest.raises(ValueError, match="no state"):
        ppo.train(envs, _args(total_steps=64, critic="state"), None, net=_net(envs))
    with pytest.raises(ValueError, match="critic='value'"):
        ppo.train(envs, _args(total_steps=64, critic="value"), None, net=_net(envs))
    assert privileged_heads(envs, _args(), 64) is None  # the default needs nothing


def test_a_live_windows_segment_gets_the_rollouts_gae_and_reward_scale():
    """The live PPO learner's batches (per-window segments, `done` = that step ended a game) go through ppo.py's
    `gae` and the rollout's `RewardScaler`: checked against the recursion by hand, a game ending mid-segment."""
    from hakisa.algos.common import RewardScaler
    from hakisa.algos.live_ppo import PPOLearner

    envs = make_vec("Toy/KeyPress-v0", 1, seed=0)
    net = _net(envs)
    args = ppo.LiveArgs(gamma=0.9, gae_lambda=0.5, norm_reward=False, progress=False)
    learner = PPOLearner(net, args, None, n_envs=2)
    obs = np.zeros(envs.single_observation_space.shape, np.uint8)
    rew, val, done = [1.0, 0.0, 2.0, 0.5], [0.5, 0.2, 0.1, 0.3], [False, True, False, False]
    seg = [(obs, np.zeros(3, np.int64), -1.0, v, r, d) for r, v, d in zip(rew, val, done)]
    with torch.inference_mode():
        last_v = float(net.policy(torch.from_numpy(obs[None]))[3])
    _, _, _, adv, ret, v = learner._gae([(1, seg, obs)])
    want, run = np.zeros(4), 0.0
    for t in reversed(range(4)):
        nextv = last_v if t == 3 else val[t + 1]
        delta = rew[t] + 0.9 * nextv * (not done[t]) - val[t]
        run = delta + 0.9 * 0.5 * (not done[t]) * run
        want[t] = run
    assert adv.numpy() == pytest.approx(want, abs=1e-5)
    assert ret.numpy() == pytest.approx(want + np.array(val), abs=1e-5)

    # the scale: each window's discounted return carries over its segments, and resets where a game ended
    s = RewardScaler(2, 0.9)
    a = s.segment(0, np.array([1.0, 1.0]), np.array([False, False]))
    b = s.segment(0, np.array([1.0]), np.array([True]))
    assert s.acc.tolist() == [0.0, 0.0] and s.rms.count == pytest.approx(3, abs=1e-3)
    assert s.rms.mean == pytest.approx(np.mean([1.0, 1.9, 2.71]), rel=1e-3)
    assert a[0] == a[1] != 1.0  # one statistics update per segment: one scale for all its steps
    assert b[0] == pytest.approx(1.0 / np.sqrt(s.rms.var + 1e-8))  # the stats after the segment's own update
