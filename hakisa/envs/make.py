"""Pick an env by id: the one place that maps an id to a constructor, knowing no game by name.

    make_vec("Hakisa/Duel-v0", 8, tier="normal")   -> the vector_entry_point its game registered (DuelVecEnv)
    make_vec("Airstriker-Genesis-v0", 4)           -> hakisa.envs.retro.make_retro_vec (subprocesses)
    make_vec("Toy/KeyPress-v0", 8)                 -> SyncVectorEnv of the toy envs
A game's simulator registers its id with Gymnasium (string entry points) when its package is imported; the
shipped game file that names the id (`sim.env`) also names that package (`sim.module`), so an id is found
without anyone importing the game first (hakisa.game_file.sim_module). Every vector env here uses
Gymnasium's SAME_STEP autoreset. `contract(env)` returns the (ObsSpec, InputMap) a learner needs to build a
HakisaNet for it.
"""
from __future__ import annotations

import importlib

import gymnasium as gym

from hakisa.game_file import sim_module
from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec


def registered(env_id: str):
    """The Gymnasium spec of `env_id`, importing the package a shipped game file names for it if need be;
    None for an id nobody registers (a stable-retro game, a toy)."""
    if env_id not in gym.registry and (module := sim_module(env_id)):
        importlib.import_module(module)
    return gym.registry.get(env_id)


def make_vec(env_id: str, n: int, seed: int = 0, **kw) -> gym.vector.VectorEnv:
    """A SAME_STEP-autoreset vector env of `n` copies, with `.obs_spec` and `.input_map` set."""
    spec = None if env_id.startswith("Toy/") else registered(env_id)
    if spec is not None and spec.vector_entry_point:  # a simulator that batches its own copies
        from gymnasium.envs.registration import load_env_creator

        creator = load_env_creator(spec.vector_entry_point)
        envs = creator(num_envs=n, seed=seed, **{**spec.kwargs, **kw})
    elif env_id.startswith("Toy/"):
        from hakisa.envs.toy import TOY_ENVS

        cls = TOY_ENVS[env_id]
        envs = gym.vector.SyncVectorEnv([lambda: cls(**kw) for _ in range(n)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        envs.reset(seed=seed)
    else:  # anything else is a stable-retro game id (the retro engineer's adapter)
        from hakisa.envs.retro import make_retro_vec

        envs = make_retro_vec(env_id, n, seed=seed, **kw)
    spec, imap = contract(envs)
    envs.obs_spec, envs.input_map = spec, imap  # plain attributes, so learners need not dig
    return envs


def make_env(env_id: str, **kw) -> gym.Env:
    """One (non-vector) env, for the live window or a quick look."""
    if env_id.startswith("Toy/"):
        from hakisa.envs.toy import TOY_ENVS

        return TOY_ENVS[env_id](**kw)
    registered(env_id)
    return gym.make(env_id, **kw)


def contract(env) -> tuple[ObsSpec, InputMap]:
    """The env's ObsSpec and InputMap: from attributes when it has them (ours do), else inferred."""
    spec = imap = None
    for obj in (env, getattr(env, "unwrapped", None)):
        if obj is None:
            continue
        spec = spec or getattr(obj, "obs_spec", None)
        imap = imap or getattr(obj, "input_map", None)
    if (spec is None or imap is None) and hasattr(env, "get_attr"):  # Sync/AsyncVectorEnv
        for name in ("obs_spec", "input_map"):
            try:
                val = env.get_attr(name)[0]
            except Exception:
                continue
            spec = spec or (val if name == "obs_spec" else None)
            imap = imap or (val if name == "input_map" else None)
    space = getattr(env, "single_observation_space", None) or env.observation_space
    if spec is None:  # assume a gray frame stack, the default
        c, h, w = space.shape
        spec = ObsSpec(width=w, height=h, gray=True, stack=c)
    if imap is None:  # never guessed from the action space's size: two games can share one
        raise ValueError(f"cannot tell the input map of {env}: give the env an `input_map` attribute")
    return spec, imap
