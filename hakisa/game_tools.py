"""`hakisa game init|check|digits`: making a game file for a game Hakisa has never seen.

    hakisa game init --window "My Game" --out games/mygame.json   # starter file + a screenshot beside it
    hakisa game check games/mygame.json                           # every reader's value, and a PNG of the regions
    hakisa game digits --frames a.png b.png --values 12 7 --region 8,4,100,21 --out games/mygame/score

`init` writes what it can see (the window's title and size, a screenshot) and a skeleton of the rest:
an input map with a noop, a key and a click, and empty screen rules with notes on what to fill in.
`check` opens the game as every verb would (launched when its file says how, else found by title),
grabs frames for a few seconds and prints each reader's value with the in_play, done and outcome
conditions, then draws every reader's region, labelled, on the last frame (check.png): a wrong region
is obvious at a glance. `digits` fits a score reader's glyph templates (hakisa/rewards/fit_digits.py).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def add_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="game_cmd", metavar="init|check|digits", required=True)
    i = sub.add_parser("init", help="write a starter game file for a window (and a screenshot beside it)")
    i.add_argument("--window", required=True, help="a substring of the window's title")
    i.add_argument("--out", required=True, help="the game file to write (.json)")
    i.add_argument("--display", default=None, help="X display (default $DISPLAY)")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    c = sub.add_parser("check", help="open the game, print every reader's value and draw the regions")
    c.add_argument("game", help="a game file or a shipped name")
    c.add_argument("--seconds", type=float, default=3.0, help="how long to watch")
    c.add_argument("--out", default=None, help="folder for check.png and check.json (default: runs/check-<game>)")
    c.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option (launched games)")
    from hakisa.backends import add_backend_arg

    add_backend_arg(i)
    add_backend_arg(c)
    from hakisa.rewards import fit_digits

    fit_digits.add_args(sub.add_parser("digits", help="fit a score reader's digit templates from frames or crops"))


def main(args) -> int:
    if args.game_cmd == "digits":
        from hakisa.rewards import fit_digits

        return fit_digits.main(args)
    return {"init": init, "check": check}[args.game_cmd](args)


def init(args) -> int:
    import cv2

    from hakisa.capture import Capture, find_window

    out = Path(args.out)
    if out.exists() and not args.force:
        raise SystemExit(f"hakisa game init: {out} exists (pass --force to overwrite)")
    win = find_window(args.window, display=args.display)  # on the selected backend (--backend)
    with Capture(region=win.region, display=args.display) as cap:
        frame = cap.grab()
    w, h = win.region[2], win.region[3]
    out.parent.mkdir(parents=True, exist_ok=True)
    shot = out.with_suffix(".png")
    cv2.imwrite(str(shot), frame[..., :3])
    doc = {
        "name": out.stem,
        "_doc": f"made by `hakisa game init` from the window {win.title!r}; {shot.name} is what it showed",
        "window": {"title": args.window, "canvas": [0, 0, w, h],
                   "_canvas_doc": "the play area inside the window: [x, y, width, height] in window pixels"},
        "obs": {"width": 96, "height": max(8, round(96 * h / w)), "gray": True, "stack": 4},
        "hz": 15,
        "input_map": {"name": out.stem, "x_bins": 16, "y_bins": 10,
                      "_doc": "keys are pynput names (left, space, a, ...); click/move commands use the x/y bins",
                      "commands": [{"name": "noop", "kind": "noop"},
                                   {"name": "space", "kind": "keys", "keys": ["space"]},
                                   {"name": "click", "kind": "click_left"}]},
        "rules": {"canvas": [w, h], "readers": {},
                  "_doc": "add readers (bar, color_fraction, digits, ...) with regions in canvas pixels, then reward, "
                          "done, in_play and navigation; `hakisa game check` shows what they read"},
    }
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out} and {shot} ({w}x{h}); next: add readers, then `hakisa game check {out}`")
    print(json.dumps({"out": str(out), "screenshot": str(shot), "window": win.title, "size": [w, h]}))
    return 0


def draw_regions(frame: np.ndarray, judge, readings: dict) -> np.ndarray:
    """The frame (BGR[A]) with every reader's region outlined and labelled with its name and value."""
    import cv2

    img = np.ascontiguousarray(frame[..., :3]).copy()
    fh, fw = img.shape[:2]
    cw, ch = judge.canvas or (fw, fh)
    sx, sy = fw / cw, fh / ch
    colours = [(0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 255, 0)]
    for k, (name, reader) in enumerate(judge.readers.items()):
        region = getattr(reader, "region", None)
        if region is None:
            continue
        x, y, w, h = region
        p0, p1 = (int(x * sx), int(y * sy)), (int((x + w) * sx) - 1, int((y + h) * sy) - 1)
        col = colours[k % len(colours)]
        cv2.rectangle(img, p0, p1, col, 1)
        v = readings.get(name)
        text = f"{name}={v:.2f}" if isinstance(v, float) else f"{name}={v}"
        ty = p1[1] + 12 if p0[1] < 14 else p0[1] - 3
        cv2.putText(img, text, (p0[0], ty), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (p0[0], ty), cv2.FONT_HERSHEY_SIMPLEX, 0.38, col, 1, cv2.LINE_AA)
    return img


def check(args) -> int:
    import cv2

    from hakisa.capture import Capture
    from hakisa.game import Game, parse_opts

    game = Game.load(args.game)
    judge = game.judge()
    out = Path(args.out or f"runs/check-{game.name}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with game.open(opts=parse_opts(args.opt)) as live, Capture(region=live.region, display=live.display) as cap:
        print(f"{game.name}: window {live.title!r}, canvas on screen at {live.region}", flush=True)
        t_end = time.monotonic() + args.seconds
        while True:
            frame = cap.grab()
            r = judge.read(frame)
            row = {"t": round(time.monotonic() - t_end + args.seconds, 2), "readings": r, "in_play": judge.in_play(r),
                   "done": judge.is_done(r), "winner": judge.winner(r) if judge.won_or_lost else None}
            rows.append(row)
            if len(rows) == 1 or time.monotonic() >= t_end:
                vals = "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
                print(f"t={row['t']:5.2f}s  {vals}  in_play={row['in_play']} done={row['done']}"
                      + (f" winner={row['winner']}" if judge.won_or_lost else ""), flush=True)
            if time.monotonic() >= t_end:
                break
            time.sleep(1.0 / game.hz)
    png = out / "check.png"
    cv2.imwrite(str(png), draw_regions(frame, judge, rows[-1]["readings"]))
    unreadable = sorted({k for row in rows for k, v in row["readings"].items() if v is None})
    summary = {"game": game.name, "frames": len(rows), "png": str(png), "region": list(live.region),
               "in_play_share": round(float(np.mean([r["in_play"] for r in rows])), 3),
               "unreadable": unreadable, "last": rows[-1]["readings"]}
    (out / "check.json").write_text(json.dumps({**summary, "rows": rows}, indent=1, default=str))
    if unreadable:
        print(f"readers that could not read some frames: {', '.join(unreadable)}")
    print(f"regions drawn on the last frame: {png}")
    print(json.dumps(summary, default=str))
    return 0
