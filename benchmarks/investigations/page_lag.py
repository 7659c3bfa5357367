"""How old is a screen grab of the duel page? The state -> pixels lag, measured, for `hakisa study --label-lag`.

    python benchmarks/investigations/page_lag.py --seconds 40

A person (or benchmarks/teacher_duel.py) presses keys for the fight as it is NOW, but a frame grabbed now
shows the fight as it was a little earlier: the page draws after its tick, Chromium composites, Xvfb
gets the pixels, mss reads them. A clone trained on (frame, keys held at the grab) therefore learns to
act for a state it cannot see yet. This script measures that lag directly:
  * the main thread polls the page's test hook (`hakisa.state()`, every ~2 ms) and logs when each tick
    was first seen (wall clock);
  * a second thread grabs the canvas with mss at `--fps`, timestamping each grab just before it, as
    `hakisa record` does;
  * afterwards every grab is matched to the tick whose Python render (the sim draws the page's pixels)
    it equals most closely, and lag = grab time - the time that tick was first seen.
Grabs whose best match is not clearly better than the runner-up (the scene did not change between
ticks) are left out. The knight idles, so the boss walks in, attacks and wins; fights restart with Enter.
Last line: JSON {"lag_ms_median", "lag_ms_p10", "lag_ms_p90", "lag_ticks_median", "frames_matched", ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="how long to watch")
    ap.add_argument("--fps", type=float, default=15.0, help="grab rate (hakisa record's)")
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--margin", type=float, default=1.5,
                    help="a match counts when the runner-up's error is this many times the best one's")
    args = ap.parse_args(argv)

    from hakisa.capture import Capture
    from hakisa.games.duel.render import palette_bgra, render_bgra
    from hakisa.games.duel.sim import DuelSim
    from hakisa.games.duel.web import DuelPage

    ticks: dict[int, tuple[float, dict]] = {}  # (fight, tick) key -> (first seen, state)
    grabs: list[tuple[float, np.ndarray]] = []
    stop = threading.Event()
    with DuelPage(tier=args.tier) as page:
        region = page.canvas_region

        def grabber():
            with Capture(region=region, display=page.display) as cap:
                period, nxt = 1.0 / args.fps, time.monotonic()
                while not stop.is_set():
                    nxt += period
                    time.sleep(max(0.0, nxt - time.monotonic()))
                    t = time.time()  # as hakisa record: the timestamp is taken just before the grab
                    grabs.append((t, cap.grab().copy()))

        page.click_to_focus()
        th = threading.Thread(target=grabber, daemon=True)
        th.start()
        fight, last = 0, None
        t_end = time.monotonic() + args.seconds
        while time.monotonic() < t_end:
            snap = page.evaluate("({s: hakisa.state(), m: hakisa.mode()})")
            t_seen = time.time()
            st, mode = snap["s"], snap["m"]
            if mode == "over":
                subprocess.run(["xdotool", "key", "Return"], env={**os.environ, "DISPLAY": page.display}, check=False)
                fight += 1
                time.sleep(0.3)
                continue
            if mode == "play" and (fight, st["tick"]) != last:
                last = (fight, st["tick"])
                ticks[fight * 100000 + st["tick"]] = (t_seen, st)
            time.sleep(0.001)
        stop.set()
        th.join()

    sim = DuelSim(1, tier=args.tier)
    pal = palette_bgra(sim.rules)
    keys = np.array(sorted(ticks))
    seen = np.array([ticks[k][0] for k in keys])
    renders: dict[int, np.ndarray] = {}
    lags, ambiguous = [], 0
    for t, bgra in grabs:
        cand = keys[(seen > t - 0.4) & (seen < t + 0.05)]  # a grab can only show a recent tick
        if len(cand) < 2:
            continue
        err = []
        for k in cand:
            if k not in renders:
                sim.set(0, ticks[k][1])
                renders[k] = render_bgra(sim.draw_rects()[0], pal, 1)[..., :3].astype(np.int16)
            err.append(np.abs(bgra[..., :3].astype(np.int16) - renders[k]).mean())
        err = np.array(err)
        order = np.argsort(err)
        if err[order[1]] < args.margin * err[order[0]] + 0.05:
            ambiguous += 1
            continue
        lags.append(t - ticks[cand[order[0]]][0])
    lags_ms = np.array(lags) * 1000
    if not len(lags_ms):
        print(json.dumps({"frames": len(grabs), "frames_matched": 0, "ambiguous": ambiguous}))
        return 1
    res = {
        "lag_ms_median": round(float(np.median(lags_ms)), 1),
        "lag_ms_p10": round(float(np.percentile(lags_ms, 10)), 1),
        "lag_ms_p90": round(float(np.percentile(lags_ms, 90)), 1),
        "lag_ticks_median": round(float(np.median(lags_ms)) * 60 / 1000, 2),
        "frames": len(grabs),
        "frames_matched": len(lags),
        "ambiguous": ambiguous,
        "ticks_seen": len(ticks),
        "fights": fight + 1,
        "fps": args.fps,
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
