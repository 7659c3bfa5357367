"""Fleet: N live windows of one game, stepped as one SAME_STEP vector env on one clock.

    with Fleet(Game.load("pop"), 4) as envs:        # four private Xvfb displays, a browser on each
        obs, _ = envs.reset()
        obs, r, term, trunc, info = envs.step(actions)   # [4, ...] like any Hakisa vector env

Each window is a `ScreenEnv` over a `LiveGame`. With more than one window every game gets a private
Xvfb display of its own (`Game.open(private=True)`): its capture and its sink talk only to that display,
so input meant for one window cannot reach another, or the user's desktop. One step sends every
window its action, sleeps once to the shared tick, then grabs and judges every window: the windows
share the game's decision rate instead of each paying for its own sleep.

An episode that ends is reset in the same step (SAME_STEP autoreset: `info["final_obs"]` holds its
last frame stack), unless the window was `retire`d: then it is left idle with every key released and
no new game is started. Resets navigate (a restart key, a wait for the game), so the clock restarts
after them and their time is never counted as a late step. `timing()` reports the step period, its
jitter and the late-step share.
"""
from __future__ import annotations

import time
from contextlib import ExitStack

import gymnasium as gym
import numpy as np

from hakisa.live import TickClock


class Fleet(gym.vector.VectorEnv):
    """`n` live windows of one game as a Gymnasium vector env: one `ScreenEnv` per window, one shared tick.

    Observation and action spaces: the `ScreenEnv`'s (uint8 `obs_spec.shape`; the game's MultiDiscrete
    [command, x, y]), batched over the windows. Reward and episode end: each window's judge and `max_steps`;
    SAME_STEP autoreset (`info["final_obs"]`), except a `retire`d window, which then idles. Info: winner,
    score, episode, final_obs, late_ms, missed_ticks, masked per window. Closing it closes every env and window."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_fps": 15}

    def __init__(self, game, n: int = 1, *, opts: dict | None = None, obs_spec=None, private: bool | None = None,
                 hz: float | None = None, max_steps: int | None = None, kill_key: str | None = "auto"):
        """private: one Xvfb display per window (default: when n > 1). kill_key: as ScreenEnv's."""
        self.game, self.num_envs = game, int(n)
        private = self.num_envs > 1 if private is None else private
        self.obs_spec, self.input_map = obs_spec or game.obs_spec, game.input_map
        self.hz = float(hz or game.hz)
        self.metadata = {**self.metadata, "render_fps": self.hz}
        self._stack = ExitStack()
        self.lives, self.envs = [], []
        try:
            for _ in range(self.num_envs):
                live = self._stack.enter_context(game.open(opts=opts, private=private))
                env = game.screen_env(live, obs_spec=self.obs_spec, hz=self.hz, max_steps=max_steps, kill_key=kill_key)
                self._stack.callback(env.close)  # LIFO: the env lets go of its keys before its window closes
                self.lives.append(live)
                self.envs.append(env)
        except BaseException:
            self._stack.close()
            raise
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.clock = TickClock(self.hz)
        self.active = np.ones(self.num_envs, bool)  # False: idle, no input, not observed
        self._retired = np.zeros(self.num_envs, bool)
        self._obs = np.zeros(self.observation_space.shape, np.uint8)
        self._ticks: list[float] = []  # when each step's tick fired
        self._late: list[int] = []  # ticks missed per step
        self._reset_after: list[bool] = []  # a reset ran in that step (its period is not a real-time step)
        self.resets = 0

    # ---- gym API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        for i, env in enumerate(self.envs):
            self._obs[i], _ = env.reset(seed=None if seed is None else seed + i)
        self.active[:] = True
        self._retired[:] = False
        self.clock.restart()
        return self._obs.copy(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        t_sent = time.perf_counter()
        for i in np.flatnonzero(self.active):
            t_sent = self.envs[i].send(actions[i])
        late, missed = self.clock.tick(t_sent, self._kill_event())
        self._ticks.append(time.perf_counter())
        self._late.append(missed)
        n = self.num_envs
        rew, term, trunc = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        infos: dict = {}
        reset_any = False
        for i in np.flatnonzero(self.active):
            env = self.envs[i]
            obs, r, te, tr, info = env.observe(late, missed)
            rew[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                info = {**info, "final_obs": obs}
                if self._retired[i]:
                    self.active[i] = False  # no new game: it stays idle, every key released (the env did)
                else:
                    obs, _ = env.reset()
                    reset_any = True
                    self.resets += 1
            self._obs[i] = obs
            _add_info(infos, info, i, n)
        if reset_any:
            self.clock.restart()
        self._reset_after.append(reset_any)
        return self._obs.copy(), rew, term, trunc, infos

    def retire(self, i: int) -> None:
        """When window i's current episode ends, start no other (it idles with its keys released)."""
        self._retired[i] = True

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close_extras(self, **kwargs) -> None:
        self._stack.close()

    # ---- reports --------------------------------------------------------------------------------
    def timing(self) -> dict:
        """Step period, jitter (std of the period over the nominal period) and late-step share, over the
        steps so far; periods that span a reset are left out (a reset navigates, it is not a step)."""
        t = np.asarray(self._ticks)
        if len(t) < 3:
            return {"steps": len(t)}
        periods = np.diff(t)[~np.asarray(self._reset_after[:-1])]
        nominal = 1.0 / self.hz
        late = np.asarray(self._late) > 0
        return {"steps": len(t), "windows": self.num_envs, "hz": self.hz,
                "period_ms_mean": round(float(periods.mean() * 1e3), 3),
                "period_ms_std": round(float(periods.std() * 1e3), 3),
                "jitter": round(float(periods.std() / nominal), 4),
                "period_ms_p99_dev": round(float(np.percentile(np.abs(periods - nominal), 99) * 1e3), 3),
                "late_share": round(float(late.mean()), 5), "late_steps": int(late.sum()), "resets": self.resets}

    def _kill_event(self):
        # any window's kill switch stops the whole fleet
        for env in self.envs:
            ev = getattr(env.sink, "kill_event", None)
            if ev is not None and ev.is_set():
                return ev
        return getattr(self.envs[0].sink, "kill_event", None)


def _add_info(infos: dict, info: dict, i: int, n: int) -> None:
    """Gymnasium's vector info layout: infos[key][i] with a boolean mask infos["_key"]."""
    for k in ("winner", "score", "episode", "final_obs", "late_ms", "missed_ticks"):
        if k in info and info[k] is not None:
            if k not in infos:
                infos[k] = np.empty(n, object)
                infos[f"_{k}"] = np.zeros(n, bool)
            infos[k][i] = info[k]
            infos[f"_{k}"][i] = True
