"""A live loop in its own process, for the safety tests (crash, signals, kill switch).

    python tests/live_child.py --title "target" --action 6 [--no-guardian] [--no-signals]

Captures the window (on $HAKISA_BACKEND: the parent test's backend), steps a `ScreenEnv` over it (rules that
read nothing) with an action that is always `--action` (duel map: 6 = left+roll, holding Left and Space), prints
"SENT" after the first step and {"steps", "stopped"} as JSON when it stops. --raise-at / --no-close exercise the
exception and atexit exit paths.
"""
from __future__ import annotations

import argparse
import json

from hakisa.capture import Capture
from hakisa.envs.screen import ScreenEnv
from hakisa.input_map import InputMap
from hakisa.rewards.game import GameJudge
from hakisa.sink import KillSwitch, make_sink


def run(cap, sink, decide, steps: int, hz: float, on_step=None) -> dict:
    """Step the window until `steps` steps or the kill switch."""
    imap = InputMap.load("duel")
    env = ScreenEnv(imap, GameJudge.blank(), capture=cap, sink=sink, hz=hz, gate_input=False, watch=None,
                    own_capture=False)
    env.reset()
    n, stopped = 0, "steps"
    try:
        for i in range(steps):
            env.step(decide(None))
            n += 1
            if on_step is not None:
                on_step(i)
    except KillSwitch:
        stopped = "kill_switch"
    return {"steps": n, "stopped": stopped}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", required=True)
    ap.add_argument("--action", type=int, default=6)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--hz", type=float, default=30)
    ap.add_argument("--no-guardian", action="store_true")
    ap.add_argument("--no-signals", action="store_true")
    ap.add_argument("--raise-at", type=int, default=None, help="decide() raises RuntimeError at this step")
    ap.add_argument("--no-close", action="store_true",
                    help="run --steps steps without a `with` block or close(): exit relies on atexit")
    args = ap.parse_args()

    def decide(obs):
        decide.n += 1
        if decide.n == args.raise_at:
            raise RuntimeError("a bug in the policy")
        return [args.action, 0, 0]

    decide.n = 0
    if args.no_close:
        cap = Capture(title=args.title)
        sink = make_sink(InputMap.load("duel"), cap, guardian=not args.no_guardian)
        run(cap, sink, decide, steps=args.steps, hz=args.hz)
        print("EXITING", flush=True)
        return
    with Capture(title=args.title) as cap, make_sink(InputMap.load("duel"), cap, guardian=not args.no_guardian,
                                                      handle_signals=not args.no_signals) as sink:
        def on_step(i):
            if i == 0:
                print("SENT", flush=True)

        stats = run(cap, sink, decide, steps=args.steps, hz=args.hz, on_step=on_step)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
