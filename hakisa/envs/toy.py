"""Tiny pixel tasks for learning smoke tests: seconds to learn, impossible to fake.

Both follow the Hakisa contract (uint8 channels-first frame stacks through the shared `preprocess`,
an `InputMap` MultiDiscrete action) so every learner runs on them unchanged.

`Toy/KeyPress-v0`: the screen shows a bright block in one of 5 slots; the right command for slot k
    is commands[k] of [noop, up, down, left, right]. +1 for the right command, 0 otherwise; 16
    steps per episode. Random scores 16/5 = 3.2, a learned policy 16. Only the x/y-free heads matter.
`Toy/Click-v0`: a dot sits in one cell of a 4x4 grid; the commands are [noop, press "a",
    click_left]. +1 for click_left at the dot's (x, y) bin, 0 otherwise; 16 steps per episode.
    Random scores 16 * 1/3 * 1/16 ~ 0.33, a learned policy 16. This one needs the x/y heads.

Observation: uint8 [stack, H, W] (gray), default 40x40 with stack 2 (small, so tests run fast).
The newest frame is last; a reset fills the stack with the first frame (`FrameStack`).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from hakisa.input_map import Command, InputMap
from hakisa.preprocess import FrameStack, ObsSpec, preprocess

TOY_SPEC = ObsSpec(width=40, height=40, gray=True, stack=2)


def keypress_map() -> InputMap:
    return InputMap(
        "toy-keypress", [Command("noop", "noop")] + [Command(k, "keys", (k,)) for k in ("up", "down", "left", "right")]
    )


def click_map(bins: int = 4) -> InputMap:
    return InputMap(
        "toy-click",
        [Command("noop", "noop"), Command("a", "keys", ("a",)), Command("click", "click_left")],
        x_bins=bins,
        y_bins=bins,
    )


class _ToyEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, input_map: InputMap, obs_spec: ObsSpec = TOY_SPEC, episode_len: int = 16, render_mode=None):
        self.input_map, self.obs_spec, self.episode_len = input_map, obs_spec, episode_len
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, obs_spec.shape, np.uint8)
        self.action_space = input_map.action_space
        self.stack = FrameStack(obs_spec)
        self.t = 0

    # subclasses: _new_target(), _reward(action), _draw(canvas BGRA [H, W, 4])
    def _frame(self) -> np.ndarray:
        canvas = np.zeros((self.obs_spec.height, self.obs_spec.width, 4), np.uint8)
        canvas[..., 3] = 255
        self._draw(canvas)
        self._canvas = canvas
        return preprocess(canvas, self.obs_spec)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self._new_target()
        return self.stack.reset(self._frame()), {}

    def step(self, action):
        r = float(self._reward(np.asarray(action)))
        self.t += 1
        self._new_target()
        obs = self.stack.push(self._frame())
        return obs, r, False, self.t >= self.episode_len, {"correct": r > 0}

    def render(self):
        return self._canvas[..., 2::-1].copy()


class KeyPressEnv(_ToyEnv):
    """`Toy/KeyPress-v0`: a bright block in one of 5 columns; the right command is the column's index.

    Observation: uint8 `obs_spec.shape` (gray 40x40, stack 2 by default). Action: MultiDiscrete of
    `keypress_map()` ([noop, up, down, left, right], one x and one y bin). Reward: 1 when the command matches the
    block shown in the last observation, else 0. Episode end: never terminated; truncated after `episode_len`
    steps. Info: {"correct": bool}."""

    def __init__(self, obs_spec: ObsSpec = TOY_SPEC, episode_len: int = 16, render_mode=None):
        super().__init__(keypress_map(), obs_spec, episode_len, render_mode)

    def _new_target(self):
        self.target = int(self.np_random.integers(len(self.input_map.commands)))

    def _reward(self, a):
        return int(a[0]) == self.target

    def _draw(self, c):
        n, w = len(self.input_map.commands), c.shape[1]
        x0, x1 = self.target * w // n, (self.target + 1) * w // n
        c[c.shape[0] // 4 : 3 * c.shape[0] // 4, x0:x1, :3] = 255


class ClickEnv(_ToyEnv):
    """`Toy/Click-v0`: one lit cell of a `bins` x `bins` grid; click it.

    Observation: uint8 `obs_spec.shape` (gray 40x40, stack 2 by default). Action: MultiDiscrete of
    `click_map(bins)` ([noop, "a", click_left] x bins x bins). Reward: 1 for click_left at the lit cell's (x, y)
    bin in the last observation, else 0. Episode end: never terminated; truncated after `episode_len` steps.
    Info: {"correct": bool}."""

    def __init__(self, obs_spec: ObsSpec = TOY_SPEC, episode_len: int = 16, bins: int = 4, render_mode=None):
        super().__init__(click_map(bins), obs_spec, episode_len, render_mode)

    def _new_target(self):
        self.target = (
            int(self.np_random.integers(self.input_map.x_bins)),
            int(self.np_random.integers(self.input_map.y_bins)),
        )

    def _reward(self, a):
        return self.input_map.commands[int(a[0])].kind == "click_left" and (int(a[1]), int(a[2])) == self.target

    def _draw(self, c):
        h, w = c.shape[:2]
        bx, by = self.input_map.x_bins, self.input_map.y_bins
        x, y = self.target
        c[y * h // by : (y + 1) * h // by, x * w // bx : (x + 1) * w // bx, :3] = 255


TOY_ENVS = {"Toy/KeyPress-v0": KeyPressEnv, "Toy/Click-v0": ClickEnv}
