"""The duel's Gymnasium envs and renderer: checker, determinism, SAME_STEP autoreset, reward/info, SB3, pixels."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hakisa.games.duel  # noqa: F401  (registers Hakisa/Duel-v0)
from hakisa.games.duel.env import DuelEnv, DuelVecEnv
from hakisa.games.duel.render import ObsRenderer, palette_bgra, render_bgra
from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim, load_rules
from hakisa.preprocess import ObsSpec, preprocess

ATTACK, NOOP = 4, 0


def _random_sim_rects(n: int, seed: int) -> np.ndarray:
    """Draw lists of many real fight states (random keys held 1-12 ticks, snapshots along the way)."""
    rng = np.random.default_rng(seed)
    sim = DuelSim(n, tier=["easy", "normal", "hard"] * (n // 3) + ["hard"] * (n % 3), seed=seed)
    out = []
    for _ in range(12):
        for _ in range(int(rng.integers(1, 60))):
            sim.step(COMMAND_KEYS[rng.integers(0, 8, n)])
        out.append(sim.draw_rects())
        sim.reset(mask=sim.done)
    return np.concatenate(out)


def _random_grid_rects(n: int, r: int, seed: int, n_colours: int) -> np.ndarray:
    """Arbitrary grid-aligned rect lists (overlapping, edge-touching, empty slots): beyond what the sim draws."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 160, (n, r)) * 4
    y = rng.integers(0, 90, (n, r)) * 4
    w = np.minimum(rng.integers(0, 60, (n, r)) * 4, 640 - x)
    h = np.minimum(rng.integers(0, 40, (n, r)) * 4, 360 - y)
    c = rng.integers(0, n_colours, (n, r))
    return np.stack([x, y, w, h, c], -1).astype(np.int32)


@pytest.mark.parametrize("spec", [ObsSpec(), ObsSpec(gray=False, stack=2), ObsSpec(width=320, height=180),
                                  ObsSpec(width=80, height=45), ObsSpec(width=80, height=45, gray=False),
                                  ObsSpec(width=84, height=84)],
                         ids=["gray160", "rgb160", "gray320", "gray80coarse", "rgb80coarse", "generic84"])
