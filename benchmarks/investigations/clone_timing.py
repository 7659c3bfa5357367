"""Where a duel agent's timing goes wrong: its rolls and its choices, tick by tick, beside the expert's.

    python benchmarks/investigations/clone_timing.py runs/ts60/study-init-stride4/best --fights 50 --delay 0
    python benchmarks/investigations/clone_timing.py expert --fights 50   # the per-tick expert, as the page teacher
    python benchmarks/investigations/clone_timing.py expert --roll-margin 0 --use-cooldown   # the reference expert

Plays `--fights` sim fights deciding every tick (frames stacked --stack-ticks apart, keys acting --delay
ticks late) and reports, as JSON on the last line:
  * win rate;
  * rolls: when each roll STARTED, by the boss's phase (no wind-up / wind-up before the reveal / after
    the reveal, by ticks until the blow / during the blow / recovery), and how many wind-ups the boss
    HELD (it holds against a knight already rolling: a roll before the reveal wastes the roll);
  * agreement: on every tick, whether the agent's command equals the per-tick expert's for the same
    true state, by boss phase (the expert is what the page teacher played, so this is what cloning aims at).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from dataclasses import replace

import numpy as np
import torch

from hakisa.games.duel.expert import expert_keys
from hakisa.games.duel.sim import B_ACTIVE, B_RECOVER, B_WINDUP, K_ROLL, KEYS_TO_COMMAND


def phase(s: dict, rules: dict) -> np.ndarray:
    """A label per fight for the boss's phase, as the roll timing cares about it."""
    B = rules["boss"]
    ba, bt, blen = s["b_act"], s["b_t"], s["b_len"]
    until = blen - bt
    out = np.full(len(ba), "free", dtype=object)
    w = ba == B_WINDUP
    revealed = bt >= B["cleave_windup"] - B["cleave_reveal"]
    out[w & ~revealed] = "windup-before-reveal"
    for lo, hi in ((14, 99), (10, 13), (6, 9), (3, 5), (0, 2)):
        out[w & revealed & (until >= lo) & (until <= hi)] = f"windup-revealed-blow-in-{lo}-{hi}"
    out[ba == B_ACTIVE] = "blow"
    out[ba == B_RECOVER] = "recovery"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("agent", help="a checkpoint directory, or 'expert'")
    ap.add_argument("--fights", type=int, default=50)
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--delay", type=int, default=0, help="ticks between a decision and its effect")
    ap.add_argument("--stack-ticks", type=int, default=4)
    ap.add_argument("--roll-margin", type=int, default=7, help="the expert's roll_margin (7: the page teacher's)")
    ap.add_argument(
        "--use-cooldown", action="store_true", help="the expert pokes on the hidden cooldown (the reference)"
    )
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args(argv)

    from hakisa.games.duel.env import DuelVecEnv
    from hakisa.preprocess import ObsSpec

    torch.set_num_threads(2)
    net = None
    spec = ObsSpec(width=80, height=45, gray=True, stack=4)
    if args.agent != "expert":
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(args.agent)
        net.eval()
        spec = replace(net.obs_spec, crop=None)
    n = min(16, args.fights)
    env = DuelVecEnv(
        n,
        tier=args.tier,
        seed=args.seed,
        frame_skip=1,
        obs_spec=spec,
        action_delay=args.delay,
        stack_ticks=args.stack_ticks,
    )
    sim, rules = env.fights.sim, env.fights.rules
    obs, _ = env.reset()
    rolls: collections.Counter = collections.Counter()
    agree: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    chosen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    wanted: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    winners, started, counted = [], n, np.ones(n, bool)
    timeouts, boss_left = 0, []  # how the lost fights were lost: the clock, or the knight's HP
    held_seen = np.zeros(n, bool)
    holds = windups = 0
    while len(winners) < args.fights and counted.any():
        s = {k: v.copy() for k, v in sim.state.items()}
        want = KEYS_TO_COMMAND[expert_keys(s, period=1, roll_margin=args.roll_margin, seen_only=not args.use_cooldown)]
        if net is None:
            cmd = want
        else:
            with torch.no_grad():
                cmd = net.act(torch.from_numpy(obs), "argmax").numpy()[:, 0]
        ph = phase(s, rules)
        for i in np.flatnonzero(counted):
            a = agree[ph[i]]
            a[0] += int(cmd[i] == want[i])
            a[1] += 1
            chosen[ph[i]][int(cmd[i])] += 1
            wanted[ph[i]][int(want[i])] += 1
        k_before = s["k_act"].copy()
        obs, _, term, trunc, info = env.step(np.stack([cmd, np.zeros(n, int), np.zeros(n, int)], 1))
        s2 = sim.state
        new_roll = (s2["k_act"] == K_ROLL) & (k_before != K_ROLL) & ~(term | trunc)
        for i in np.flatnonzero(new_roll & counted):
            rolls[ph[i]] += 1
        # a wind-up that gets held shows b_len > cleave_windup; count each wind-up once
        w = (s2["b_act"] == B_WINDUP) & ~(term | trunc)
        is_held = w & (s2["b_len"] > rules["boss"]["cleave_windup"])
        starts = w & (s2["b_t"] == 0)
        windups += int((starts & counted).sum())
        holds += int((is_held & ~held_seen & counted).sum())
        held_seen = np.where(w, held_seen | is_held, False)
        for i in np.flatnonzero(term | trunc):
            if counted[i]:
                winners.append(int(info["winner"][i]))
                timeouts += int(info["winner"][i] == 2 and info["knight_hp"][i] > 0)
                boss_left.append(int(info["boss_hp"][i]))
            counted[i] = started < args.fights
            started += counted[i]
    env.close()
    names = [c.name for c in env.input_map.commands]
    out = {
        "agent": args.agent,
        "delay": args.delay,
        "roll_margin": args.roll_margin,
        "fights": len(winners),
        "win_rate": float(np.mean(np.array(winners) == 1)),
        "timeouts": timeouts,
        "mean_boss_hp_left": float(np.mean(boss_left)),
        "windups": windups,
        "held_windups": holds,
        "roll_starts_by_phase": dict(rolls),
        "agreement_by_phase": {k: round(v[0] / max(1, v[1]), 3) for k, v in sorted(agree.items())},
        "ticks_by_phase": {k: v[1] for k, v in sorted(agree.items())},
        "chosen_by_phase": {k: {names[c]: m for c, m in v.most_common(4)} for k, v in sorted(chosen.items())},
        "expert_by_phase": {k: {names[c]: m for c, m in v.most_common(4)} for k, v in sorted(wanted.items())},
    }
    for k in (
        "win_rate",
        "timeouts",
        "mean_boss_hp_left",
        "windups",
        "held_windups",
        "roll_starts_by_phase",
        "agreement_by_phase",
    ):
        print(f"{k}: {out[k]}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
