"""Gymnasium envs: the screen, fleets of windows, stable-retro, toys, and `make_vec`, which builds any of them
or a game's simulator by id. A game's simulator registers its own id from its package (hakisa/games/NAME/);
its game file names that package (`sim.module`), so nothing here knows a game by name.

    from hakisa.envs import make_vec
    vec = make_vec("Hakisa/Duel-v0", 64, tier="normal")    # imports hakisa.games.duel, which registers the id
The entry points are strings, so registering imports nothing heavy.
"""
import gymnasium

if "Hakisa/Airstriker-v0" not in gymnasium.registry:  # needs the `retro` extra only when made
    gymnasium.register(id="Hakisa/Airstriker-v0", entry_point="hakisa.envs.retro:RetroEnv",
                       kwargs={"game": "Airstriker-Genesis-v0"}, vector_entry_point="hakisa.envs.retro:airstriker_vec")


def __getattr__(name):  # `from hakisa.envs import make_vec` without importing numpy/torch at `import hakisa`
    if name in ("make_vec", "make_env", "contract"):
        from hakisa.envs import make

        return getattr(make, name)
    raise AttributeError(name)