def test_fast_obs_equals_shared_preprocess_of_canvas_render(spec):
    pal = palette_bgra(load_rules())
    renderer = ObsRenderer(pal, spec)
    assert renderer.fast == (spec.width in (160, 320))
    assert (renderer.coarse is not None) == (spec.width == 80)  # 80x45: exact grid render, then INTER_AREA
    n = 120 if renderer.fast or renderer.coarse is not None else 24
    mixed = _random_grid_rects(n, 18, seed=5, n_colours=len(pal))
    mixed[:, 1:9, 1] = np.maximum(mixed[:, 1:9, 1], 8)  # slots shared by every frame, over and under the others:
    mixed[:, 1:9, 3] = np.minimum(mixed[:, 1:9, 3], 360 - mixed[:, 1:9, 1])  # the renderer may bake only those
    mixed[:, [0, 12]] = mixed[0, [0, 12]]                                      # that nothing earlier overlaps
    mixed[:, 4], mixed[:, 9] = [100, 40, 400, 200, 3], [600, 0, 40, 8, 5]
    if renderer.fast:
        assert renderer._baked_slots(mixed)[[0, 9]].all() and not renderer._baked_slots(mixed)[4]
    for rects in (_random_sim_rects(n // 12 + 1, seed=1), _random_grid_rects(n, 18, seed=2, n_colours=len(pal)), mixed):
        fast = renderer.render(rects)
        ref = preprocess(render_bgra(rects, pal, 1), spec)  # the definition: shared preprocess of the canvas
        assert fast.dtype == np.uint8 and fast.shape == (len(rects), *spec.frame_shape)
        assert np.array_equal(fast, ref)
    # the model-resolution BGRA render is the 4x INTER_AREA downscale of the canvas render, exactly
    rects = _random_sim_rects(20, seed=3)
    small = render_bgra(rects, pal, 4)
    import cv2

    assert np.array_equal(small[5], cv2.resize(render_bgra(rects[5], pal, 1), (160, 90), interpolation=cv2.INTER_AREA))


def test_sim_draw_lists_are_on_the_grid():
    rects = _random_sim_rects(30, seed=4)
    assert (rects[..., :4] % 4 == 0).all()
    assert ((rects[..., 0] + rects[..., 2]) <= 640).all() and ((rects[..., 1] + rects[..., 3]) <= 360).all()


def test_check_env_and_make():
    check_env(gym.make("Hakisa/Duel-v0").unwrapped)
    env = gym.make("Hakisa/Duel-v0", tier="hard")
    obs, info = env.reset(seed=3)
    assert obs.shape == (4, 90, 160) and obs.dtype == np.uint8
    assert env.action_space == gym.spaces.MultiDiscrete([8, 1, 1])
    assert set(info) >= {"knight_hp", "boss_hp", "stamina", "winner", "ticks"}
    assert env.unwrapped.fights.sim.get(0) == DuelSim(1, tier="hard", seed=3).get(0)  # seed s == the page's seed s
    assert env.render() is None
    frame = gym.make("Hakisa/Duel-v0", render_mode="rgb_array")
    frame.reset(seed=0)
    assert frame.render().shape == (360, 640, 3)
    vec = gym.make_vec("Hakisa/Duel-v0", num_envs=3, vectorization_mode="vector_entry_point", tier="easy")
    assert isinstance(vec.unwrapped, DuelVecEnv) and vec.num_envs == 3
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP


def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [obs.copy()]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out += [
            obs.copy(),
            np.asarray(r),
            np.asarray(term),
            {k: np.asarray(v) for k, v in info.items() if k in ("knight_hp", "boss_hp", "ticks")},
        ]
        if np.ndim(term) == 0 and term:
            obs, _ = env.reset()
    return out


def _same(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) if isinstance(x, dict) for k in x) and all(
        np.array_equal(x, y) for x, y in zip(a, b) if not isinstance(x, dict)
    )


def test_seeded_determinism():
    rng = np.random.default_rng(0)
    acts = [np.array([c, 0, 0]) for c in rng.integers(0, 8, 150)]
    assert _same(_rollout(DuelEnv(), 11, acts), _rollout(DuelEnv(), 11, acts))
    assert not _same(_rollout(DuelEnv(), 11, acts), _rollout(DuelEnv(), 12, acts))
    vacts = [rng.integers(0, 8, (6, 1)) * np.array([1, 0, 0]) for _ in range(150)]
    assert _same(_rollout(DuelVecEnv(6, seed=None), 5, vacts), _rollout(DuelVecEnv(6, seed=None), 5, vacts))
    # a vector env's fight i with seed s is the single env's fight with seed s+i
    single = _rollout(DuelEnv(), 7, [a[2] for a in vacts[:40]])
    vec = _rollout(DuelVecEnv(6), 5, vacts[:40])
    obs_of = lambda out: [out[0]] + out[1::4]  # noqa: E731
    assert all(np.array_equal(s, v[2]) for s, v in zip(obs_of(single), obs_of(vec), strict=True))


def _finish(env: DuelVecEnv, i: int, knight_wins: bool):
    """Put fight i one blow from the end: boss at 10 HP with the knight in reach (it attacks), or time nearly up."""
    s, rules = env.fights.sim.state, env.fights.rules
    if knight_wins:  # one clean hit left; the boss walks (no guard) and will not re-decide for a while
        s["b_hp"][i], s["kx"][i] = rules["knight"]["attack_damage"], s["bx"][i] - 50 * rules["fp"]
        s["b_act"][i], s["b_dec"][i], s["b_t"][i] = 1, 60, 0
    else:
        s["tick"][i] = env.fights.rules["time_limit"] - 2


def _step_until_end(env, i, acts, max_steps=8):
    """Step until fight i ends; returns (obs, rew, term, trunc, info, hp-before-last-step, last obs before, steps)."""
    obs = env.fights.obs
    for step in range(1, max_steps + 1):
        before = {k: env.fights.sim.state[k].copy() for k in ("k_hp", "b_hp")}
        last_obs = obs.copy()
        obs, rew, term, trunc, info = env.step(acts)
        if term[i]:
            return obs, rew, term, trunc, info, before, last_obs, step
    raise AssertionError(f"fight {i} did not end")


def _check_same_step_reset(env, obs, term, info, last_obs, i):
    # SAME_STEP: the finished fight's returned obs is already a fresh fight (a stack of 4 identical first frames);
    # final_obs is the old fight's last stack, which continues last_obs by one frame
    assert info["_final_obs"][i] and info["_final_info"][i] and info["_episode"][i]
    assert not info["_final_obs"][~term].any() and not info["_episode"][~term].any()
    assert all(np.array_equal(obs[i, 0], obs[i, k]) for k in range(4))
    assert np.array_equal(info["final_obs"][i, :3], last_obs[i, 1:])
    assert not np.array_equal(info["final_obs"][i], obs[i])
    assert env.fights.sim.state["tick"][i] == 0 and env.fights.sim.state["b_hp"][i] == env.fights.rules["boss"]["hp"]


def test_vector_same_step_autoreset_reward_and_info():
    coef = dict(dealt_coef=0.5, taken_coef=0.25, win_bonus=3.0, loss_penalty=7.0)
    env = DuelVecEnv(4, seed=0, **coef)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 4, 90, 160) and info["_winner"].all()
    for _ in range(3):
        env.step(np.zeros((4, 3), int))

    # a win: fight 1's boss at 10 HP, the knight in reach attacks
    _finish(env, 1, knight_wins=True)
    acts = np.array([[NOOP, 0, 0], [ATTACK, 0, 0], [NOOP, 0, 0], [NOOP, 0, 0]])
    obs, rew, term, trunc, info, before, last_obs, steps = _step_until_end(env, 1, acts)
    assert term[1] and not term[[0, 2, 3]].any() and not trunc.any()
    assert info["winner"][1] == 1 and info["final_info"]["winner"][1] == 1 and info["boss_hp"][1] == 0
    assert (info["winner"][[0, 2, 3]] == 0).all()
    assert info["episode"]["l"][1] == 3 + steps
    dealt, taken = before["b_hp"][1] - info["boss_hp"][1], before["k_hp"][1] - info["knight_hp"][1]
    assert dealt == env.fights.rules["knight"]["attack_damage"] and rew[1] == pytest.approx(
        0.5 * dealt - 0.25 * taken + 3.0
    )
    _check_same_step_reset(env, obs, term, info, last_obs, 1)
    assert np.array_equal(obs[1], DuelVecEnv(1).reset(seed=0)[0][0])  # same first frame as any fresh fight

    # a loss: fight 2 runs out of time (the knight loses at the time limit)
    _finish(env, 2, knight_wins=False)
    obs, rew, term, trunc, info, before, last_obs, steps = _step_until_end(env, 2, np.zeros((4, 3), int))
    assert steps == 1 and info["winner"][2] == 2 and info["ticks"][2] == env.fights.rules["time_limit"]
    taken, dealt = before["k_hp"][2] - info["knight_hp"][2], before["b_hp"][2] - info["boss_hp"][2]
    assert rew[2] == pytest.approx(0.5 * dealt - 0.25 * taken - 7.0)
    _check_same_step_reset(env, obs, term, info, last_obs, 2)
    obs2, *_ = env.step(np.zeros((4, 3), int))
    assert obs2 is not obs  # a fresh array per step: stored rollouts are never overwritten


