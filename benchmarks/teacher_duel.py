"""The scripted teacher: plays the REAL duel page like a person while `hakisa record` watches.

    python benchmarks/teacher_duel.py --fights 20 --tier normal --out datasets/teacher-duel

What is real here: Chromium shows the page on its own Xvfb; the teacher reads the page's test hook
(`hakisa.state()`) to decide with the scripted expert (hakisa.games.duel.expert), and presses keys as
real X events through XTest (the same path xdotool uses), after a human-like reaction delay (~50 ms).
Like a good player it acts on where the fight WILL be when its keys land: it steps a copy of the
page's state forward with the sim (the same rules) over that delay. That matters: the expert's rolls
are tick-precise, and in the sim a 2-tick timing jitter alone drops it from ~100 % to ~10 % wins on
"normal"; deciding every tick (`--rate 60`) from tick-fresh reads keeps the teacher near the expert.
It rolls `--roll-margin` ticks into the roll window (expert_keys' roll_margin), not on its first tick: the
reference expert's first-tick roll sits on a cliff (roll before it and the blow lands) that a clone's tick
or two of timing noise falls off, and measured in the sim a roll 7 ticks in also wins more (per-tick
expert, normal: 86 % -> 100 %; hard: 14 % -> 98.5 %; benchmarks/investigations/clone_timing.py shows where rolls start).
It also decides only from what the screen shows (expert_keys' seen_only): the reference pokes while the
boss's cooldown runs, which no frame shows, so a clone of it never pokes and loses on time.
`hakisa record` runs as a SEPARATE process that sees only the screen's pixels and the X event stream:
it never talks to the page. Fights restart with Enter (a real key) after a short pause on the result
screen; the recorder ends each episode when it sees the result band. At the end the teacher presses
the recorder's stop hotkey (F10). Last line of stdout: JSON with the teacher's record.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hakisa.games.duel.expert import expert_keys
from hakisa.games.duel.sim import KEY_ATTACK, KEY_BLOCK, KEY_LEFT, KEY_RIGHT, KEY_ROLL, DuelSim
from hakisa.games.duel.web import DuelPage

KEYSYMS = {KEY_LEFT: "Left", KEY_RIGHT: "Right", KEY_ROLL: "space", KEY_ATTACK: "j", KEY_BLOCK: "k"}


class XKeys:
    """Real X key events through the XTest extension (what xdotool does, without a process per key)."""

    def __init__(self, display: str):
        from Xlib import XK
        from Xlib import display as xdisplay

        self.dpy = xdisplay.Display(display)
        self.codes = {name: self.dpy.keysym_to_keycode(XK.string_to_keysym(name))
                      for name in [*KEYSYMS.values(), "Return", "F10"]}
        self.down: set[str] = set()

    def _send(self, name: str, press: bool) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.dpy, X.KeyPress if press else X.KeyRelease, self.codes[name])

    def hold(self, names: set[str]) -> None:
        """Make exactly `names` held: release what is no longer wanted, press what is new."""
        for n in sorted(self.down - names):
            self._send(n, False)
        for n in sorted(names - self.down):
            self._send(n, True)
        if names != self.down:
            self.dpy.sync()
        self.down = set(names)

    def tap(self, name: str, hold_s: float = 0.06) -> None:
        self._send(name, True)
        self.dpy.sync()
        time.sleep(hold_s)
        self._send(name, False)
        self.dpy.sync()

    def close(self) -> None:
        self.hold(set())
        self.dpy.close()


def mask_to_names(mask: int) -> set[str]:
    return {name for bit, name in KEYSYMS.items() if mask & bit}


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def anticipate(sim: DuelSim, state: dict, held_mask: int, pending, ticks: int) -> dict:
    """Where the fight will be `ticks` ticks from now, given the keys held now and the decisions already
    queued (mask, first tick they act on): the sim is the page's rules bit for bit, so stepping a copy of
    the page's state forward predicts it (a good player acts on where the boss WILL be, which is what
    hides the reaction delay)."""
    sim.set(0, state)
    queued = [(t, m) for _, m, t in pending]
    mask = held_mask
    for k in range(ticks):
        while queued and queued[0][0] <= state["tick"] + k:
            mask = queued.pop(0)[1]
        sim.step(mask)
    return sim.state


def play(page: DuelPage, keys: XKeys, fights: int, reaction: float, rate: float, seed: int,
         max_seconds: float, rematch_pause: float = 0.6, tier: str = "normal", lead_extra: int = 0,
         roll_margin: int = 7, seen_only: bool = True) -> dict:
    """Fight `fights` times. Decisions are made `rate` times a second from the hook's state, anticipating
    the delay until they take effect, and applied `reaction` seconds later (a person's delay)."""
    rng = np.random.default_rng(seed)
    period_ticks = max(1, int(round(60 / rate)))
    sim = DuelSim(1, tier=tier)
    held_mask = 0
    results: list[int] = []
    t_end = time.monotonic() + max_seconds
    pending: collections.deque = collections.deque()  # (apply_at, key mask, first tick it acts on)
    last_tick, next_decision_tick = -1, 0
    while len(results) < fights and time.monotonic() < t_end:
        snap = page.evaluate("({s: hakisa.state(), m: hakisa.mode()})")
        t_seen = time.monotonic()
        st, mode = snap["s"], snap["m"]
        if mode == "over":
            keys.hold(set())
            pending.clear()
            held_mask = 0
            results.append(int(st["winner"]))
            print(f"fight {len(results)}: {'won' if st['winner'] == 1 else 'lost'} "
                  f"(knight {st['k_hp']} hp, boss {st['b_hp']} hp, {st['tick']} ticks)", flush=True)
            if len(results) >= fights:
                break
            time.sleep(rematch_pause + rng.uniform(0, 0.3))  # look at the result screen, then rematch
            keys.tap("Return")
            wait_for(lambda: page.evaluate("hakisa.mode()") == "play", 10, "the rematch")
            last_tick, next_decision_tick = -1, 0
            continue
        fresh = mode == "play" and st["tick"] != last_tick
        if fresh and last_tick >= 0 and st["tick"] >= next_decision_tick:
            # We read a state right after a tick (we poll every ~2 ms), so we know the page's tick phase.
            # React `n` ticks later, pressing 0.3 tick past that tick so that X -> Chromium delivery lands
            # the keys before the next one: they then act on the step that starts from tick+n, which is
            # the state the decision is made for (anticipated with the sim, exactly the page's rules).
            n = max(0, int(round(reaction * (1 + rng.uniform(-0.3, 0.3)) * 60)))
            future = anticipate(sim, st, held_mask, pending, n + lead_extra)
            keys_mask = expert_keys(future, period=period_ticks, roll_margin=roll_margin, seen_only=seen_only)[0]
            pending.append((t_seen + (n + 0.3) / 60, int(keys_mask), st["tick"] + n))
            next_decision_tick = st["tick"] + period_ticks
        if mode == "play":
            last_tick = st["tick"]
        while pending and pending[0][0] <= time.monotonic():
            held_mask = pending.popleft()[1]
            keys.hold(mask_to_names(held_mask))
        if pending and pending[0][0] - time.monotonic() < 0.003:  # due before the next read returns
            time.sleep(max(0.0, pending[0][0] - time.monotonic()))
            held_mask = pending.popleft()[1]
            keys.hold(mask_to_names(held_mask))
        time.sleep(0.001)
    keys.hold(set())
    rec = page.evaluate("hakisa.record()")
    wins = sum(r == 1 for r in results)
    return {"fights": len(results), "wins": wins, "win_rate": wins / max(1, len(results)), "page_record": rec}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fights", type=int, default=20)
    ap.add_argument("--tier", default="normal", choices=["easy", "normal", "hard"])
    ap.add_argument("--out", required=True, help="episode store the recorder writes")
    ap.add_argument("--fps", type=float, default=15.0, help="recorder capture rate (15 = the sim's 4-tick decisions)")
    ap.add_argument("--obs", default="80x45", help="recorded frame size WxH (80x45: `hakisa train`'s duel recipe, "
                                                     "so explore/consolidate can go on from the clone)")
    ap.add_argument("--rate", type=float, default=60.0, help="teacher decisions per second (at most 60: one a tick)")
    ap.add_argument("--reaction", type=float, default=0.05, help="seconds between deciding and pressing")
    ap.add_argument("--lead-extra", type=int, default=0, help="extra ticks of anticipation (X -> page delivery)")
    ap.add_argument("--roll-margin", type=int, default=7,
                    help="roll this many ticks into the roll window (0: the reference expert's first tick)")
    ap.add_argument("--use-cooldown", action="store_true",
                    help="poke on the boss's hidden cooldown, as the reference expert does "
                         "(default: only what the screen shows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="give up after this long (default: 90 s a fight; a fight lasts at most 55 s)",
    )
    ap.add_argument("--record-cmd", default=None, help="recorder command (default: this Python's `hakisa record`)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    with DuelPage(tier=args.tier) as page:
        env = {**os.environ, "DISPLAY": page.display}
        left, top, w, h = page.canvas_region
        cmd = [
            sys.executable,
            "-m",
            "hakisa.cli",
            "record",
            "--region",
            f"{left},{top},{w},{h}",
            "--game",
            "duel",
            "--fps",
            str(args.fps),
            "--out",
            str(out),
            "--quiet",
            "--width",
            args.obs.lower().split("x")[0],
            "--height",
            args.obs.lower().split("x")[1],
        ]
        # the recorder is its own process on the same display: pixels and X events are all it gets
        rec = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        keys = XKeys(page.display)
        try:
            wait_for(lambda: (out / "meta.json").exists() or rec.poll() is not None, 60, "the recorder to start")
            if rec.poll() is not None:
                raise RuntimeError(f"hakisa record exited early with {rec.returncode}")
            time.sleep(0.5)
            page.click_to_focus()  # a real X click on the start screen: the first fight begins
            t0 = time.monotonic()
            max_s = args.max_seconds or 90.0 * args.fights
            result = play(
                page,
                keys,
                args.fights,
                args.reaction,
                args.rate,
                args.seed,
                max_s,
                tier=args.tier,
                lead_extra=args.lead_extra,
                roll_margin=args.roll_margin,
                seen_only=not args.use_cooldown,
            )
            result["seconds"] = round(time.monotonic() - t0, 1)
            time.sleep(0.5)  # let the recorder see the last result screen
            keys.tap("F10")  # the recorder's stop hotkey, a real key press
            try:
                rec_out, _ = rec.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                rec.terminate()
                rec_out, _ = rec.communicate(timeout=30)
        finally:
            keys.close()
            if rec.poll() is None:
                rec.terminate()
                rec.wait(30)
        lines = [ln for ln in (rec_out or "").splitlines() if ln.startswith("{")]
        result["recorder"] = json.loads(lines[-1]) if lines else None
        result["recorder_rc"] = rec.returncode
    result.update(
        tier=args.tier,
        out=str(out),
        fps=args.fps,
        reaction=args.reaction,
        roll_margin=args.roll_margin,
        seen_only=not args.use_cooldown,
    )
    print(json.dumps(result), flush=True)
    return 0 if rec.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
