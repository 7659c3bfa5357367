"""stable-retro games under the Hakisa contract: the same observation and action as the duel and the screen.

    env = RetroEnv("Airstriker-Genesis-v0")                   # input map: hakisa/maps/airstriker.json
    vec = make_retro_vec("Airstriker-Genesis-v0", 8, seed=0)  # AsyncVectorEnv, one emulator per process

Observation: uint8 [stack*C, H, W]. Each emulator frame (RGB 224x320 on the Genesis) goes
`rgb_to_bgra` -> the shared `preprocess(frame, obs_spec)` -> `FrameStack`, exactly like a screen grab.
The default ObsSpec is 160x112 gray, stack 4: half the Genesis resolution in both axes, so the
aspect ratio is kept and a 2x2 INTER_AREA average keeps 2-3 px bullets visible (the duel's 160x90
would squash the picture by 20% vertically for nothing).

Action: MultiDiscrete([n_commands, 1, 1]) from an InputMap whose `keys` commands are chords of the
console's button names (["LEFT", "B"]); a chord is held for all `frame_skip` emulator frames of the
step. Buttons listed in the map's `meta["turbo"]` auto-fire while held: they are released for the
last 2 of every 8 emulator frames (a turbo pad), because Airstriker fires on a press, not while B
is held, and has a cooldown of about 6 frames (measured: held B never fires; a 6-on/2-off pulse
scores 3x more than a press every 4 frames).

Reward: "env" (default) is the scenario's reward, for Airstriker the RAM score delta; any other
string names an `info` variable whose per-step delta is the reward ("score"); or pass a function
`f(prev_info, info) -> float`. `life_penalty` subtracts that much per life lost (info["lives"]),
and `reward_scale` multiplies the result. Whatever the shaping, info["game_score"] is the running
sum of the scenario reward over the episode, so evaluations report the game's own score.

Episodes end (terminated) when the scenario says so (Airstriker: game over) and are truncated after
`max_episode_steps` agent steps. Reset waits a seeded random 0..noop_max emulator frames, so seeds
give different episodes of an otherwise deterministic emulator; same seed, same actions -> same
frames. The emulator is created lazily on the first reset: stable-retro allows one per process, and
AsyncVectorEnv builds a throwaway copy of env 0 in the parent just to read the spaces.
"""
from __future__ import annotations

import functools
import itertools
from typing import Callable

import gymnasium as gym
import numpy as np

from hakisa.input_map import Command, InputMap
from hakisa.preprocess import FrameStack, ObsSpec, preprocess, rgb_to_bgra

AIRSTRIKER = "Airstriker-Genesis-v0"
DEFAULT_SPEC = ObsSpec(width=160, height=112, gray=True, stack=4)
ALIASES = {"Hakisa/Airstriker-v0": AIRSTRIKER}
SHIPPED_MAPS = {AIRSTRIKER: "airstriker"}  # game id -> hakisa/maps/<name>.json
TURBO_PERIOD, TURBO_OFF = 8, 2  # emulator frames: turbo buttons are up for the last 2 of every 8

RewardFn = Callable[[dict, dict], float]
_live_emulators = 0  # RetroEnv emulators open in this process (a forked child would inherit the "one is open" flag)


def resolve_game(game: str) -> str:
    """Our id -> stable-retro's. stable-retro 1.x names games "X-Genesis-v0"; gym-retro said "X-Genesis"."""
    import stable_retro

    game = ALIASES.get(game, game)
    games = set(stable_retro.data.list_games())
    for g in (game, game + "-v0", game.removesuffix("-v0")):
        if g in games:
            return g
    raise ValueError(f"stable-retro has no game {game!r} (or its ROM is not imported); "
                     f"shipped with stable-retro: {AIRSTRIKER!r}")


def console_buttons(game: str) -> list[str | None]:
    """The game's button vector layout (None marks an unused slot), read without starting an emulator."""
    import stable_retro

    return list(stable_retro.get_system_info(stable_retro.get_romfile_system(
        stable_retro.data.get_romfile_path(resolve_game(game))))["buttons"])


def default_input_map(game: str) -> InputMap:
    """The shipped map for known games; otherwise noop + every combo of the core's button groups
    (stable-retro's own "actions" table: vertical x horizontal x fire buttons), so any game plays."""
    game = resolve_game(game)
    if game in SHIPPED_MAPS:
        return InputMap.load(SHIPPED_MAPS[game])
    import stable_retro

    groups = stable_retro.get_system_info(stable_retro.get_romfile_system(
        stable_retro.data.get_romfile_path(game)))["actions"]
    cmds = [Command("noop", "noop")]
    for combo in itertools.product(*groups):
        keys = tuple(k for part in combo for k in part)
        if keys:
            cmds.append(Command("+".join(keys).lower(), "keys", keys))
    return InputMap(name=game, commands=cmds, meta={"game": game, "note": "generated from the core's action groups"})