def test_episode_return_sums_rewards():
    env = DuelVecEnv(8, seed=3, tier="easy", frame_skip=16)  # 16 ticks a decision: whole fights, quickly
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    total = np.zeros(8)
    seen = 0
    for _ in range(400):  # the time limit (5400 ticks) ends every fight within 338 decisions
        obs, r, term, trunc, info = env.step(rng.integers(0, 8, (8, 1)) * np.array([1, 0, 0]))
        total += r
        for i in np.flatnonzero(term):
            assert info["episode"]["r"][i] == pytest.approx(total[i], rel=1e-5, abs=1e-4)
            assert info["winner"][i] in (1, 2)
            total[i] = 0
            seen += 1
    assert seen >= 8


def test_stable_baselines3_ppo_builds_and_steps_it_unchanged():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import Logger

    model = sb3.PPO("CnnPolicy", DuelEnv(tier="easy"), n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.set_logger(Logger(None, []))  # SB3's default makes a /tmp/SB3-<date> folder per run, left behind
    model.learn(total_timesteps=16)  # one rollout + one update: it builds, steps and trains on the env as is
    obs, _ = DuelEnv().reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert DuelEnv().action_space.contains(action)


def test_serve_serves_the_page_and_the_one_rules_file():
    import json
    import urllib.request

    from hakisa.games.duel.web import RULES_PATH, page_url, start_server

    server = start_server(0)
    try:
        url = page_url(server, "hard")
        html = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "<title>Hakisa Duel</title>" in html and "core.js" in html and "page.js" in html
        base = url.rsplit("/", 1)[0]
        rules = json.loads(urllib.request.urlopen(base + "/rules.json", timeout=5).read())
        assert rules == json.loads(RULES_PATH.read_text())  # the sim's file, byte for byte the same rules
        for f in ("core.js", "page.js", "style.css"):
            assert urllib.request.urlopen(f"{base}/{f}", timeout=5).status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_per_fight_tiers_and_bench_json(capsys):
    import json

    env = DuelVecEnv(3, tier=["easy", "normal", "hard"])
    assert env.fights.sim.state["tier"].tolist() == [0, 1, 2]
    from hakisa.cli import main

    assert main(["duel", "bench", "--num-envs", "8", "--steps", "5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_envs"] == 8 and result["sim_ticks_per_s"] > 0 and result["env_steps_per_s"] > 0


def test_action_delay_holds_keys_back_exactly_that_many_ticks():
    """Walking right from the same fight: with action_delay=d the knight's x trail is the undelayed one
    shifted by d ticks (it stands still meanwhile), and a new fight starts with nothing in flight."""
    from hakisa.games.duel.env import DuelVecEnv

    def trail(delay: int) -> list[int]:
        env = DuelVecEnv(1, seed=5, frame_skip=1, action_delay=delay, obs_spec=ObsSpec(width=80, height=45))
        env.reset(seed=5)
        xs = []
        for _ in range(12):
            env.step(np.array([2]))  # right
            xs.append(int(env.fights.sim.state["kx"][0]))
        env.fights.reset(seed=5)  # a fresh fight: the queued "right"s must not leak into it
        x0 = int(env.fights.sim.state["kx"][0])
        env.step(np.array([0]))
        assert int(env.fights.sim.state["kx"][0]) == x0
        return xs

    base = trail(0)
    assert base[0] != base[-1]  # it does walk
    for d in (3, 5):
        xs = trail(d)
        assert xs[:d] == [xs[0]] * d and xs[d:] == base[: 12 - d], (d, xs, base)


def test_stack_ticks_decides_every_tick_but_stacks_frames_four_ticks_apart():
    """frame_skip=1, stack_ticks=4 (a per-tick clone of a 15 fps recording): holding each command for 4
    single-tick steps gives, at every 4th step, exactly the frame_skip=4 env's stack, also after a fight
    restarts; in between, the newest frame is the current tick's and the older ones 4, 8, 12 ticks back."""
    from hakisa.games.duel.env import DuelVecEnv

    spec = ObsSpec(width=80, height=45)
    coarse = DuelVecEnv(3, seed=11, frame_skip=4, obs_spec=spec)
    fine = DuelVecEnv(3, seed=11, frame_skip=1, stack_ticks=4, obs_spec=spec)
    o4, _ = coarse.reset(seed=11)
    o1, _ = fine.reset(seed=11)
    assert np.array_equal(o4, o1)
    rng = np.random.default_rng(0)
    singles = []  # every tick's newest frame
    for step in range(10):
        if step == 5:  # fight 0 restarts: its history must be the new first frame only
            for env in (coarse, fine):
                env.fights.reset(mask=np.array([True, False, False]))
            assert np.array_equal(coarse.fights.obs, fine.fights.obs)
        cmd = rng.integers(0, 8, size=3)
        o4, *_ = coarse.step(cmd)
        for _ in range(4):
            o1, *_ = fine.step(cmd)
            singles.append(o1[:, -1])
        assert np.array_equal(o4, o1), step
    o1b, *_ = fine.step(cmd)  # one more tick: newest frame now, the others 4, 8 and 12 ticks before it
    singles.append(o1b[:, -1])
    assert np.array_equal(o1b, np.stack(singles[-13::4], 1))
    assert not np.array_equal(o1b, o1)
    with pytest.raises(ValueError, match="multiple of frame_skip"):
        DuelVecEnv(1, frame_skip=4, stack_ticks=6)
