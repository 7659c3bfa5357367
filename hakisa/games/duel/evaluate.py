"""The duel's own evaluation: win rate and boss damage over fights on fixed seeds, with the sim's tick knobs.

The fights are played by the one episode loop, `hakisa.evaluate.evaluate`; this adds what only the duel has:
the damage dealt to the boss (a graded signal where wins are still rare), per-tick decisions with frames
stacked at another spacing, and keys that act some ticks late (a live page's lag).
"""
from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch


def evaluate_duel(net, episodes: int, tier: str = "normal", frame_skip: int = 4, seed: int = 12345,
                  deterministic: bool = False, num_envs: int = 16, max_steps: int | None = None,
                  action_delay: int = 0, stack_ticks: int | None = None) -> dict:
    """Win rate of `net` in the duel sim (DuelVecEnv, SAME_STEP autoreset) over `episodes` fights.

    frame_skip: ticks between decisions; stack_ticks: ticks between the stacked frames (default frame_skip).
    A clone of a 15 fps recording sees frames 4 ticks apart, but the person it copies could press at any
    tick and the recorder caught them at random phases of the game's 4-tick grid: such a clone is a
    per-tick policy, so frame_skip=1, stack_ticks=4 runs it as it was recorded.

    max_steps: every fight (one per env then) ends after this many decisions; one still running counts as
    not won, with the damage dealt so far (a quick check for tests: an agent that learned nothing deals
    little)."""
    from hakisa.evaluate import evaluate
    from hakisa.games.duel.env import DuelVecEnv

    n = episodes if max_steps is not None else min(num_envs, episodes)
    # the sim renders the canvas alone: a crop recorded to cut the canvas out of a window does not apply
    env = _Fights(DuelVecEnv(n, tier=tier, seed=seed, frame_skip=frame_skip, obs_spec=replace(net.obs_spec, crop=None),
                             action_delay=action_delay, stack_ticks=stack_ticks), max_steps)
    try:
        with torch.random.fork_rng():  # sampled actions: the same fights for the same seed, the caller's RNG untouched
            torch.manual_seed(seed)
            s = evaluate(net, env, episodes, "argmax" if deterministic else "sample", seed=seed)
    finally:
        env.close()
        net.train()
    return {"episodes": s["episodes"], "win_rate": s.get("win_rate", 0.0), "mean_boss_damage": s.get("mean_score", 0.0),
            "tier": tier, "deterministic": deterministic, "frame_skip": frame_skip, "action_delay": action_delay,
            "stack_ticks": stack_ticks or frame_skip}


class _Fights(gym.vector.VectorWrapper):
    """The duel's fights with the boss HP taken so far as each fight's `score`, and with `max_steps` a deadline
    at which every fight still running is truncated (its winner is 0 then: not won)."""

    def __init__(self, env, max_steps: int | None):
        super().__init__(env)
        self.max_steps, self.t, self.hp0 = max_steps, 0, None

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self.t, self.hp0 = 0, int(info["boss_hp"][0])
        return obs, info

    def step(self, actions):
        obs, r, term, trunc, info = self.env.step(actions)
        self.t += 1
        info = {**info, "score": self.hp0 - np.asarray(info["boss_hp"])}
        if "final_info" in info:  # where EpisodeStats reads a finished fight from
            final = info["final_info"]
            info["final_info"] = {**final, "score": self.hp0 - np.asarray(final["boss_hp"])}
        if self.max_steps is not None and self.t >= self.max_steps:
            trunc = np.ones_like(trunc)
        return obs, r, term, trunc, info