class RetroEnv(gym.Env):
    """A stable-retro game with Hakisa's observation and action (see the module docstring).

    Observation space: Box(0, 255, obs_spec.shape, uint8), channels-first frame stack.
    Action space: input_map.action_space = MultiDiscrete([n_commands, x_bins, y_bins]); x/y unused.
    info: the scenario's variables (Airstriker: score, lives, gameover), plus `game_reward` (this
    step's scenario reward) and `game_score` (its sum over the episode so far).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str = AIRSTRIKER, input_map: InputMap | str | None = None,
                 obs_spec: ObsSpec | None = None, frame_skip: int = 4, max_pool: bool = True,
                 reward: str | RewardFn = "env", life_penalty: float = 0.0, reward_scale: float = 1.0,
                 max_episode_steps: int | None = 5000, noop_max: int = 30, state: str | None = None,
                 render_mode: str | None = None):
        self.game = resolve_game(game)
        self.input_map = (InputMap.load(input_map) if isinstance(input_map, str)
                          else input_map or default_input_map(self.game))
        self.obs_spec = obs_spec or DEFAULT_SPEC
        self.frame_skip, self.max_pool, self.noop_max = int(frame_skip), bool(max_pool), int(noop_max)
        self.reward_spec, self.life_penalty, self.reward_scale = reward, float(life_penalty), float(reward_scale)
        self.max_episode_steps, self.state, self.render_mode = max_episode_steps, state, render_mode
        self.metadata = {**self.metadata, "render_fps": 60 // self.frame_skip}
        self.observation_space = gym.spaces.Box(0, 255, self.obs_spec.shape, np.uint8)
        self.action_space = self.input_map.action_space

        # one button mask per command, checked against the console's layout now, not mid-episode
        buttons = console_buttons(self.game)
        self.buttons = buttons
        self._masks = np.zeros((len(self.input_map.commands), len(buttons)), np.uint8)
        for i, cmd in enumerate(self.input_map.commands):
            if cmd.kind not in ("noop", "keys"):
                raise ValueError(f"{self.input_map.name}: command {cmd.name!r} is {cmd.kind!r}; a console pad "
                                 f"only takes noop and button chords (kind 'keys')")
            for k in cmd.keys:
                if k not in buttons:
                    raise ValueError(f"{self.input_map.name}: command {cmd.name!r} presses {k!r}, not a button of "
                                     f"{self.game} (buttons: {[b for b in buttons if b]})")
                self._masks[i, buttons.index(k)] = 1
        self._turbo = np.array([b in self.input_map.meta.get("turbo", ()) for b in buttons], bool)
        self._env = None  # the emulator: made on first reset (one per process)
        self._stack = FrameStack(self.obs_spec)
        self._rgb: np.ndarray | None = None

    # ---- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        env = self._emulator()
        rgb, _ = env.reset()
        noop = np.zeros(len(self.buttons), np.uint8)
        info = env.data.lookup_all()  # the scenario's variables at the start, so the first delta is right
        for _ in range(int(self.np_random.integers(0, self.noop_max + 1)) if self.noop_max else 0):
            rgb, _, _, _, info = env.step(noop)
        self._info = self._read_info(info)
        self._frame, self._steps, self._score = 0, 0, 0.0
        self._rgb = rgb
        obs = self._stack.reset(self._observe(rgb))
        return obs, {**self._info, "game_reward": 0.0, "game_score": 0.0}

    def step(self, action):
        if self._rgb is None:
            raise RuntimeError("call reset() before step()")
        mask = self._masks[int(np.asarray(action).reshape(-1)[0])]
        game_r, terminated, prev_rgb = 0.0, False, self._rgb
        info = self._info
        for _ in range(self.frame_skip):
            m = mask
            if self._turbo.any() and self._frame % TURBO_PERIOD >= TURBO_PERIOD - TURBO_OFF:
                m = mask & ~self._turbo  # turbo buttons up: the next frame sees a fresh press
            prev_rgb = self._rgb
            self._rgb, r, terminated, _, info = self._env.step(m)
            self._frame += 1
            game_r += float(r)
            if terminated:
                break
        info = self._read_info(info)
        # max over the last two frames (the Atari convention): sprites a game draws on alternate
        # frames still show. Airstriker does not flicker (measured), but a bullet then shows at both
        # of its last two positions, which hints at its speed for free.
        frame = np.maximum(prev_rgb, self._rgb) if self.max_pool and self.frame_skip > 1 else self._rgb
        obs = self._stack.push(self._observe(frame))
        reward = self._reward(game_r, self._info, info)
        self._info = info
        self._steps += 1
        self._score += game_r
        truncated = bool(self.max_episode_steps and self._steps >= self.max_episode_steps and not terminated)
        return obs, reward, bool(terminated), truncated, {**info, "game_reward": game_r, "game_score": self._score}

    def render(self):
        return None if self._rgb is None else self._rgb.copy()

    def close(self):
        if self._env is not None:
            global _live_emulators
            self._env.close()
            self._env = None
            _live_emulators -= 1

    # ---- insides ------------------------------------------------------------------------------
    def _emulator(self):
        if self._env is None:
            import multiprocessing

            import cv2
            import stable_retro

            if multiprocessing.parent_process() is not None:  # a vector-env worker: its own process
                cv2.setNumThreads(1)  # n emulators already fill the cores; cv2's pool would only contend
            kw = {} if self.state is None else {"state": self.state}
            # Actions.ALL: our chords reach the pad unfiltered (FILTERED may drop buttons silently)
            self._env = stable_retro.make(
                self.game, render_mode=None, use_restricted_actions=stable_retro.Actions.ALL, **kw
            )
            global _live_emulators
            _live_emulators += 1
        return self._env

    def _observe(self, rgb: np.ndarray) -> np.ndarray:
        return preprocess(rgb_to_bgra(rgb), self.obs_spec)

    @staticmethod
    def _read_info(info: dict) -> dict:
        return {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in info.items()}

    def _reward(self, game_r: float, prev: dict, info: dict) -> float:
        if callable(self.reward_spec):
            r = float(self.reward_spec(prev, info))
        elif self.reward_spec == "env":
            r = game_r
        else:
            key = self.reward_spec
            if key not in info:
                raise KeyError(f"reward={key!r}: no such info variable in {self.game} (has {sorted(info)})")
            r = float(info[key]) - float(prev.get(key, info[key]))
        if self.life_penalty and "lives" in info and "lives" in prev:
            r -= self.life_penalty * max(0, int(prev["lives"]) - int(info["lives"]))
        return r * self.reward_scale


def make_retro_vec(
    game: str = AIRSTRIKER, n: int = 4, seed: int = 0, context: str | None = None, **kw
) -> gym.vector.AsyncVectorEnv:
    """`n` RetroEnvs, each in its own process (one emulator per process), with SAME_STEP autoreset.

    context=None means "forkserver". Plain "fork" starts faster (7 s vs 60 s for 8 children on a
    loaded 2-core box) but is unsafe in a process that already ran cv2 or torch thread pools: the
    child deadlocks inside cv2.setNumThreads (seen in the full test suite), and a forked child also
    inherits stable-retro's "an emulator exists" flag. forkserver children re-import the main module,
    so scripts need the `if __name__ == "__main__":` guard.
    The returned env is reset with `seed` (sub-env i gets seed + i) and carries `.obs_spec`/`.input_map`.
    """
    game = resolve_game(game)
    context = context or "forkserver"
    fn = functools.partial(RetroEnv, game, **kw)
    envs = gym.vector.AsyncVectorEnv([fn] * n, context=context, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    probe = fn()  # no emulator yet: cheap, and tells the learners the contract
    envs.obs_spec, envs.input_map = probe.obs_spec, probe.input_map
    envs.reset(seed=seed)
    return envs


def airstriker_vec(num_envs: int = 4, seed: int = 0, game: str = AIRSTRIKER, **kw) -> gym.vector.AsyncVectorEnv:
    """vector_entry_point for "Hakisa/Airstriker-v0"; gymnasium passes the registered kwargs (game) too."""
    return make_retro_vec(game, num_envs, seed=seed, **kw)


def register() -> None:
    """Register "Hakisa/Airstriker-v0" (gymnasium.make -> RetroEnv, make_vec -> subprocess vector env)."""
    if "Hakisa/Airstriker-v0" not in gym.registry:
        gym.register(
            id="Hakisa/Airstriker-v0",
            entry_point="hakisa.envs.retro:RetroEnv",
            kwargs={"game": AIRSTRIKER},
            vector_entry_point="hakisa.envs.retro:airstriker_vec",
        )


def raw_fps(game: str = AIRSTRIKER, frames: int = 3000) -> float:
    """Emulator frames/s of one bare stable-retro env in this process (no preprocessing), for benchmarks."""
    import time

    import stable_retro

    env = stable_retro.make(resolve_game(game), render_mode=None, use_restricted_actions=stable_retro.Actions.ALL)
    try:
        env.reset()
        acts = np.random.default_rng(0).integers(0, 2, (frames, env.num_buttons), dtype=np.uint8)
        t = time.perf_counter()
        for a in acts:
            if env.step(a)[2]:
                env.reset()
        return frames / (time.perf_counter() - t)
    finally:
        env.close()


__all__ = [
    "RetroEnv",
    "make_retro_vec",
    "airstriker_vec",
    "register",
    "default_input_map",
    "resolve_game",
    "console_buttons",
    "raw_fps",
    "AIRSTRIKER",
    "DEFAULT_SPEC",
]
