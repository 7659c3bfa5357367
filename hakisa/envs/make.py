"""Pick an env by id: the one place that knows which constructor serves which game.

    make_vec("Hakisa/Duel-v0", 8, tier="normal")   -> hakisa.envs.duel.env.DuelVecEnv (numpy-batched)
    make_vec("Airstriker-Genesis-v0", 4)           -> hakisa.envs.retro.make_retro_vec (subprocesses)
    make_vec("Toy/KeyPress-v0", 8)                 -> SyncVectorEnv of the toy envs
Every vector env here uses Gymnasium's SAME_STEP autoreset. `contract(env)` returns the
(ObsSpec, InputMap) a learner needs to build a HakisaNet for it.
"""
from __future__ import annotations

import gymnasium as gym

from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec

DUEL_ID = "Hakisa/Duel-v0"


def make_vec(env_id: str, n: int, seed: int = 0, **kw) -> gym.vector.VectorEnv:
    """A SAME_STEP-autoreset vector env of `n` copies, with `.obs_spec` and `.input_map` set."""
    if env_id == DUEL_ID:
        from hakisa.envs.duel.env import DuelVecEnv

        envs = DuelVecEnv(n, seed=seed, **kw)
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
    if env_id == DUEL_ID:
        import hakisa.envs.duel  # noqa: F401  registers the id

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
