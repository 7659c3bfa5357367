"""Gymnasium envs for the built-in duel: `DuelEnv` (one fight) and `DuelVecEnv` (N fights, numpy-batched).

Both run `DuelSim` (the same rules as the browser page) and render the same pixels the page's canvas
shows, through the shared `hakisa.preprocess.preprocess` (see render.py for why the fast path is exact).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hakisa.games.duel.render import ObsRenderer, palette_bgra, render_bgra
from hakisa.games.duel.sim import B_WINDUP, COMMAND_KEYS, DuelSim, load_rules
from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec

INFO_KEYS = ("knight_hp", "boss_hp", "stamina", "winner", "ticks")


def state_targets(s: dict[str, np.ndarray], rules: dict) -> tuple[np.ndarray, list[str]]:
    """float32 [n, D] of what a player can read off the screen, each scaled to about [0, 1]."""
    fp, K, B = rules["fp"], rules["knight"], rules["boss"]
    w = rules["canvas"]["width"]
    windup = s["b_act"] == B_WINDUP
    cols = {
        "knight_x": s["kx"] / fp / w, "boss_x": s["bx"] / fp / w,
        "dx": (s["kx"] - s["bx"]) / fp / (w / 2), "dist": np.abs(s["kx"] - s["bx"]) / fp / (w / 2),
        "knight_hp": s["k_hp"] / K["hp"], "boss_hp": s["b_hp"] / B["hp"], "stamina": s["k_st"] / K["stamina"],
        "knight_t": s["k_t"] / 50, "boss_t": s["b_t"] / 60,
        "windup_left": np.where(windup, s["b_len"] - s["b_t"], 0) / 60,   # the telegraph bar's meaning
        "held_swing": (windup & (s["b_len"] > B["cleave_windup"])).astype(np.float64),
        "boss_face": s["b_face"], "knight_face": s["k_face"], "boss_cooldown": s["b_cd"] / 80,
        "boss_hit": s["b_hit"], "knight_hit": s["k_hit"], "boss_combo": s["b_combo"] / 3,
        "time": s["tick"] / rules["time_limit"],
    }
    cols.update({f"boss_act={i}": (s["b_act"] == i).astype(np.float64) for i in range(7)})
    cols.update({f"knight_act={i}": (s["k_act"] == i).astype(np.float64) for i in range(5)})
    return np.stack(list(cols.values()), 1).astype(np.float32), list(cols)


REWARD_DEFAULTS = {"dealt_coef": 0.3, "taken_coef": 0.1, "win_bonus": 10.0, "loss_penalty": 10.0}


def reward_coefs(reward: dict | None, **given) -> tuple[float, float, float, float]:
    """(dealt_coef, taken_coef, win_bonus, loss_penalty) from a game file's rules.reward, or from the
    coefficient kwargs (None: the default). The duel file says `sim.reward: "rules"`, so `Game.sim_vec`
    passes its rules.reward here: the live page and the sim then pay one set of numbers. The mapping (the
    page's HP readings are HP points): dealt = -deltas.boss_hp, taken = deltas.knight_hp, win, -lose."""
    if reward is None:
        return tuple(float(REWARD_DEFAULTS[k] if given.get(k) is None else given[k]) for k in REWARD_DEFAULTS)
    if any(v is not None for v in given.values()):
        raise ValueError("give the duel's reward as reward={...} or as coefficient kwargs, not both")
    deltas = reward.get("deltas") or {}
    unknown = set(deltas) - {"boss_hp", "knight_hp"}
    if unknown:  # a delta the sim cannot pay would be a silent difference between the page and the sim
        raise ValueError(f"the duel simulator pays deltas of boss_hp and knight_hp only, not {sorted(unknown)}")
    return (-float(deltas.get("boss_hp", 0.0)), float(deltas.get("knight_hp", 0.0)),
            float(reward.get("win", 0.0)), -float(reward.get("lose", 0.0)))


def boss_pool(boss, n: int) -> tuple[list[dict | None], np.ndarray]:
    """(brains, idx) for DuelSim.set_brains from one brain spec for all n fights ("scripted", a shipped
    brain's name, a path, a brain dict) or a sequence of n specs (fight i plays boss[i]: a pool)."""
    from hakisa.games.duel.brain import load_brain

    specs = [boss] * n if isinstance(boss, (str, Path, dict)) else list(boss)
    if len(specs) != n:
        raise ValueError(f"boss: {len(specs)} brains for {n} fights")
    keys = [json.dumps(s, sort_keys=True) if isinstance(s, dict) else str(s) for s in specs]
    uniq = list(dict.fromkeys(keys))
    brains = [load_brain(specs[keys.index(k)]) for k in uniq]
    return brains, np.array([uniq.index(k) for k in keys])


class _Fights:
    """The mechanics both envs share: N sims, their frame stacks and the reward. No autoreset here."""

    def __init__(self, n: int, tier, seed: int | None, frame_skip: int, obs_spec: ObsSpec | None,
                 dealt_coef: float, taken_coef: float, win_bonus: float, loss_penalty: float, copy: bool = True,
                 action_delay: int = 0, stack_ticks: int | None = None, boss=None):
        if frame_skip < 1 or action_delay < 0:
            raise ValueError("frame_skip must be >= 1 and action_delay >= 0")
        stack_ticks = frame_skip if stack_ticks is None else int(stack_ticks)
        if stack_ticks < frame_skip or stack_ticks % frame_skip:
            raise ValueError(f"stack_ticks ({stack_ticks}) must be a multiple of frame_skip ({frame_skip})")
        self.n, self.frame_skip = n, frame_skip
        self.spec = obs_spec or ObsSpec()
        # stacked frames are stack_ticks apart while decisions come every frame_skip ticks: a history of
        # one frame per decision, of which every stride-th is stacked (stride 1: the stack IS the history)
        self.stride = stack_ticks // frame_skip
        self._hist = None if self.stride == 1 else np.zeros(
            (n, (self.spec.stack - 1) * self.stride + 1, self.spec.channels, *self.spec.shape[1:]), np.uint8)
        self.coef = (float(dealt_coef), float(taken_coef), float(win_bonus), float(loss_penalty))
        self.rules = load_rules()
        self.sim = DuelSim(n, tier=tier, seed=0 if seed is None else seed, rules=self.rules)
        if boss is not None:
            self.sim.set_brains(*boss_pool(boss, n))
        self.palette = palette_bgra(self.rules)
        self.renderer = ObsRenderer(self.palette, self.spec)
        self.input_map = InputMap.load("duel")
        self.obs = np.zeros((n, *self.spec.shape), np.uint8)
        self.copy = copy
        self._spare = np.zeros_like(self.obs) if not copy else None
        self.rng = np.random.default_rng(seed)
        # keys take effect action_delay ticks after they are chosen (a ring of the keys still in flight)
        self.delay, self._head = int(action_delay), 0
        self._in_flight = np.zeros((self.delay, n), np.uint8)
        # True: reset and step skip the pixels (obs stays as it was), for a learner that reads state() only;
        # drawing and rendering are ~70 % of a step's cost
        self.state_only = False

    def reset(self, mask: np.ndarray | None = None, seed: int | None = None) -> None:
        """Start new fights (all, or where mask). With `seed`, fight i gets seed+i (as DuelCore.newState)
        and later fights draw their seeds from a generator seeded by `seed`: the whole run is reproducible.
        A sequence of seeds gives fight i seed[i] (Gymnasium's one seed per sub-env), so a fight's start
        does not depend on its position: a population split over workers meets the same fights."""
        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if isinstance(seed, (list, tuple, np.ndarray)):
            self.rng = np.random.default_rng([int(s) for s in seed])
            seeds = np.asarray(seed, np.int64)[idx] & 0xFFFFFFFF
        elif seed is not None:
            self.rng = np.random.default_rng(seed)
            seeds = (np.int64(seed) + idx) & 0xFFFFFFFF
        else:
            seeds = self.rng.integers(0, 2**32, size=idx.size, dtype=np.uint64)
        sel = np.zeros(self.n, bool)
        sel[idx] = True
        self.sim.reset(mask=sel, seeds=seeds)
        self._in_flight[:, sel] = 0  # a new fight starts with no keys in flight
        if self.state_only:
            return
        # a new fight's stack is its first frame repeated (as FrameStack.reset does)
        first = self.renderer.render(self.sim.draw_rects()[idx])
        self.obs[idx] = np.tile(first, (1, self.spec.stack, 1, 1))
        if self._hist is not None:
            self._hist[idx] = first[:, None]

    def step(self, commands: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hold each fight's command for frame_skip ticks. Returns (obs, reward, terminated); obs is a new array."""
        s = self.sim.state
        keys = COMMAND_KEYS[commands]
        k_hp, b_hp = s["k_hp"].copy(), s["b_hp"].copy()
        for _ in range(self.frame_skip):
            if self.delay:
                now = self._in_flight[self._head].copy()
                self._in_flight[self._head] = keys
                self._head = (self._head + 1) % self.delay
            else:
                now = keys
            self.sim.step(now)  # a finished fight stays frozen inside DuelSim, so extra ticks are harmless
        dealt, taken = b_hp - s["b_hp"], k_hp - s["k_hp"]
        c_dealt, c_taken, win, loss = self.coef
        winner = s["winner"]
        reward = (c_dealt * dealt - c_taken * taken + win * (winner == 1) - loss * (winner == 2)).astype(np.float32)
        if self.state_only:
            return self.obs, reward, self.sim.done.copy()
        # copy=True: a new array each step, so a caller may keep earlier obs without copying them.
        # copy=False: two buffers take turns (no allocation): an obs stays valid for one more step only.
        c = self.spec.channels
        if self.copy:
            obs = np.empty_like(self.obs)
        else:
            obs, self._spare = self._spare, self.obs
        if self._hist is None:
            obs[:, :-c] = self.obs[:, c:]
            self.renderer.render(self.sim.draw_rects(), out=obs[:, -c:])
        else:
            self._hist[:, :-1] = self._hist[:, 1:]
            self.renderer.render(self.sim.draw_rects(), out=self._hist[:, -1])
            obs[:] = self._hist[:, ::self.stride].reshape(obs.shape)  # (L - 1) % stride == 0: newest included
        self.obs = obs
        return obs, reward, self.sim.done.copy()

    def info(self) -> dict[str, np.ndarray]:
        s = self.sim.state
        return {"knight_hp": s["k_hp"].copy(), "boss_hp": s["b_hp"].copy(), "stamina": s["k_st"].copy(),
                "winner": s["winner"].copy(), "ticks": s["tick"].copy()}

    def render_rgb(self, i: int) -> np.ndarray:
        """Fight i at canvas resolution, RGB (what the page shows)."""
        return render_bgra(self.sim.draw_rects()[i], self.palette, 1)[..., 2::-1].copy()


def _spaces(spec: ObsSpec, input_map: InputMap):
    return gym.spaces.Box(0, 255, spec.shape, np.uint8), input_map.action_space


class DuelEnv(gym.Env):
    """The Hakisa duel: a knight (you) against a boss, seen through the same pixels as the browser page.

    ## Action space
    `MultiDiscrete([8, 1, 1])`, the duel input map (`InputMap.load("duel")`) as [command, x bin, y bin].
    x and y are unused (one bin each). The command's keys are held for `frame_skip` 60 Hz ticks
    (default 4: a decision at 15 Hz):

    | command | 0 noop | 1 left | 2 right | 3 roll | 4 attack | 5 block | 6 left+roll | 7 right+roll |
    |---------|--------|--------|---------|--------|----------|---------|-------------|--------------|
    | keys    |   -    |   ←    |    →    | Space  |    J     |  K held |   ← Space   |   → Space    |

    ## Observation space
    `Box(0, 255, obs_spec.shape, uint8)`: with the default `ObsSpec()` a stack of the last 4 gray
    frames, [4, 90, 160], oldest first. Each frame is `hakisa.preprocess.preprocess` of the 640x360
    canvas render (exactly what a screen grab of the page gives). A new fight's stack repeats its first frame.

    ## Reward (per step, all coefficients are constructor arguments, or `reward`: a game file's rules.reward)
        dealt_coef * (boss HP lost) - taken_coef * (knight HP lost)
        + win_bonus if the knight won this step - loss_penalty if the boss won (or time ran out)
    Defaults 0.3, 0.1, 10, 10: HP are tens to hundreds (rules.json), so a whole fight's damage is worth
    about as much as its end. Dealing counts 3x taking: a hit (+3) then outweighs the cleave it risks
    (-2.5), so a learner attacks instead of settling into the flee-until-timeout local optimum (measured:
    at 0.1/0.1 PPO fled for 250k+ steps; at 0.3/0.1 state-PPO wins 96% on normal after 2.2M steps).

    ## Episode end
    terminated when there is a winner: the boss's HP hits 0 (knight wins), or the knight's HP hits 0 or
    the fight's time limit (rules.json `time_limit`, 90 s) passes (boss wins). Never truncated.

    ## Info
    `knight_hp`, `boss_hp`, `stamina`, `winner` (0 none, 1 knight, 2 boss), `ticks` (60 Hz ticks since the fight began).

    ## Arguments
    tier: "easy" | "normal" | "hard" (the boss's decision noise). frame_skip: ticks per decision.
    obs_spec: any `ObsSpec` (160x90 / 320x180 / 640x360 take the exact fast path, others the generic one).
    action_delay: ticks between choosing keys and their effect (default 0). The live page has one (a
    frame is grabbed, the agent decides, the X events reach Chromium; action -> pixel measured ~95 ms),
    and a player recorded there times its moves for it: a clone of the page teacher (80 fights) that
    wins 0-1 % of sim fights at delay 0 wins 44-48 % at 2-3 ticks (benchmarks/investigations/eval_study_sweep.py).
    stack_ticks: ticks between the stacked frames (default frame_skip). With frame_skip=1, stack_ticks=4
    an agent decides every tick yet sees frames 4 ticks apart, as an agent recorded at 15 fps that plays
    a 60 Hz game would (a clone of a person, who can press a key at any tick).
    Seeding: `reset(seed=s)` starts fight seed s, the same fight as `DuelCore.newState(rules, tier, s)` in the page.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, tier: str = "normal", frame_skip: int = 4, obs_spec: ObsSpec | None = None,
                 dealt_coef: float | None = None, taken_coef: float | None = None, win_bonus: float | None = None,
                 loss_penalty: float | None = None, render_mode: str | None = None, action_delay: int = 0,
                 stack_ticks: int | None = None, reward: dict | None = None, boss=None):
        coefs = reward_coefs(reward, dealt_coef=dealt_coef, taken_coef=taken_coef, win_bonus=win_bonus,
                             loss_penalty=loss_penalty)
        self.fights = _Fights(1, tier, None, frame_skip, obs_spec, *coefs,
                              action_delay=action_delay, stack_ticks=stack_ticks, boss=boss)
        self.input_map = self.fights.input_map
        self.obs_spec = self.fights.spec
        self.observation_space, self.action_space = _spaces(self.obs_spec, self.input_map)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": 60 // frame_skip}
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:  # draw from gymnasium's np_random (itself seeded by an earlier reset(seed))
            seed = int(self.np_random.integers(0, 2**31))
        self.fights.reset(seed=seed)
        self._needs_reset = False
        return self.fights.obs[0].copy(), self._info()

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("DuelEnv.step() called before reset() or after the fight ended")
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        obs, reward, terminated = self.fights.step(a[:1])
        self._needs_reset = bool(terminated[0])
        return obs[0].copy(), float(reward[0]), bool(terminated[0]), False, self._info()

    def _info(self) -> dict[str, int]:
        return {k: int(v[0]) for k, v in self.fights.info().items()}

    def render(self):
        if self.render_mode == "rgb_array":
            return self.fights.render_rgb(0)
        return None


class DuelVecEnv(VectorEnv):
    """N duels batched in numpy (one DuelSim), with SAME_STEP autoreset. Spaces, reward and info as DuelEnv.

    step(actions (n, 3) or (n,) commands) -> obs (n, *obs_shape) uint8 (a fresh array each step by default),
    reward float32 (n,), terminated (n,), truncated (n,) all False, info:
      knight_hp, boss_hp, stamina, winner, ticks: (n,) int arrays with `_key` masks (all True). On the step a
        fight ends they describe that fight's END (winner 1/2), even though obs is already the next fight's.
      final_obs: (n, *obs_shape), rows valid where `_final_obs` (the finished fight's last stack).
      final_info: the same per-env dict again, masked by terminated (Gymnasium's SAME_STEP layout).
      episode: {"r": return, "l": length in decisions, "t": ticks}, valid where `_episode` (as RecordEpisodeStatistics).
    `tier` may be one tier for all fights or a sequence of n tiers; `boss` likewise one boss brain or n
    (brain.py: "scripted", a shipped brain's name or a brain JSON path), a pool to train against.
    `copy=False` skips the per-step allocation
    (as Gymnasium's copy=False): two obs buffers take turns, so a returned obs is overwritten two steps later.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 8, tier: str | Sequence[str] = "normal", seed: int | None = 0,
                 frame_skip: int = 4, obs_spec: ObsSpec | None = None, dealt_coef: float | None = None,
                 taken_coef: float | None = None, win_bonus: float | None = None, loss_penalty: float | None = None,
                 render_mode: str | None = None, copy: bool = True, action_delay: int = 0,
                 stack_ticks: int | None = None, reward: dict | None = None, boss=None):
        self.num_envs = int(num_envs)
        coefs = reward_coefs(reward, dealt_coef=dealt_coef, taken_coef=taken_coef, win_bonus=win_bonus,
                             loss_penalty=loss_penalty)
        self.fights = _Fights(self.num_envs, tier, seed, frame_skip, obs_spec, *coefs, copy, action_delay,
                              stack_ticks, boss)
        self.input_map, self.obs_spec = self.fights.input_map, self.fights.spec
        self.single_observation_space, self.single_action_space = _spaces(self.obs_spec, self.input_map)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": 60 // frame_skip}
        self._seed = seed
        self._ret = np.zeros(self.num_envs, np.float64)
        self._len = np.zeros(self.num_envs, np.int64)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple, np.ndarray)) and len(seed) != self.num_envs:
            raise ValueError(f"reset(seed=...): {len(seed)} seeds for {self.num_envs} envs")
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None  # the constructor's seed applies to the first reset
        self.fights.reset(seed=seed)
        self._ret[:] = 0
        self._len[:] = 0
        info = self.fights.info()
        return self.fights.obs, self._with_masks(info, np.ones(self.num_envs, bool))

    def step(self, actions):
        a = np.asarray(actions, dtype=np.int64)
        commands = a[:, 0] if a.ndim == 2 else a.reshape(self.num_envs)
        obs, reward, terminated = self.fights.step(commands)
        self._ret += reward
        self._len += 1
        info = self._with_masks(self.fights.info(), np.ones(self.num_envs, bool))
        if terminated.any():
            info["final_obs"] = np.zeros_like(obs)
            info["final_obs"][terminated] = obs[terminated]
            info["_final_obs"] = terminated
            info["final_info"] = self._with_masks({k: info[k] for k in INFO_KEYS}, terminated)
            info["_final_info"] = terminated
            info["episode"] = {"r": np.where(terminated, self._ret, 0.0).astype(np.float32),
                               "l": np.where(terminated, self._len, 0), "t": np.where(terminated, info["ticks"], 0)}
            info["_episode"] = terminated
            self._ret[terminated] = 0
            self._len[terminated] = 0
            self.fights.reset(mask=terminated)  # SAME_STEP: the returned obs is the new fight's first
            obs = self.fights.obs
        return obs, reward, terminated, np.zeros(self.num_envs, bool), info

    @staticmethod
    def _with_masks(info: dict, mask: np.ndarray) -> dict:
        out = dict(info)
        for k in info:
            out["_" + k] = mask
        return out

    @property
    def state_names(self) -> list[str]:
        """The names of state()'s columns (the perception encoder's targets)."""
        return state_targets(self.fights.sim.state, self.fights.rules)[1]

    @property
    def state_only(self) -> bool:
        """Set True while only state() is read (a state teacher): steps skip the pixels, obs goes stale.
        Set it back and reset() before reading obs again."""
        return self.fights.state_only

    @state_only.setter
    def state_only(self, value: bool) -> None:
        self.fights.state_only = bool(value)

    def state(self) -> np.ndarray:
        """float32 [num_envs, D]: each fight's true state as it stands (after the last step's autoreset, so it
        matches the obs just returned), the same columns `hakisa duel perception` teaches an encoder to read.
        PettingZoo's name for a global state a learner may see in training and a player never does: PPO's
        privileged critic (`--set critic=state`) reads it; nothing at play time does."""
        return state_targets(self.fights.sim.state, self.fights.rules)[0]

    def render(self):
        if self.render_mode == "rgb_array":
            return tuple(self.fights.render_rgb(i) for i in range(self.num_envs))
        return None

    def close_extras(self, **kwargs: Any) -> None:
        pass
