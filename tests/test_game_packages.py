"""A game with code of its own is reached through its file: `sim.module` registers its simulator's id, so
make_vec, Game.sim_vec and the CLI name no game (docs/architecture.md, section 3b)."""
from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np

from hakisa.envs.toy import keypress_map
from hakisa.game import Game

USER_SIM = '''
import gymnasium

from hakisa.envs.toy import KeyPressEnv


def vec(num_envs, seed=0, episode_len=16):
    envs = gymnasium.vector.SyncVectorEnv([lambda: KeyPressEnv(episode_len=episode_len) for _ in range(num_envs)],
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)
    return envs


gymnasium.register(id="Mine/Keys-v0", entry_point="hakisa.envs.toy:KeyPressEnv", vector_entry_point="user_sim:vec")
'''


def test_a_shipped_simulator_is_found_through_its_game_file():
    """A fresh interpreter: `import hakisa` registers no game and imports none; make_vec of the duel's id
    imports the package its game file names and builds the vector env that package registered."""
    code = ("import sys, gymnasium, hakisa\n"
            "assert 'Hakisa/Duel-v0' not in gymnasium.registry and 'hakisa.games.duel' not in sys.modules\n"
            "from hakisa.envs.make import make_vec\n"
            "env = make_vec('Hakisa/Duel-v0', 2, seed=0, tier='easy')\n"
            "print(type(env).__module__, type(env).__name__, env.num_envs, env.input_map.name)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["hakisa.games.duel.env", "DuelVecEnv", "2", "duel"]


def test_a_users_game_file_brings_its_own_simulator(tmp_path, monkeypatch):
    """A game file outside hakisa names its simulator's module; Game.sim_vec imports it and make_vec calls the
    vector entry point it registered, with the file's kwargs."""
    (tmp_path / "user_sim.py").write_text(USER_SIM)
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = {"name": "mine", "input_map": keypress_map().to_dict(),
           "rules": {"readers": {"gray": {"type": "mean_gray", "region": [0, 0, 8, 8]}}},
           "sim": {"env": "Mine/Keys-v0", "module": "user_sim", "kwargs": {"episode_len": 5}}}
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    assert "Mine/Keys-v0" not in gym.registry
    envs = Game.load(tmp_path / "mine.json").sim_vec(3, seed=1)
    try:
        assert "Mine/Keys-v0" in gym.registry and type(envs).__name__ == "SyncVectorEnv" and envs.num_envs == 3
        assert envs.input_map.to_dict() == keypress_map().to_dict() and envs.envs[0].episode_len == 5
        obs, *_ = envs.step(np.zeros((3, 3), np.int64))
        assert obs.shape[0] == 3
    finally:
        envs.close()
        gym.registry.pop("Mine/Keys-v0", None)
        sys.modules.pop("user_sim", None)
