"""Readers: pixels in a region -> one number. A real game has no API, so rewards come from the screen.

Every reader is plain data (a region in *canvas* pixels plus a few parameters) and reads a BGR(A)
uint8 frame of the whole canvas. If the frame is not the configured canvas size (the page scaled in
a window, a smaller capture), the region is scaled to match, so one config serves any window size.
Colours in configs are RGB (as in rules.json's palette); frames are BGR(A) (mss, preprocess).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

Region = tuple[int, int, int, int]  # (left, top, width, height)


def crop(frame: np.ndarray, region: Region, canvas: tuple[int, int] | None = None) -> np.ndarray:
    """The region of a BGR(A) frame; `canvas` (w, h) is the size the region was written for."""
    left, top, w, h = region
    if canvas is not None and (frame.shape[1], frame.shape[0]) != tuple(canvas):
        sx, sy = frame.shape[1] / canvas[0], frame.shape[0] / canvas[1]
        left, top = int(round(left * sx)), int(round(top * sy))
        w, h = max(1, int(round(w * sx))), max(1, int(round(h * sy)))
    return frame[top:top + h, left:left + w]


def color_match(img: np.ndarray, rgb, tol: float) -> np.ndarray:
    """bool [H, W]: pixels whose every channel is within `tol` of the RGB colour (img is BGR/BGRA).

    The distance is the max over channels (L-inf), which cv2.inRange computes with SIMD in a few
    microseconds even for large regions; the live loop reads every region on every step.
    """
    b, g, r = (int(v) for v in rgb[::-1])
    lo, hi = [max(0, v - int(tol)) for v in (b, g, r)], [min(255, v + int(tol)) for v in (b, g, r)]
    if img.shape[2] == 4:
        lo, hi = lo + [0], hi + [255]
    if not img.flags.c_contiguous and img.strides[1] != img.shape[2]:  # a crop's rows may be strided, pixels not
        img = np.ascontiguousarray(img)
    return cv2.inRange(img, np.array(lo, np.uint8), np.array(hi, np.uint8)) > 0


@dataclass
class BarReader:
    """Fraction of a bar filled with a colour, in [0, 1].

    Anti-aliasing (a browser scaling the canvas, blurred edges) blends the bar's colour into its
    neighbours, so a pixel counts when it is within `tol` (max channel difference) of the colour, and a column
    counts as filled when at least `min_coverage` of its rows match. Counting filled columns instead
    of finding the fill's edge makes the reader direction-agnostic (the boss bar may drain from
    either side) and immune to a single stray column. `scale` turns the fraction into game units
    (e.g. the HP total, so a delta reward can use the sim's per-HP coefficients).
    """

    region: Region
    color: tuple[int, int, int]
    tol: float = 60.0
    min_coverage: float = 0.5
    canvas: tuple[int, int] | None = None
    scale: float = 1.0

    def read(self, frame: np.ndarray) -> float:
        c = crop(frame, self.region, self.canvas)
        if c.size == 0:
            return 0.0
        cover = color_match(c, self.color, self.tol).mean(axis=0)
        return float((cover >= self.min_coverage).mean()) * self.scale


@dataclass
class ColorFraction:
    """Fraction of a region's pixels within `tol` of a colour; with `threshold`, a detector.

    Used for "is the victory overlay up", "is the HUD visible" and friends: cheap and exact on a
    flat-coloured game, and tolerant of blending thanks to `tol`.
    """

    region: Region
    color: tuple[int, int, int]
    tol: float = 40.0
    canvas: tuple[int, int] | None = None

    def read(self, frame: np.ndarray) -> float:
        c = crop(frame, self.region, self.canvas)
        return (
            float(np.count_nonzero(color_match(c, self.color, self.tol))) / (c.shape[0] * c.shape[1]) if c.size else 0.0
        )


@dataclass
class MeanGray:
    """Mean gray level of a region in [0, 255] (a dimming overlay darkens the arena)."""

    region: Region
    canvas: tuple[int, int] | None = None

    def read(self, frame: np.ndarray) -> float:
        c = crop(frame, self.region, self.canvas)
        code = cv2.COLOR_BGRA2GRAY if c.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        return float(cv2.cvtColor(np.ascontiguousarray(c), code).mean())


@dataclass
class ChangeDetector:
    """Mean absolute gray change of a region since the previous call (0 on the first call).

    `changed(frame)` is True when the change exceeds `threshold` (gray levels). Stateful on purpose:
    it is the reader for "something happened here" (a score ticked, a menu opened, a key took
    effect — the latency probe uses it).
    """

    region: Region
    threshold: float = 8.0
    canvas: tuple[int, int] | None = None
    _prev: np.ndarray | None = field(default=None, repr=False, compare=False)

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        c = np.ascontiguousarray(crop(frame, self.region, self.canvas))
        return cv2.cvtColor(c, cv2.COLOR_BGRA2GRAY if c.shape[2] == 4 else cv2.COLOR_BGR2GRAY).astype(np.int16)

    def reset(self, frame: np.ndarray | None = None) -> None:
        self._prev = None if frame is None else self._gray(frame)

    def read(self, frame: np.ndarray) -> float:
        g = self._gray(frame)
        prev, self._prev = self._prev, g
        if prev is None or prev.shape != g.shape:
            return 0.0
        return float(np.abs(g - prev).mean())

    def changed(self, frame: np.ndarray) -> bool:
        return self.read(frame) > self.threshold


# ---- digits by template matching -----------------------------------------------------------------
GLYPH = (12, 16)  # (w, h) every glyph is resized to before matching
# Glyph distance (see _glyph_dist) above which a glyph is "unknown". Used for readers saved before
# the threshold was learned: lenient enough for capture noise, yet below most digit-vs-digit
# distances, so a digit the templates never saw reads as None rather than as its nearest neighbour.
DEFAULT_MAX_DIST = 0.1
MIN_MAX_DIST = 0.05  # floor of a learned threshold: one sample per char has zero spread, live frames don't
SIZE_SLACK = 0.3  # a glyph may be this much (relative, + 1 px) smaller/larger than any glyph seen in fit


def _segments(img: np.ndarray, fg_tol: float, glyph_w: float | None = None) -> list[tuple[np.ndarray, int, int]]:
    """Split a crop of a number into (glyph, width, height) left to right; glyph is binary float GLYPH-sized.

    Foreground = pixels far (> fg_tol gray levels) from the crop's border colour, which is the
    background for any HUD number. Glyphs are runs of columns that hold foreground. Anti-aliased
    fonts make neighbours touch, so a run much wider than a typical glyph (`glyph_w` px, learned in
    fit) is cut into that many equal parts. Width and height (crop px, before resizing) let the
    reader reject pieces no glyph in fit looked like (a '.', a '-', several glyphs left uncut).
    """
    fg = _foreground(img, fg_tol)
    cols = fg.any(axis=0)
    runs, x = [], 0
    while x < len(cols):
        if not cols[x]:
            x += 1
            continue
        x0 = x
        while x < len(cols) and cols[x]:
            x += 1
        k = max(1, int(round((x - x0) / glyph_w))) if glyph_w and (x - x0) > 1.5 * glyph_w else 1
        runs += [(x0 + (x - x0) * i // k, x0 + (x - x0) * (i + 1) // k) for i in range(k)]
    out = []
    for x0, x1 in runs:
        glyph = fg[:, x0:x1]
        rows = np.flatnonzero(glyph.any(axis=1))
        if len(rows) == 0:
            continue
        glyph = glyph[rows[0] : rows[-1] + 1].astype(np.float32)
        out.append((cv2.resize(glyph, GLYPH, interpolation=cv2.INTER_AREA), x1 - x0, len(glyph)))
    return out


def _foreground(img: np.ndarray, fg_tol: float) -> np.ndarray:
    """Pixels far (> fg_tol gray levels) from the crop's border colour: a HUD number's ink.

    A patterned panel (a dithered checker of two colours, as SDL games draw them) has no one border colour, and its
    colours may be as far apart in gray as the ink is from either (Circus Linux: black and slate, red ink). There
    the ink is what is far (> fg_tol in some channel) from every colour that covers a fifth of the border."""
    if img.ndim == 3:
        c = np.ascontiguousarray(img[..., :3])
        border = np.concatenate([c[0], c[-1], c[:, 0], c[:, -1]]).astype(np.uint32)
        # one integer per colour: np.unique on rows (axis=0) costs ~340 us a call, on integers ~25, and every
        # live step reads its digits
        packed, counts = np.unique(border[:, 0] | border[:, 1] << 8 | border[:, 2] << 16, return_counts=True)
        packed = packed[counts >= 0.2 * len(border)]
        dominant = np.stack([packed & 255, packed >> 8 & 255, packed >> 16], axis=1).astype(np.int16)
        if len(dominant) >= 2:
            dist = np.min([np.abs(c.astype(np.int16) - d).max(axis=2) for d in dominant], axis=0)
            return dist > fg_tol
    g = (
        img
        if img.ndim == 2
        else cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    )
    g = g.astype(np.float32)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    return np.abs(g - np.median(border)) > fg_tol


def _run_widths(img: np.ndarray, fg_tol: float) -> list[int]:
    cols = _foreground(img, fg_tol).any(axis=0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cols, [0]])))
    return list(edges[1::2] - edges[::2])


def _span(img: np.ndarray, fg_tol: float) -> int:
    """Columns from the first foreground column to the last (0: none)."""
    cols = np.flatnonzero(_foreground(img, fg_tol).any(axis=0))
    return int(cols[-1] - cols[0] + 1) if len(cols) else 0


def _glyph_dist(g: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Distance of glyph g [h, w] to each template in bank [n, h, w], in [0, 1].

    Squared L2 divided by the two images' total ink: 0 for identical glyphs, 1 for glyphs with no
    overlap, whatever the stroke weight or glyph size, so one threshold means the same for a thin
    '1' and a bold '8' and for any font. (Raw L2 grows with ink, which would make a fixed
    threshold too strict for heavy glyphs and too lax for light ones.)
    """
    return ((bank - g) ** 2).sum(axis=(1, 2)) / ((bank**2).sum(axis=(1, 2)) + (g**2).sum() + 1e-6)


@dataclass
class DigitReader:
    """Reads a non-negative integer (a score, a timer) by matching glyphs against learned templates.

    No OCR engine: `fit` segments a few labelled crops into glyphs, pairs them with the label's
    characters and averages them per character. `read` segments, picks the nearest template for
    each glyph (see _glyph_dist) and joins the characters. Returns None when nothing is readable
    or when any glyph is unknown (farther than `max_dist` from every template, or sized unlike any
    glyph seen in fit): a digit the templates never saw must not read as its nearest neighbour, and
    a caller keeps its last good reading instead.
    """

    region: Region | None = None
    fg_tol: float = 40.0
    canvas: tuple[int, int] | None = None
    templates: dict[str, np.ndarray] = field(default_factory=dict)
    glyph_w: float | None = None  # typical glyph width in crop pixels (learned), to split touching glyphs
    crop_h: int | None = None  # crops are resized to this height (fit's median) so pixel sizes mean the same
    max_dist: float = DEFAULT_MAX_DIST  # glyph farther than this from every template = unknown (learned)
    # (min w, max w, min h, max h) of fit's glyphs as fractions of the crop height, which scales with
    # the region, so the check holds in a scaled window. None: no check (readers saved before it).
    size_range: tuple[float, float, float, float] | None = None

    def fit(self, crops: list[np.ndarray], labels: list[str | int]) -> "DigitReader":
        # one pixel scale for all: frames of several window sizes, a folder of crops of mixed sizes
        self.crop_h = int(np.median([img.shape[0] for img in crops]))
        crops = [self._rescale(img) for img in crops]
        # typical width: from the crops whose runs are exactly their characters (no touching glyphs)
        runs = [_run_widths(img, self.fg_tol) for img in crops]
        widths = [w for r, label in zip(runs, labels) if len(r) == len(str(label)) for w in r]
        if not widths:
            # every crop has touching glyphs (a slanted font: xjump's floor counter): its pitch, the
            # number's width over its characters, is the typical width to cut runs by
            spans = [_span(img, self.fg_tol) for img in crops]
            widths = [sp / len(str(label)) for sp, label in zip(spans, labels) if sp]
        self.glyph_w = float(np.median(widths)) if widths else None
        acc: dict[str, list[np.ndarray]] = {}
        sizes = []
        for img, label in zip(crops, labels):
            text, pieces = str(label), _segments(img, self.fg_tol, self.glyph_w)
            if len(pieces) != len(text):  # touching or broken glyphs: skip rather than mislabel
                continue
            for ch, (gl, w, h) in zip(text, pieces):
                acc.setdefault(ch, []).append(gl)
                sizes.append((w / img.shape[0], h / img.shape[0]))
        if not acc:
            raise ValueError("DigitReader.fit: no crop segmented into as many glyphs as its label has characters")
        self.templates = {ch: np.mean(gs, axis=0) for ch, gs in sorted(acc.items())}
        ws, hs = np.array(sizes).T
        self.size_range = (float(ws.min()), float(ws.max()), float(hs.min()), float(hs.max()))
        # Threshold: a margin above the spread of the training glyphs around their own template
        # (noise), but kept below halfway to the nearest other template when that is higher: an
        # unseen digit lies roughly as far from the known templates as they lie from each other.
        # The spread is leave-one-out (each glyph against its class's mean without it): a mean
        # that includes the glyph flatters it, down to 0 for a char seen once.
        within = max(
            (
                float(_glyph_dist(g, ((len(gs) * self.templates[ch] - g) / (len(gs) - 1))[None])[0])
                for ch, gs in acc.items()
                if len(gs) > 1
                for g in gs
            ),
            default=0.0,
        )
        bank = np.stack(list(self.templates.values()))
        between = min((float(d) for i, t in enumerate(bank) for d in _glyph_dist(t, bank[i + 1 :])), default=None)
        self.max_dist = max(2 * within, MIN_MAX_DIST)
        if between is not None and between > within:
            self.max_dist = min(self.max_dist, (within + between) / 2)
        return self

    def _rescale(self, img: np.ndarray) -> np.ndarray:
        """The crop at fit's height: glyph_w is in those pixels, and a glyph binarised at the scale
        its template was matches it closer (a scaled window otherwise reads as unknown more often)."""
        h, w = img.shape[:2]
        if not self.crop_h or h == self.crop_h:
            return img
        size = (max(1, round(w * self.crop_h / h)), self.crop_h)
        return cv2.resize(
            np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA if h > self.crop_h else cv2.INTER_LINEAR
        )

    def _known_size(self, w: int, h: int, crop_h: int) -> bool:
        if self.size_range is None:
            return True
        wmin, wmax, hmin, hmax = (v * crop_h for v in self.size_range)
        lo, hi = 1 - SIZE_SLACK, 1 + SIZE_SLACK
        return lo * wmin - 1 <= w <= hi * wmax + 1 and lo * hmin - 1 <= h <= hi * hmax + 1

    def read_crop(self, img: np.ndarray) -> int | None:
        if not self.templates:
            raise RuntimeError("DigitReader has no templates: call fit() or load() first")
        img = self._rescale(img)
        pieces = _segments(img, self.fg_tol, self.glyph_w)
        if not pieces:
            return None
        chars, bank = list(self.templates), np.stack(list(self.templates.values()))
        text = ""
        for g, w, h in pieces:
            d = _glyph_dist(g, bank)
            best = int(d.argmin())
            if d[best] > self.max_dist or not self._known_size(w, h, img.shape[0]):
                return None  # unknown glyph, or a run the glyph count does not explain: no guess
            text += chars[best]
        return int(text) if text.isdigit() else None

    def read(self, frame: np.ndarray) -> int | None:
        return self.read_crop(crop(frame, self.region, self.canvas) if self.region else frame)

    def save(self, path: str | Path) -> None:
        """`path`.npz (templates as uint8 images) + `path`.json (region, parameters)."""
        path = Path(path)
        np.savez_compressed(
            path.with_suffix(".npz"),
            **{f"t_{ch}": (t * 255).round().astype(np.uint8) for ch, t in self.templates.items()},
        )
        meta = {
            "region": self.region,
            "fg_tol": self.fg_tol,
            "canvas": self.canvas,
            "glyph": GLYPH,
            "glyph_w": self.glyph_w,
            "crop_h": self.crop_h,
            "chars": list(self.templates),
            "max_dist": self.max_dist,
            "size_range": self.size_range,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "DigitReader":
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            templates = {ch: z[f"t_{ch}"].astype(np.float32) / 255 for ch in meta["chars"]}
        return cls(
            region=_tuple(meta["region"]),
            fg_tol=meta["fg_tol"],
            canvas=_tuple(meta["canvas"]),
            templates=templates,
            glyph_w=meta.get("glyph_w"),
            crop_h=meta.get("crop_h"),
            max_dist=meta.get("max_dist", DEFAULT_MAX_DIST),
            size_range=_tuple(meta.get("size_range")),
        )

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "templates"}


def _tuple(v):
    return None if v is None else tuple(v)
