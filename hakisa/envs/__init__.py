"""Gymnasium envs. Importing this registers "Hakisa/Duel-v0" (`import hakisa` imports it).

    env = gymnasium.make("Hakisa/Duel-v0", tier="normal")                  # one fight: DuelEnv
    vec = gymnasium.make_vec("Hakisa/Duel-v0", num_envs=64, vectorization_mode="vector_entry_point")  # DuelVecEnv
The entry points are strings, so registering imports nothing heavy.
"""
import gymnasium

if "Hakisa/Duel-v0" not in gymnasium.registry:
    gymnasium.register(
        id="Hakisa/Duel-v0",
        entry_point="hakisa.envs.duel.env:DuelEnv",
        vector_entry_point="hakisa.envs.duel.env:DuelVecEnv",
    )

if "Hakisa/Airstriker-v0" not in gymnasium.registry:  # needs the `retro` extra only when made
    gymnasium.register(id="Hakisa/Airstriker-v0", entry_point="hakisa.envs.retro:RetroEnv",
                       kwargs={"game": "Airstriker-Genesis-v0"}, vector_entry_point="hakisa.envs.retro:airstriker_vec")


def __getattr__(name):  # `from hakisa.envs import make_vec` without importing numpy/torch at `import hakisa`
    if name in ("make_vec", "make_env", "contract"):
        from hakisa.envs import make

        return getattr(make, name)
    raise AttributeError(name)
