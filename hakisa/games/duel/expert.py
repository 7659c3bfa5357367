"""The scripted expert: the reference player a learned agent has to beat.

It reads the TRUE sim state (no pixels) and plays the duel's intended loop:
  * the boss winds up a cleave -> step in close and WAIT for the reveal (cleave_reveal ticks before the
    strike the boss decides whether to hold the swing, and it holds against a knight already rolling),
    then roll THROUGH it so the i-frames cover the active frames and the roll ends behind the boss;
    if its next decision would come too late for that roll, raise the shield now instead;
  * the boss recovers -> punish: swing while the recovery lasts;
  * otherwise -> keep a roll and a block's worth of stamina, bait the boss at swing range, poke when it
    is on cooldown and not guarding, back off to regenerate when stamina is low; stay out of swings
    that cannot reach (a noisy boss's whims) and punish their recovery.
It decides from the current state only; `period` tells it how many ticks its keys will be held (the
env's default: every 4 ticks). Vectorised over fights: `expert_keys(sim.state)`.
"""
from __future__ import annotations

import numpy as np
import torch

from hakisa.games.duel.sim import (
    B_ACTIVE,
    B_GUARD,
    B_RECOVER,
    B_WINDUP,
    K_ATTACK,
    KEY_ATTACK,
    KEY_BLOCK,
    KEY_LEFT,
    KEY_RIGHT,
    KEY_ROLL,
    KEYS_TO_COMMAND,
    load_rules,
)

_RULES = load_rules()


def expert_keys(state: dict[str, np.ndarray], rules: dict | None = None, style: str = "roll",
                period: int = 4, roll_margin: int = 0, seen_only: bool = False) -> np.ndarray:
    """uint8[n] key bitmask for each fight.

    style "roll" (the reference): wait for the reveal, then roll through; when its next decision would
    come too late for that roll, raise the shield now instead. `period` = ticks until its next decision.
    style "block": raise the shield before every strike instead of rolling (a turtle line; the chip
    damage and the stamina it costs lose to the follow-up swings). Measured beside the reference in
    benchmarks/duel_winrates.py.
    roll_margin: roll this many ticks INTO the roll window instead of on its first tick. The reference (0)
    rolls at the earliest tick that works, the edge of a cliff: one tick earlier and the blow's last active
    frames land. A player whose timing wobbles (a person; a clone of one) aims for the window's middle.
    seen_only: decide only from what the screen shows. The reference pokes while the boss's cooldown runs,
    which no frame shows (the boss looks the same with or without it): a clone of that cannot tell when to
    poke, so it never does and runs out of time. With seen_only it pokes whenever the boss is free, not
    guarding and in reach (a roll is still kept in reserve).
    """
    r = rules or _RULES
    g = _geometry(state, r)
    threatened, swinging, act_now, dodge, keep_out = _against_the_cleave(state, r, g, style, period, roll_margin)
    K = r["knight"]
    # before the reveal: close in (so the roll goes through and the punish is in reach)
    wait = np.where(g["dist"] > K["attack_reach"] - 16, g["to_boss"], 0)
    punish, punish_keys, neutral = _between_swings(state, r, g, seen_only)
    keys = np.where(threatened, np.where(act_now, dodge, wait),
                    np.where(swinging, keep_out, np.where(punish, punish_keys, neutral)))
    return keys.astype(np.uint8)


