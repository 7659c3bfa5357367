"""A studied (or any duel) checkpoint in the sim under several decision rates and action delays.

    python benchmarks/investigations/eval_study_sweep.py runs/ts80/study-init/best --fights 100 1:0 1:2 4:0 4:2

Each setting is DECISION_TICKS:ACTION_DELAY: the agent decides every DECISION_TICKS 60 Hz ticks (its
stacked frames stay 4 ticks apart, as recorded at 15 fps) and its keys act ACTION_DELAY ticks later.
Argmax actions, the normal tier, the same fight seeds for every setting. Last line: JSON {setting: win rate}.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("settings", nargs="+", help="DECISION_TICKS:ACTION_DELAY, e.g. 1:2")
    ap.add_argument("--fights", type=int, default=100)
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--stack-ticks", type=int, default=4, help="ticks between stacked frames (60 / recorded fps)")
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args(argv)

    from hakisa.games.duel.evaluate import evaluate_duel
    from hakisa.model import load_checkpoint

    torch.set_num_threads(2)
    out = {}
    for s in args.settings:
        ticks, delay = map(int, s.split(":"))
        net, _ = load_checkpoint(args.checkpoint)
        r = evaluate_duel(net, args.fights, args.tier, ticks, seed=args.seed, deterministic=True,
                          action_delay=delay, stack_ticks=args.stack_ticks)
        out[s] = r["win_rate"]
        print(f"{s}: win rate {r['win_rate']:.3f}, boss damage {r['mean_boss_damage']:.1f}", flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
