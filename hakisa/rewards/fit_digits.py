"""`hakisa game digits`: fit a DigitReader (a score, a timer) from labelled screenshots, check it, save it.

Two ways to give examples: whole frames plus the number each shows and the region it sits in
(`--frames a.png b.png --values 12 7 --region L,T,W,H`), or a folder of ready crops named
`<value>_<anything>.png` (`--crops DIR`). The reader is saved as OUT.npz + OUT.json (what a game
config's `templates:` names). The report says how well it reads samples it did not see, and which
digits it has no template for: those read as unknown (None) until frames showing them are added.
The last line printed is one JSON object, for scripts.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from hakisa.rewards.readers import DigitReader, crop

PROG = "hakisa game digits"
LOO_MAX = 40  # up to this many samples: leave-one-out; above it 5-fold (each fit is cheap, but N fits add up)


def _fail(msg: str):
    raise SystemExit(f"{PROG}: {msg}")


def _ints(text: str, n: int, what: str, form: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        _fail(f"{what} {text!r} is not {form} (integers, comma-separated)")
    return vals


def _imread(path: str | Path) -> np.ndarray:
    # PNGs are RGB(A) on disk; cv2 returns BGR, the order every reader expects (mss frames are BGRA)
    if not Path(path).is_file():
        _fail(f"no such file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        _fail(f"cannot read {path} as an image")
    return img


def _label(text: str, where: str) -> str:
    if not text.isdigit():  # kept as text: a timer's "07" has two glyphs
        _fail(f"{where}: value {text!r} is not a non-negative integer")
    return text


def load_frames(paths: list[str], values: list[str], region, canvas) -> tuple[list[np.ndarray], list[str], set]:
    """Crops of the region from each frame, their labels, and the set of frame sizes (w, h)."""
    if len(paths) != len(values):
        _fail(f"{len(paths)} frames but {len(values)} values: give one value per frame, in the same order")
    left, top, w, h = region
    if w <= 0 or h <= 0 or left < 0 or top < 0:
        _fail(f"region {left},{top},{w},{h}: LEFT,TOP must be >= 0 and WIDTH,HEIGHT > 0")
    crops, sizes = [], set()
    for path in paths:
        frame = _imread(path)
        sizes.add((frame.shape[1], frame.shape[0]))
        size = tuple(canvas) if canvas else (frame.shape[1], frame.shape[0])
        if left + w > size[0] or top + h > size[1]:
            within = "--canvas" if canvas else f"frame {path}"
            _fail(f"region {left},{top},{w},{h} reaches outside {within} ({size[0]}x{size[1]})")
        crops.append(crop(frame, region, canvas))
    return crops, [_label(v, p) for p, v in zip(paths, values)], sizes


def load_crop_dir(folder: str) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Crops named `<value>_<anything>.png`, their labels and file names."""
    d = Path(folder)
    if not d.is_dir():
        _fail(f"no such folder: {folder}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".png")
    if not files:
        _fail(f"no .png files in {folder} (expected names like 407_a.png)")
    labels = [_label(p.stem.split("_", 1)[0], p.name) for p in files]
    return [_imread(p) for p in files], labels, [p.name for p in files]


def accuracy(reader: DigitReader, crops, labels) -> tuple[float, list[tuple[int, int | None]]]:
    """Fraction read exactly, and (index, reading) of the misses."""
    got = [reader.read_crop(c) for c in crops]
    misses = [(i, g) for i, (g, lab) in enumerate(zip(got, labels)) if g != int(lab)]
    return 1 - len(misses) / len(crops), misses


def heldout_accuracy(crops, labels, fg_tol: float, max_dist: float | None = None) -> tuple[float | None, str]:
    """Accuracy on samples left out of the fit (None with under 3 samples), and the scheme's name.

    A sample that holds the only example of a digit reads as unknown here: that is the honest
    answer for a number the reader has not seen, so it counts as a miss.
    """
    n = len(crops)
    if n < 3:
        return None, "none (fewer than 3 samples)"
    k, name = (n, "leave-one-out") if n <= LOO_MAX else (5, "5-fold")
    correct = 0
    for f in range(k):
        test = [i for i in range(n) if i % k == f]
        train = [i for i in range(n) if i % k != f]
        try:
            r = DigitReader(fg_tol=fg_tol).fit([crops[i] for i in train], [labels[i] for i in train])
        except ValueError:  # nothing in this fold segmented: every held-out sample is a miss
            continue
        if max_dist is not None:
            r.max_dist = max_dist
        correct += sum(r.read_crop(crops[i]) == int(labels[i]) for i in test)
    return correct / n, name


def add_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", nargs="+", metavar="PNG", help="whole frames (screenshots) that show the number")
    src.add_argument("--crops", metavar="DIR", help="folder of crops named <value>_<anything>.png (e.g. 407_a.png)")
    p.add_argument("--values", nargs="+", metavar="N", help="with --frames: the number each frame shows, in order")
    p.add_argument(
        "--region",
        metavar="L,T,W,H",
        help="with --frames: where the number sits, in canvas pixels (with --crops: only recorded in OUT.json)",
    )
    p.add_argument(
        "--canvas",
        metavar="W,H",
        default=None,
        help="size the region is written for; frames of another size have it scaled (default: the frames' own size)",
    )
    p.add_argument("--out", required=True, help="output path without suffix: writes OUT.npz and OUT.json")
    p.add_argument(
        "--fg-tol", type=float, default=40.0, help="gray levels a digit pixel differs from the background by"
    )
    p.add_argument(
        "--max-dist",
        type=float,
        default=None,
        help="override the learned unknown-glyph threshold (0..1; larger accepts worse matches)",
    )


def main(args) -> int:
    canvas = _ints(args.canvas, 2, "canvas", "W,H") if args.canvas else None
    region = _ints(args.region, 4, "region", "LEFT,TOP,WIDTH,HEIGHT") if args.region else None
    if args.frames:
        if region is None:
            _fail("--frames needs --region L,T,W,H (where the number sits)")
        if not args.values:
            _fail("--frames needs --values (the number each frame shows)")
        crops, labels, sizes = load_frames(args.frames, args.values, region, canvas)
        names = [Path(f).name for f in args.frames]
        if canvas is None and len(sizes) == 1:  # record the frames' size: a scaled window then maps the region right
            canvas = sizes.pop()
    else:
        if args.values:
            _fail("--values goes with --frames; with --crops the value is the start of each file name")
        crops, labels, names = load_crop_dir(args.crops)
    if any(c.size == 0 for c in crops):
        _fail("a crop is empty: check --region against the frames")

    try:
        reader = DigitReader(region=region, fg_tol=args.fg_tol, canvas=canvas).fit(crops, labels)
    except ValueError:
        _fail(
            f"no glyphs found: no sample split into as many glyphs as its value has digits "
            f"(check --region covers just the number, or try another --fg-tol than {args.fg_tol:g})"
        )
    if args.max_dist is not None:
        reader.max_dist = args.max_dist
    train_acc, misses = accuracy(reader, crops, labels)
    heldout_acc, scheme = heldout_accuracy(crops, labels, args.fg_tol, args.max_dist)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    reader.save(out)

    chars = list(reader.templates)
    unseen = [c for c in "0123456789" if c not in reader.templates]
    print(f"{len(crops)} samples; templates for {' '.join(chars)}; unknown-glyph threshold {reader.max_dist:.3f}")
    print(
        f"accuracy on the samples themselves {train_acc:.0%}; held out ({scheme}) "
        + ("n/a" if heldout_acc is None else f"{heldout_acc:.0%}")
    )
    for i, got in misses[:10]:
        print(f"  misread {names[i]}: shows {labels[i]}, read {'unknown' if got is None else got}")
    if unseen:
        print(f"unseen: {' '.join(unseen)} — those will read as unknown until you add frames that show them")
    print(f"wrote {out.with_suffix('.npz')} and {out.with_suffix('.json')}")
    print(
        json.dumps(
            {
                "out": str(out),
                "samples": len(crops),
                "chars": chars,
                "unseen": unseen,
                "train_acc": round(train_acc, 4),
                "heldout_acc": None if heldout_acc is None else round(heldout_acc, 4),
                "max_dist": round(reader.max_dist, 4),
            }
        )
    )
    return 0
