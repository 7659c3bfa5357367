"""The duel's own evaluation: win rate and boss damage over fights on fixed seeds, with the sim's tick knobs.

A game-agnostic evaluation is `hakisa.evaluate.evaluate`; this one adds what only the duel has: the
damage dealt to the boss (a graded signal where wins are still rare), per-tick decisions with frames
stacked at another spacing, and keys that act some ticks late (a live page's lag).
"""
from __future__ import annotations

from dataclasses import replace

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

    max_steps: stop after this many decisions; fights still running then count as not won, with the
    damage dealt so far (a quick check for tests: an agent that learned nothing deals little)."""
    from hakisa.games.duel.env import DuelVecEnv

    # the sim renders the canvas alone: a crop recorded to cut the canvas out of a window does not apply
    env = DuelVecEnv(min(num_envs, episodes), tier=tier, seed=seed, frame_skip=frame_skip,
                     obs_spec=replace(net.obs_spec, crop=None), action_delay=action_delay, stack_ticks=stack_ticks)
    obs, info = env.reset()
    boss_hp0 = int(info["boss_hp"][0])
    gen = torch.Generator().manual_seed(seed)
    winners: list[int] = []
    damage: list[int] = []  # boss HP taken per fight: a graded signal where wins are still rare
    started = env.num_envs  # count only fights started within the budget: no bias towards short ones
    counted = np.ones(env.num_envs, bool)
    net.eval()
    steps = 0
    while len(winners) < episodes and counted.any():
        if max_steps is not None and steps >= max_steps:
            info = env.fights.info()
            for i in np.flatnonzero(counted)[: episodes - len(winners)]:
                winners.append(0)
                damage.append(int(boss_hp0 - info["boss_hp"][i]))
            break
        steps += 1
        with torch.no_grad():
            a = net.act(torch.from_numpy(obs), "argmax" if deterministic else "sample", generator=gen)
        obs, _, term, trunc, info = env.step(a.numpy())
        for i in np.flatnonzero(term | trunc):
            if counted[i]:
                winners.append(int(info["winner"][i]))
                damage.append(int(boss_hp0 - info["boss_hp"][i]))
            counted[i] = started < episodes
            started += counted[i]
    env.close()
    net.train()
    w = np.array(winners[:episodes])
    return {"episodes": int(len(w)), "win_rate": float((w == 1).mean()) if len(w) else 0.0,
            "mean_boss_damage": float(np.mean(damage[:episodes])) if damage else 0.0, "tier": tier,
            "deterministic": deterministic, "frame_skip": frame_skip, "action_delay": action_delay,
            "stack_ticks": stack_ticks or frame_skip}


