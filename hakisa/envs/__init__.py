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
