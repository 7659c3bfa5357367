"""stable-retro adapter: the Hakisa contract on a real emulator (Airstriker, shipped with stable-retro).

stable-retro allows ONE emulator per process, so every test closes its env before the next makes one
(the `airstriker` fixture), and the vector test runs its emulators in subprocesses.
"""
from __future__ import annotations

import numpy as np
import pytest

stable_retro = pytest.importorskip("stable_retro", reason="stable-retro is not installed (pip install -e '.[retro]')")

from hakisa.envs.retro import AIRSTRIKER, DEFAULT_SPEC, RetroEnv, make_retro_vec  # noqa: E402
from hakisa.input_map import InputMap  # noqa: E402

pytestmark = pytest.mark.retro
NOOP, LEFT, RIGHT, FIRE = 0, 1, 2, 3  # hakisa/maps/airstriker.json


@pytest.fixture
def retro_env():
    envs = []

    def make(**kw) -> RetroEnv:
        for e in envs:  # one emulator per process
            e.close()
        envs.append(RetroEnv(AIRSTRIKER, **kw))
        return envs[-1]

    yield make
    for e in envs:
        e.close()


def run(env: RetroEnv, actions, seed: int):
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(np.array([a, 0, 0]))
        out.append((obs, r, info))
        if term or trunc:
            break
    return out


def test_contract(retro_env):
    from gymnasium.utils.env_checker import check_env

    env = retro_env()
    imap = InputMap.load("airstriker")
    assert env.input_map.same_as(imap)
    assert env.action_space.nvec.tolist() == [6, 1, 1] and not imap.uses_xy.any()
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == DEFAULT_SPEC.shape == (4, 112, 160)
    assert env.observation_space.contains(obs)
    assert {"score", "lives", "game_score"} <= set(info)
    check_env(env, skip_render_check=True)
    # the frame really goes through the shared preprocess: the last stacked frame is the current screen
    from hakisa.preprocess import preprocess, rgb_to_bgra

    obs, *_ = env.step(np.array([NOOP, 0, 0]))
    # max-pool of the last two frames is what's stacked, so it is at least as bright as the current frame
    assert (obs[-1].astype(int) >= preprocess(rgb_to_bgra(env.render()), DEFAULT_SPEC)[0].astype(int) - 1).all()


def test_bad_map_is_refused():
    with pytest.raises(ValueError, match="not a button"):
        RetroEnv(AIRSTRIKER, input_map=InputMap("bad", [{"name": "jump", "keys": ["space"]}]))


def test_chords_reach_the_emulator(retro_env):
    env = retro_env()
    n = 60
    base = run(env, [NOOP] * n, seed=0)
    left = run(env, [LEFT] * n, seed=0)
    right = run(env, [RIGHT] * n, seed=0)
    # the ship sits in the bottom rows; moving it changes them, noop does not move it
    bottom = slice(80, 112)
    ship = lambda o: o[-1, bottom].astype(np.int32)  # noqa: E731
    assert np.abs(ship(left[-1][0]) - ship(base[-1][0])).sum() > 0
    assert np.abs(ship(right[-1][0]) - ship(base[-1][0])).sum() > 0
    assert np.abs(ship(left[-1][0]) - ship(right[-1][0])).sum() > 0
    # the ship's column: brightest bottom-row mass moves left of / right of where noop leaves it
    col = lambda o: float((ship(o).sum(0) * np.arange(160)).sum() / max(1, ship(o).sum()))  # noqa: E731
    assert col(left[-1][0]) < col(base[-1][0]) < col(right[-1][0])


def test_fire_scores_and_turbo_is_what_makes_held_fire_shoot(retro_env):
    steps = 250
    env = retro_env()
    noop = run(env, [NOOP] * steps, seed=0)
    fire = run(env, [FIRE] * steps, seed=0)
    assert noop[-1][2]["game_score"] == 0  # nobody scores without shooting
    assert fire[-1][2]["game_score"] > 0
    # without the turbo button, a held B is one press: the game's fire-on-press rule, measured
    plain = InputMap.load("airstriker")
    plain = InputMap.from_dict({**plain.to_dict(), "meta": {**plain.meta, "turbo": []}})
    env = retro_env(input_map=plain)
    held = run(env, [FIRE] * steps, seed=0)
    assert held[-1][2]["game_score"] < fire[-1][2]["game_score"]


def test_reward_is_the_score_delta(retro_env):
    rng = np.random.default_rng(1)
    acts = rng.integers(0, 6, 400)
    env = retro_env()
    traj = run(env, acts, seed=2)
    scores = [i["score"] for _, _, i in traj]
    rewards = [r for _, r, _ in traj[1:]]
    assert sum(rewards) > 0, "a random agent should hit something in 400 steps"
    assert rewards == [float(b - a) for a, b in zip(scores, scores[1:])]
    assert traj[-1][2]["game_score"] == sum(rewards)

    env = retro_env(reward="score", life_penalty=50.0, reward_scale=0.1)
    traj = run(env, acts, seed=2)
    for (_, _, prev), (_, r, info) in zip(traj, traj[1:]):
        lost = prev["lives"] - info["lives"]
        assert r == pytest.approx(0.1 * ((info["score"] - prev["score"]) - 50.0 * max(0, lost)))
        assert info["game_reward"] == info["score"] - prev["score"]  # the game's score stays unshaped
    assert any(p["lives"] > i["lives"] for (_, _, p), (_, _, i) in zip(traj, traj[1:])), (
        "no life lost: penalty untested"
    )


def test_same_seed_same_frames(retro_env):
    acts = np.random.default_rng(3).integers(0, 6, 120)
    env = retro_env()
    a = run(env, acts, seed=7)
    b = run(env, acts, seed=7)
    assert len(a) == len(b)
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))
    # seeds pick the number of no-op frames at reset, so different seeds give different episodes
    firsts = {run(env, acts[:40], seed=s)[-1][0].tobytes() for s in range(4)}
    assert len(firsts) > 1


def test_vector_env_two_subprocesses_same_step_autoreset():
    envs = make_retro_vec(AIRSTRIKER, 2, seed=0, max_episode_steps=30)
    try:
        assert envs.num_envs == 2 and envs.input_map.name == "airstriker"
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4, 112, 160) and obs.dtype == np.uint8
        for t in range(30):
            obs, r, term, trunc, info = envs.step(np.array([[FIRE, 0, 0], [LEFT, 0, 0]]))
        # step 30 hit the time limit in both: SAME_STEP hands back the new episode's first obs at once
        assert trunc.all() and not term.any()
        assert info["_final_obs"].all() and info["final_obs"][0].shape == (4, 112, 160)
        assert (info["final_info"]["_game_score"]).all()
        # the new first obs is a reset stack: all four frames equal; the final obs of a moving ship is not
        assert all(np.array_equal(obs[i][0], obs[i][3]) for i in range(2))
        assert not np.array_equal(info["final_obs"][1][0], info["final_obs"][1][3])
        # the two envs really ran different commands in different emulators
        assert not np.array_equal(info["final_obs"][0], info["final_obs"][1])
    finally:
        envs.close()


def test_registered_id_makes_the_adapter():
    import gymnasium as gym

    from hakisa.envs.retro import register

    register()
    env = gym.make("Hakisa/Airstriker-v0", max_episode_steps=5)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 112, 160) and env.unwrapped.input_map.name == "airstriker"
        for _ in range(5):
            *_, term, trunc, _ = env.step(np.array([RIGHT, 0, 0]))
        assert trunc and not term  # the step limit counts agent steps (4 frames each)
    finally:
        env.close()
