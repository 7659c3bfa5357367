"""The scripted teacher for Hakisa Pop: clicks the real page with real X mouse events while `hakisa record` watches.

    python benchmarks/teacher_pop.py --games 30 --out datasets/pop-teacher      # record 30 games
    python benchmarks/teacher_pop.py --grab-digits runs/pop-digits --games 1    # frames + true scores, for
                                                                                #   `hakisa game digits`

What is real: Chromium shows the page (hakisa/games/pop) on its own Xvfb; the teacher reads the page's test
hook (`hakisa.state()`) to see where the target is, and moves and clicks the pointer through XTest (what a
mouse produces), like a person: it reacts `--reaction` s after a target appears, moves the pointer onto it,
and clicks `--click-delay` s later. Its clicks land on the centres of the input map's x/y bins, the places
an agent can click, so what it does is exactly what an agent could do. `hakisa record --game pop` runs as a
SEPARATE process that sees only pixels and the X event stream. Games restart with a real R key press.
Last line of stdout: JSON with the teacher's scores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hakisa.game import GAMES_DIR, Game


class XMouse:
    """Real pointer and key events through the XTest extension, in the canvas's coordinates."""

    def __init__(self, display: str, origin: tuple[int, int]):
        from Xlib import XK
        from Xlib import display as xdisplay

        self.dpy, self.origin = xdisplay.Display(display), origin
        self.codes = {k: self.dpy.keysym_to_keycode(XK.string_to_keysym(k)) for k in ("r", "F10")}

    def move(self, x: float, y: float) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.dpy, X.MotionNotify, x=int(self.origin[0] + x), y=int(self.origin[1] + y))
        self.dpy.sync()

    def click(self) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.dpy, X.ButtonPress, 1)
        self.dpy.sync()
        time.sleep(0.01)
        xtest.fake_input(self.dpy, X.ButtonRelease, 1)
        self.dpy.sync()

    def tap(self, key: str) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.dpy, X.KeyPress, self.codes[key])
        self.dpy.sync()
        time.sleep(0.05)
        xtest.fake_input(self.dpy, X.KeyRelease, self.codes[key])
        self.dpy.sync()

    def close(self) -> None:
        self.dpy.close()


