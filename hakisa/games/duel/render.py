"""Rasterize the duel's draw list into pixels: what the page's canvas shows, and what the agent sees.

The sim (and core.js in the page) describe a frame as a list of opaque, axis-aligned rects
[x, y, w, h, colour_index] in canvas pixels (640x360), painted in order over the background colour.
Every coordinate is a multiple of 4, so a 4x INTER_AREA downscale of the full canvas equals painting
the same rects with coordinates // 4 (each 4x4 block is one colour). That is what makes the fast
path possible:

* `render_bgra(rects, palette, scale)` is the reference: BGRA at canvas resolution (scale=1) or at
  any grid divisor (scale=4 -> 160x90), one rect at a time, single frame or batch.
* `ObsRenderer` is the vector env's fast path. It writes the OBSERVATION directly (gray or RGB,
  channels-first) using a palette look-up table that is computed by running the shared
  `hakisa.preprocess.preprocess` on the palette colours themselves. tests/test_duel_env.py proves it
  equals `preprocess(render_bgra(rects, scale=1), spec)` bit for bit on many random states, so the
  agent's observation IS the shared preprocess applied to the canvas render. For an ObsSpec the grid
  trick cannot serve (crop, or a size that is not the canvas / 1, 2 or 4), it falls back to exactly that.
"""
from __future__ import annotations

import numpy as np

from hakisa.preprocess import ObsSpec, preprocess

CANVAS_W, CANVAS_H, GRID = 640, 360, 4


def palette_bgra(rules: dict) -> np.ndarray:
    """rules.json's RGB palette -> (P, 4) uint8 BGRA (alpha 255), the byte order mss hands out."""
    rgb = np.asarray(rules["palette"], dtype=np.uint8)
    return np.concatenate([rgb[:, ::-1], np.full((len(rgb), 1), 255, np.uint8)], axis=1)


