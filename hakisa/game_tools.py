"""`hakisa game init|check|digits`: making a game file for a game Hakisa has never seen.

    hakisa game init --window "My Game" --out games/mygame.json   # starter file + a screenshot beside it
    hakisa game check games/mygame.json                           # every reader's value, and a PNG of the regions
    hakisa game digits --frames a.png b.png --values 12 7 --region 8,4,100,21 --out games/mygame/score

`init` writes what it can see (the window's title and size, a screenshot) and a skeleton of the rest:
an input map with a noop, a key and a click, and empty screen rules with notes on what to fill in.
`check` opens the game as every verb would (launched when its file says how, else found by title),
grabs frames for a few seconds and prints each reader's value with the in_play, done and outcome
conditions, then draws every reader's region, labelled, on the last frame (check.png): a wrong region
is obvious at a glance. When `init`'s screenshot is beside the file, `check` finds how far the canvas has
moved since (an infobar that pushed a page down, a resized layout) and says so with the fixed canvas.
`digits` fits a score reader's glyph templates (hakisa/rewards/fit_digits.py).
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


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2GRAY).astype(np.float32)


def _agreement(a: np.ndarray, b: np.ndarray, edges: np.ndarray, dx: int, dy: int, tol: float = 12.0) -> float:
    """Share of a's edge pixels that b, shifted back by (dx, dy), shows within `tol` gray levels (where the
    two overlap). Edges, because flat areas agree under any shift and tell nothing."""
    h, w = a.shape
    ys, xs = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
    e = edges[ys, xs]
    n = int(np.count_nonzero(e))
    if n == 0:
        return 0.0
    bb = b[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return float(np.count_nonzero(np.abs(a[ys, xs] - bb)[e] <= tol)) / n


def _best_shift(a, b, edges, candidates, slack: float = 0.03) -> tuple[float, int, int]:
    """(agreement, dx, dy) of the best candidate; of those within `slack` of the best, the smallest shift
    (a picture with long straight lines agrees almost as well along them)."""
    scored = [(_agreement(a, b, edges, dx, dy), dx, dy) for dx, dy in candidates]
    top = max(s for s, _, _ in scored)
    return min((c for c in scored if c[0] >= top - slack), key=lambda c: abs(c[1]) + abs(c[2]))


def _edges(g: np.ndarray) -> np.ndarray:
    import cv2

    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3))
    return cv2.dilate((lap > 16).astype(np.uint8), None) > 0


def canvas_shift(reference: np.ndarray, frame: np.ndarray, min_px: int = 3) -> tuple[int, int] | None:
    """(dx, dy) pixels by which the picture in `frame` sits away from where it was in `reference` (two
    grabs of the same canvas box), or None when it has not moved or the two do not tell. Every shift up to
    a third of the canvas is tried on a small copy, then refined at full size; a shift counts when most of
    the reference's edges are found again there and far fewer are where they were, so a sprite that moved
    (or a new screen) is not taken for a moved canvas."""
    import cv2

    if reference.shape[:2] != frame.shape[:2]:
        return None
    a, b = _gray(reference), _gray(frame)
    h, w = a.shape
    f = max(1, int(np.ceil(max(h, w) / 96)))  # the coarse search runs on at most 96 px a side
    sa = cv2.resize(a, (w // f, h // f), interpolation=cv2.INTER_AREA)
    sb = cv2.resize(b, (w // f, h // f), interpolation=cv2.INTER_AREA)
    rx, ry = sa.shape[1] // 3, sa.shape[0] // 3
    _, cx, cy = _best_shift(sa, sb, _edges(sa), [(x, y) for x in range(-rx, rx + 1) for y in range(-ry, ry + 1)])
    e = _edges(a)
    score, dx, dy = _best_shift(a, b, e, [(cx * f + x, cy * f + y) for x in range(-f, f + 1) for y in range(-f, f + 1)])
    if max(abs(dx), abs(dy)) < min_px or score < 0.8 or _agreement(a, b, e, 0, 0) > score - 0.3:
        return None
    return dx, dy


def moved_since_init(game, frame: np.ndarray) -> dict | None:
    """Compare the canvas now with `game init`'s screenshot beside the game file (if there is one)."""
    import cv2

    shot = game.path.with_suffix(".png")
    canvas = game.window.get("canvas")
    if not shot.is_file() or (canvas is not None and not isinstance(canvas, list)):
        return None
    ref = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    if ref is None:
        return None
    x, y, w, h = canvas or (0, 0, ref.shape[1], ref.shape[0])
    shift = canvas_shift(ref[y:y + h, x:x + w], frame)
    if shift is None:
        return {"screenshot": str(shot), "moved": None}
    dx, dy = shift
    return {"screenshot": str(shot), "moved": [dx, dy], "canvas_now": [x + dx, y + dy, w, h]}


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
    moved = moved_since_init(game, frame)
    if moved is not None:
        summary["since_init"] = moved
    if moved and moved["moved"]:
        dx, dy = moved["moved"]
        print(f"warning: the canvas moved by ({dx:+d}, {dy:+d}) px since `game init` took {moved['screenshot']} "
              f"(an infobar, a changed layout?): the readers read the wrong pixels; window.canvas "
              f"{moved['canvas_now']} would put them back", flush=True)
    if unreadable:
        print(f"readers that could not read some frames: {', '.join(unreadable)}")
    print(f"regions drawn on the last frame: {png}")
    print(json.dumps(summary, default=str))
    return 0