def snap(x: float, y: float, bins: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    """The centre of the x/y bin holding (x, y): where an agent's click for that bin lands."""
    bx = min(bins[0] - 1, max(0, int(x / size[0] * bins[0])))
    by = min(bins[1] - 1, max(0, int(y / size[1] * bins[1])))
    return (bx + 0.5) * size[0] / bins[0], (by + 0.5) * size[1] / bins[1]


def play(app, mouse: XMouse, games: int, reaction: float, click_delay: float, bins, seed: int,
         on_frame=None, max_seconds: float = 3600.0) -> list[int]:
    """Play `games` games; returns their scores. on_frame(state): called at each new score (digit frames)."""
    rng = np.random.default_rng(seed)
    scores: list[int] = []
    seen_target, plan = False, None  # plan: (t_move, t_click) for the current target
    last_score, t_end = None, time.monotonic() + max_seconds
    while len(scores) < games and time.monotonic() < t_end:
        st = app.evaluate("hakisa.state()")
        now = time.monotonic()
        if st["mode"] != "play":
            scores.append(int(st["score"]))
            print(f"game {len(scores)}: score {st['score']} (hits {st['hits']}, misses {st['misses']}, "
                  f"expired {st['expiries']})", flush=True)
            if on_frame is not None:
                on_frame(st)
            if len(scores) >= games:
                break
            time.sleep(0.6 + rng.uniform(0, 0.3))  # look at the score, then start the next game
            mouse.tap("r")
            while app.evaluate("hakisa.mode()") != "play":
                time.sleep(0.02)
            seen_target, plan, last_score = False, None, None
            continue
        if on_frame is not None and st["score"] != last_score:
            time.sleep(0.1)  # let the new score reach the screen
            on_frame(app.evaluate("hakisa.state()"))
            last_score = st["score"]
        tgt = st["target"]
        if tgt is None:
            seen_target, plan = False, None
        elif not seen_target:  # a new target: react like a person
            seen_target = True
            r = reaction * (1 + rng.uniform(-0.25, 0.25))
            plan = [now + r, now + r + click_delay * (1 + rng.uniform(-0.2, 0.2))]
        if plan is not None and tgt is not None:
            x, y = snap(tgt["x"], tgt["y"], bins, (480, 320))
            if plan[0] is not None and now >= plan[0]:
                mouse.move(x, y)
                plan[0] = None
            elif plan[0] is None and now >= plan[1]:
                mouse.move(x, y)  # the target drifted: follow it within its bin, as a hand would
                mouse.click()
                plan = None
        time.sleep(0.003)
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=20)
    ap.add_argument("--out", help="episode store the recorder writes")
    ap.add_argument("--grab-digits", metavar="DIR", help="instead of recording: save a canvas PNG at every new score")
    ap.add_argument("--reaction", type=float, default=0.1, help="seconds from a target's appearance to the move")
    ap.add_argument("--click-delay", type=float, default=0.09, help="seconds from the move to the click")
    ap.add_argument("--seed", type=int, default=0, help="the page's first game seed (and the teacher's jitter)")
    args = ap.parse_args(argv)
    if not (args.out or args.grab_digits):
        ap.error("give --out (record) or --grab-digits DIR")

    from hakisa.browser import BrowserApp

    game_file = GAMES_DIR / "pop.json"
    doc = json.loads(game_file.read_text())
    bins = (doc["input_map"]["x_bins"], doc["input_map"]["y_bins"])
    size = tuple(doc["window"]["size"])
    with BrowserApp(GAMES_DIR / "pop", query={"seed": args.seed}, size=size) as app:
        left, top, w, h = app.canvas_region
        mouse = XMouse(app.display, (left, top))
        rec, result = None, {}
        try:
            if args.grab_digits:
                out = Path(args.grab_digits)
                out.mkdir(parents=True, exist_ok=True)
                values = []

                def save(st):
                    import cv2

                    from hakisa.capture import Capture

                    with Capture(region=(left, top, w, h), display=app.display) as cap:
                        frame = cap.grab()
                    name = out / f"frame_{len(values):03d}.png"
                    cv2.imwrite(str(name), frame[..., :3])
                    values.append(int(st["score"]))

                scores = play(app, mouse, args.games, args.reaction, args.click_delay, bins, args.seed, on_frame=save)
                (out / "values.txt").write_text(" ".join(map(str, values)) + "\n")
                result = {"frames": len(values), "values": values, "dir": str(out)}
            else:
                Game.load(game_file)  # the recorder needs a valid game file (its digit templates included)
                env = {**os.environ, "DISPLAY": app.display}
                cmd = [sys.executable, "-m", "hakisa.cli", "record", "--game", str(game_file),
                       "--region", f"{left},{top},{w},{h}", "--out", args.out, "--quiet"]
                rec = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
                deadline = time.monotonic() + 60
                meta = Path(args.out) / "meta.json"
                while not meta.exists() and rec.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                if rec.poll() is not None:
                    raise RuntimeError(f"hakisa record exited early with {rec.returncode}")
                time.sleep(0.5)
                t0 = time.monotonic()
                scores = play(app, mouse, args.games, args.reaction, args.click_delay, bins, args.seed)
                result["seconds"] = round(time.monotonic() - t0, 1)
                time.sleep(0.5)  # let the recorder see the last game-over screen
                mouse.tap("F10")  # the recorder's stop hotkey, a real key press
                try:
                    rec_out, _ = rec.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    rec.terminate()
                    rec_out, _ = rec.communicate(timeout=30)
                lines = [ln for ln in (rec_out or "").splitlines() if ln.startswith("{")]
                result.update(
                    recorder=json.loads(lines[-1]) if lines else None, recorder_rc=rec.returncode, out=args.out
                )
        finally:
            mouse.close()
            if rec is not None and rec.poll() is None:
                rec.terminate()
                rec.wait(30)
    s = np.array(scores, float)
    result.update(
        games=len(scores),
        scores=scores,
        mean_score=float(s.mean()) if len(s) else None,
        score_ci95=float(1.96 * s.std(ddof=1) / np.sqrt(len(s))) if len(s) > 1 else 0.0,
        reaction=args.reaction,
        click_delay=args.click_delay,
        seed=args.seed,
    )
    print(json.dumps(result), flush=True)
    return 0 if rec is None or rec.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
