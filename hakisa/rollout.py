"""What a checkpoint plays, and a batch of real observations from it playing: shared by diagnose, plot and arena.

    game_or_env = target_for(config)                      # a Game, or an env id such as a stable-retro game
    with open_envs(game_or_env, 8, seed=0) as envs: ...   # its simulator, its live window, or the env id's
    data = collect_observations(config, 256, net=net)     # obs, actions, discounted returns

A checkpoint does not record an env id; it records its input map and, when a study made it, its game.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch


@contextmanager
def torch_threads(n: int):
    """Temporarily set torch's intra-op threads (0: leave as is). Evaluation batches are tiny (one
    observation per env): a 2nd thread gains little there and, on a busy shared box, spin-waiting
    threads made each forward ~15x slower. Restored afterwards, so a notebook's training keeps its own."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def target_for(config: dict, env: str | None = None):
    """`env` (a game name or file, or an env id) if given; else the game the checkpoint's config names, or
    the shipped game whose input map it uses; else the env id its input map names. A Game or an env id."""
    from hakisa.game import Game, GameFileError

    names = [env] if env else []
    algo = config.get("algo", {}) or {}
    names += [algo.get("game_file"), algo.get("game"), config.get("input_map", {}).get("name")]
    for name in names:
        if not isinstance(name, str):
            continue
        try:
            return Game.load(name)
        except GameFileError:
            if name == env and "/" in env and not env.endswith((".json", ".yaml", ".yml")):
                return env  # an env id (Toy/KeyPress-v0, Airstriker-Genesis-v0)
    if env:
        return env
    game = config.get("input_map", {}).get("meta", {}).get("game")
    if isinstance(game, str) and game.endswith("-v0"):
        return game
    for name, env_id in (("toy-keypress", "Toy/KeyPress-v0"), ("toy-click", "Toy/Click-v0")):
        if config.get("input_map", {}).get("name") == name:
            return env_id
    raise GameFileError(f"cannot tell which game checkpoint input map {config.get('input_map', {}).get('name')!r} "
                     "plays: pass --env GAME|ENV_ID")


@contextmanager
def open_envs(target, n: int, seed: int = 0, opts: dict | None = None, obs_spec=None, **env_kwargs):
    """A SAME_STEP vector env for a Game (its simulator; a window-only game: one live window) or an env id,
    rendering at `obs_spec` (a checkpoint's). Closed, and a live window shut, on exit."""
    import gymnasium as gym

    from hakisa.game import Game
    from hakisa.preprocess import ObsSpec

    spec = None if obs_spec is None else obs_spec if isinstance(obs_spec, ObsSpec) else ObsSpec.from_dict(obs_spec)
    if spec is not None:
        spec = replace(spec, crop=None)  # a simulator renders the canvas alone: a window's crop does not apply
    if isinstance(target, Game) and not target.sim:
        with target.open(opts=opts) as live:
            env = target.screen_env(live, obs_spec=spec or target.obs_spec)
            envs = gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
            envs.obs_spec, envs.input_map = env.obs_spec, env.input_map
            try:
                yield envs
            finally:
                envs.close()
        return
    if isinstance(target, Game):
        envs = target.sim_vec(n, seed=seed, opts=opts, **({"obs_spec": spec} if spec else {}), **env_kwargs)
    else:
        from hakisa.envs.make import make_vec

        kw = dict(env_kwargs)
        if spec is not None and not target.startswith("Toy/"):
            kw["obs_spec"] = spec
        envs = make_vec(target, n, seed=seed, **kw)
    try:
        yield envs
    finally:
        envs.close()


def target_name(target) -> str:
    return getattr(target, "name", target)


def collect_observations(config: dict, n: int, env: str | None = None, seed: int = 0, net=None,
                         num_envs: int = 8, opts: dict | None = None, gamma: float = 0.99) -> dict:
    """Roll out `net` (sampling its policy; uniform random actions if net is None) in the checkpoint's
    game until `n` observations are gathered. Returns obs [n, C, H, W] uint8, actions [n, 3],
    returns [n] (discounted, bootstrapped with V at the cut), and env_id (the game's name or the env id)."""
    target = target_for(config, env)
    num_envs = max(1, min(num_envs, n))
    with open_envs(target, num_envs, seed, opts, config.get("obs_spec")) as envs:
        num_envs = envs.num_envs
        steps = -(-n // num_envs)
        obs, _ = envs.reset(seed=seed)
        O, A, R, D = [], [], [], []
        for _ in range(steps):
            o = np.asarray(obs)
            if net is not None:
                a = net.act(torch.from_numpy(np.ascontiguousarray(o)), "sample").numpy()
            else:
                a = np.stack([envs.single_action_space.sample() for _ in range(num_envs)])
            obs, r, term, trunc, _ = envs.step(a)
            O.append(o.copy())
            A.append(a)
            R.append(np.asarray(r, np.float64))
            D.append(np.logical_or(term, trunc))
        last_v = np.zeros(num_envs)
        if net is not None:
            with torch.no_grad():
                last_v = net.policy(torch.from_numpy(np.ascontiguousarray(np.asarray(obs))))[3].double().numpy()
    ret, G = np.zeros((steps, num_envs)), last_v
    for t in reversed(range(steps)):  # SAME_STEP autoreset: a done step's return stops at its own reward
        G = R[t] + gamma * G * (1.0 - D[t])
        ret[t] = G
    # [steps, envs, ...] flattened step-major: the first n observations cover every env
    return {"obs": np.stack(O).reshape(-1, *O[0].shape[1:])[:n], "actions": np.stack(A).reshape(-1, 3)[:n],
            "returns": ret.reshape(-1)[:n].astype(np.float32), "env_id": target_name(target)}