def render_bgra(rects: np.ndarray, palette: np.ndarray, scale: int = 1, bg: int = 0) -> np.ndarray:
    """Draw rects (R, 5) -> (H, W, 4) uint8 BGRA, or a batch (n, R, 5) -> (n, H, W, 4).

    scale=1 is the canvas (640x360); scale=4 is model resolution (160x90). The canvas is first
    filled with palette[bg], exactly as page.js clears it. Empty slots (w or h == 0) draw nothing.
    """
    rects = np.asarray(rects)
    if rects.ndim == 3:
        return np.stack([render_bgra(r, palette, scale, bg) for r in rects])
    if CANVAS_W % scale or CANVAS_H % scale or GRID % scale:
        raise ValueError(f"scale must divide the {GRID}-px grid, got {scale}")
    img = np.empty((CANVAS_H // scale, CANVAS_W // scale, 4), np.uint8)
    img[:] = palette[bg]
    for x, y, w, h, c in (rects // np.array([scale, scale, scale, scale, 1])).tolist():
        if w > 0 and h > 0:
            img[y:y + h, x:x + w] = palette[c]
    return img


def palette_obs(palette: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """(P, C) uint8: each palette colour as the observation sees it, via the shared preprocess.

    A 1 x P BGRA strip of the colours goes through `preprocess` with a spec of the same size (so no
    resize happens, only the colour conversion every screen grab gets): whatever cv2 does for
    gray/RGB, the table is bit-identical to it.
    """
    strip = np.ascontiguousarray(palette[None, :, :])
    one = ObsSpec(width=len(palette), height=1, gray=spec.gray, stack=1)
    return np.ascontiguousarray(preprocess(strip, one)[:, 0, :].T)  # [C, 1, P] -> [P, C]


class ObsRenderer:
    """Draw lists (n, R, 5) -> observation frames (n, C, h, w) uint8, fast.

    Per batch: copy a cached background (the rects that are identical in every frame and can be
    painted first without changing the picture: clear, floor, HUD bar backgrounds), then paint the
    remaining visible rects with numpy slices, one Python-level assignment per rect (~10 per frame).
    Measured faster than a fancy-index scatter of the same rects: the frames are small, so per-call
    overhead dominates either way, and slices touch each pixel once.
    """

    def __init__(self, palette: np.ndarray, spec: ObsSpec = ObsSpec(), bg: int = 0):
        self.spec, self.palette, self.bg = spec, np.asarray(palette, np.uint8), bg
        self.lut = palette_obs(self.palette, spec)  # (P, C)
        sx, sy = CANVAS_W // spec.width, CANVAS_H // spec.height
        self.fast = (spec.crop is None and sx == sy and sx * spec.width == CANVAS_W
                     and sy * spec.height == CANVAS_H and GRID % sx == 0)
        self.scale = sx if self.fast else 1
        # Half the grid resolution (80x45): render exactly at the grid (160x90), then average 2x2. Each grid
        # block is one colour, so that equals INTER_AREA of the canvas (bit for bit against preprocess in
        # tests/test_duel_env.py) at a fraction of the cost of rendering the canvas.
        self.coarse = None
        if (not self.fast and spec.crop is None and sx == sy and sx * spec.width == CANVAS_W
                and sy * spec.height == CANVAS_H and sx == 2 * GRID):
            self.coarse = ObsRenderer(palette, ObsSpec(width=CANVAS_W // GRID, height=CANVAS_H // GRID, gray=spec.gray,
                                                       stack=1), bg)
        self._backgrounds: dict[bytes, np.ndarray] = {}  # baked static rects -> background frame

    def _baked_slots(self, rects: np.ndarray) -> np.ndarray:
        """bool (R,): slots that go into a cached background instead of being painted frame by frame.

        A slot qualifies when it is the same rect in every frame of the batch and no slot painted before it
        (and not itself baked) overlaps it in any frame: painting it early then cannot change the picture.
        In the duel that is the clear, the floor and the HUD bar backgrounds. Small batches skip this
        (their background would rarely be reused)."""
        n, r = rects.shape[:2]
        baked = np.zeros(r, bool)
        if n < 8:
            return baked
        same = (rects == rects[:1]).all(axis=(0, 2))
        x0, y0, w, h = (rects[..., i] for i in range(4))
        x1, y1, vis = x0 + w, y0 + h, (w > 0) & (h > 0)
        for j in np.flatnonzero(same):
            dyn = np.flatnonzero(~baked[:j])
            if vis[0, j] and dyn.size and (vis[:, dyn] & (x0[:, dyn] < x1[0, j]) & (x0[0, j] < x1[:, dyn])
                                           & (y0[:, dyn] < y1[0, j]) & (y0[0, j] < y1[:, dyn])).any():
                continue
            baked[j] = True
        return baked

    def _background_for(self, static_rects: np.ndarray) -> np.ndarray:
        key = static_rects.tobytes()
        bg = self._backgrounds.get(key)
        if bg is None:
            if len(self._backgrounds) > 64:  # a bounded cache: batches rarely share more than a few
                self._backgrounds.clear()
            bg = self.lut[self._index_image(static_rects)].transpose(2, 0, 1).copy()
            self._backgrounds[key] = bg
        return bg

    def _index_image(self, rects: np.ndarray) -> np.ndarray:
        """(h, w) palette indices at the fast scale (used only to build the cached background)."""
        s = self.scale
        img = np.full((CANVAS_H // s, CANVAS_W // s), self.bg, np.intp)
        for x, y, w, h, c in (rects // np.array([s, s, s, s, 1])).tolist():
            if w > 0 and h > 0:
                img[y:y + h, x:x + w] = c
        return img

    def render(self, rects: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """rects (n, R, 5) int -> out (n, C, h, w) uint8 (written in place when given; may be a strided view)."""
        rects = np.asarray(rects)
        n = rects.shape[0]
        spec = self.spec
        if out is None:
            out = np.empty((n, *spec.frame_shape), np.uint8)
        if self.coarse is not None:
            fine = self.coarse.render(rects)  # (n, C, 90, 160), exact
            # 2x2 sums from four strided views in uint16 (a reshape+sum promotes to int64: 3x slower)
            s4 = fine[..., 0::2, 0::2].astype(np.uint16)
            s4 += fine[..., 1::2, 0::2]
            s4 += fine[..., 0::2, 1::2]
            s4 += fine[..., 1::2, 1::2]
            # cv2's INTER_AREA rounds the mean half to even here (checked against preprocess bit for bit);
            # in integers: q = s4 // 4, plus one when the remainder is 3, or 2 with q odd
            q, r = s4 >> 2, s4 & 3
            q += (r == 3) | ((r == 2) & (q & 1).astype(bool))
            out[:] = q
            return out
        if not self.fast:  # the general (slow) path: the definition itself
            out[:] = preprocess(render_bgra(rects, self.palette, 1, self.bg), spec)
            return out
        s = self.scale
        if s > 1 and (rects[..., :4] % s).any():  # the exactness argument needs every edge on the grid
            raise ValueError(
                f"draw rects must have coordinates that are multiples of {s} for a {spec.width}x{spec.height} render"
            )
        baked = self._baked_slots(rects)
        out[:] = self._background_for(rects[0, baked])
        sub = rects[:, ~baked] // np.array([s, s, s, s, 1], dtype=rects.dtype)
        # one flat list of the visible rects of all frames, in painting order within each frame
        ii, jj = np.nonzero((sub[..., 2] > 0) & (sub[..., 3] > 0))
        r = sub[ii, jj]
        x0, y0 = r[:, 0], r[:, 1]
        spans = np.stack([ii, y0, y0 + r[:, 3], x0, x0 + r[:, 2]], 1).tolist()
        for ch in range(spec.channels):
            o = out[:, ch]
            for (i, ya, yb, xa, xb), v in zip(spans, self.lut[r[:, 4], ch].tolist()):
                o[i, ya:yb, xa:xb] = v
        return out