def _geometry(state: dict, r: dict) -> dict:
    """Where the knight stands: distance in pixels, the keys towards and away from the boss, its position
    along the boss's facing, its stamina and the boss's action and timer."""
    fp, kx, bx = r["fp"], state["kx"], state["bx"]
    return {"dist": np.abs(kx - bx) // fp, "to_boss": np.where(bx >= kx, KEY_RIGHT, KEY_LEFT),
            "away": np.where(bx >= kx, KEY_LEFT, KEY_RIGHT), "st": state["k_st"], "ba": state["b_act"],
            "bt": state["b_t"], "rel": (kx - bx) * state["b_face"] // fp}


def _against_the_cleave(state: dict, r: dict, g: dict, style: str, period: int, roll_margin: int):
    """(threatened, swinging, act_now, dodge, keep_out): whether a cleave can reach us, whether the boss is
    swinging at all, whether to dodge now, the dodge's keys (a roll through, else the shield), and the keys
    that stay out of a swing that cannot reach."""
    fp, K, B = r["fp"], r["knight"], r["boss"]
    dist, to_boss, away, st, ba, bt, rel = (g[k] for k in ("dist", "to_boss", "away", "st", "ba", "bt", "rel"))
    # ---- the cleave: when does its hitbox go live, and are we in it? ---------------------------
    roll_px = K["roll_speed"] * K["roll_len"] // fp  # how far a roll carries us
    until_active = np.where(ba == B_WINDUP, state["b_len"] - bt, 0)
    lunge_px = B["lunge_speed"] * B["cleave_active"] // fp
    swinging = (ba == B_WINDUP) | ((ba == B_ACTIVE) & (state["b_hit"] == 0))
    # the boss re-aims on the strike, so "behind" only helps once the blade is out; the lunge adds reach
    threatened = swinging & (dist <= B["cleave_reach"] + lunge_px + 12)
    # Whether the swing is held (delayed) is only decided cleave_reveal ticks before the normal strike;
    # the expert waits for that (rolling earlier loses to the delay), then rolls. i-frames run over roll
    # ticks [start, end) and keys act from the next tick, so a roll pressed now covers active frames that
    # begin start+1 .. end-active+1 ticks from now. Too late for that -> block (chip damage) instead.
    revealed = bt >= B["cleave_windup"] - B["cleave_reveal"]
    lead_lo = K["roll_iframe_start"] + 1
    lead_hi = K["roll_iframe_end"] - B["cleave_active"] + 1
    act_now = (ba == B_ACTIVE) | (revealed & (until_active <= max(lead_lo, lead_hi - roll_margin)))
    in_time = (ba == B_WINDUP) & (until_active >= lead_lo)
    through_ok = rel - roll_px < -B["cleave_back"] - 4        # a roll towards the boss ends safely behind it
    roll_keys = KEY_ROLL | np.where(through_ok, to_boss, away)
    can_roll = st >= K["roll_cost"]
    can_block = st >= K["block_stamina"]
    dodge = np.where(in_time & can_roll, roll_keys,
                     np.where(can_block, KEY_BLOCK, np.where(can_roll, roll_keys, away)))
    # not revealed yet, but by our next decision a roll would be too late: shield up now (a block is not
    # a commitment the boss reads, and it needs block_startup ticks, so it has to start before the reveal)
    too_late_next = (ba == B_WINDUP) & ~revealed & (until_active - period < lead_lo) & can_block
    act_now |= too_late_next
    dodge = np.where(too_late_next, KEY_BLOCK, dodge)
    if style == "block":  # shield up from well before the reveal (block_startup + a decision of slack)
        act_now = (ba == B_ACTIVE) | (until_active <= B["cleave_reveal"] + K["block_startup"] + 4)
        dodge = np.where(can_block, KEY_BLOCK, np.where(in_time & can_roll, roll_keys, away))
    # a swing that cannot reach us (often a noisy boss's whim): stay out of it, then punish the recovery
    keep_out = np.where(dist <= B["cleave_reach"] + lunge_px + 24, away, 0)
    return threatened, swinging, act_now, dodge, keep_out


def _between_swings(state: dict, r: dict, g: dict, seen_only: bool):
    """(punish, punish_keys, neutral): whether the boss's recovery leaves time for a swing, the keys that
    punish it, and the neutral game's keys (bait at swing range with a roll in reserve, poke on cooldown)."""
    K, B = r["knight"], r["boss"]
    dist, to_boss, away, st, ba, bt = (g[k] for k in ("dist", "to_boss", "away", "st", "ba", "bt"))
    kx, bx = state["kx"], state["bx"]
    # ---- punish the recovery ---------------------------------------------------------------------
    in_reach = (dist <= K["attack_reach"] - 4) & (kx != bx)
    swing_fits = (B["cleave_recover"] - bt) > K["attack_windup"]
    punish = (ba == B_RECOVER) & swing_fits
    # a boss at low HP comes back after a short cooldown: keep a roll for that
    boss_low = state["b_hp"] * 100 <= B["hp"] * B["low_hp_pct"]
    punish_cost = K["attack_cost"] + np.where(boss_low, K["roll_cost"], 0)
    punish_keys = np.where(in_reach & (st >= punish_cost), KEY_ATTACK, to_boss)

    # ---- neutral: bait at swing range with a roll in reserve, poke on cooldown -------------------
    reserve = K["roll_cost"] + K["block_stamina"] + K["attack_cost"]
    on_cooldown = True if seen_only else state["b_cd"] > 0
    poke = on_cooldown & (ba != B_GUARD) & in_reach & (st >= reserve) & (state["k_act"] != K_ATTACK)
    low_st = st < K["roll_cost"]
    neutral = np.where(poke, KEY_ATTACK,
                       np.where(low_st, np.where(dist < B["cleave_reach"] + 40, away, 0),
                                np.where(dist > K["attack_reach"] - 12, to_boss, 0)))
    return punish, punish_keys, neutral


class ExpertPlayer:
    """The expert as a player `hakisa.evaluate.evaluate` runs like an agent: it reads the sim's true state
    (`envs.fights.sim.state`), not the observation it is given, and moves with keys only (x, y 0)."""

    def __init__(self, envs):
        self.envs, self.obs_spec = envs, envs.obs_spec

    def act(self, obs, mode: str = "argmax") -> torch.Tensor:
        cmd = KEYS_TO_COMMAND[expert_keys(self.envs.fights.sim.state)]
        return torch.from_numpy(np.stack([cmd, 0 * cmd, 0 * cmd], 1))

    def eval(self):  # evaluate() puts a net in eval mode; a script has none
        return self


def play_expert(episodes: int, opts: dict | None = None, seed: int = 12345, num_envs: int = 16, collect=None,
                obs_spec=None) -> dict:
    """The expert in the duel's vector env, counted by `evaluate` as any agent is: the arena's scripted
    baseline (games/duel.json's `sim.expert`). Returns the summary.

    collect: an `hakisa.data.EpisodeWriter`; each counted fight is written to it (what the expert saw
    before each decision, the command it chose, reward, done; frames on the sim's clock, with the fight's
    setting), as `evaluate(collect=...)` does for an agent. This is how notebooks and tests make a teacher
    dataset without a display.
    obs_spec: render at this spec (e.g. a smaller one for a fast study run); default the env's."""
    from hakisa.evaluate import evaluate
    from hakisa.game import Game

    n = max(1, min(num_envs, episodes))
    game = Game.load("duel")
    envs = game.sim_vec(n, seed=seed, opts=opts, **({"obs_spec": obs_spec} if obs_spec else {}))
    try:
        return evaluate(ExpertPlayer(envs), envs, episodes, seed=seed, collect=collect, frame_hz=game.hz,
                        episode_info=opts)
    finally:
        envs.close()
