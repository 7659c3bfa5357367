"""Which input labels each recorded frame: the label lag, measured from the recording.

A recording pairs each grabbed frame with the input held at that moment (plus anything pressed since the tick
before: `hakisa record`). A person answers what they SAW, a frame or more earlier, so the input that answers a
frame may come after it. How much later depends on the game and the person; both ways of choosing it here
measure it:
- `lag_from_clicks` (study's default): for a game with clicks, the lag whose click frames show something where
  the click lands. Cheap (no training), and decisive where a click removes its target: the frame grabbed after
  the click no longer shows it.
- `choose_label_lag` (`--label-lag auto`): a full study per candidate, the best held-out score wins (4x slower).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from hakisa.algos.bc import fit


def click_visibility(data, imap, sample: int = 400, seed: int = 0) -> float | None:
    """Share of click frames that show something near the clicked cell: some pixels within a cell of the click
    differ clearly from the background (the per-pixel median of the recording). None without clicks.

    A teacher that clicks a target as it enters the screen, when it is a 1-2 pixel sliver of the observation,
    labels frames that show nothing to click; no learner can copy that. None too when an axis has one bin: such a
    click names no point (a game whose click acts wherever it lands: fire, launch, flip), so "near it" means nothing."""
    if int(imap.x_bins) < 2 or int(imap.y_bins) < 2:
        return None
    clicks = np.array([c.kind.startswith("click") for c in imap.commands])
    idx = data.indices[clicks[data.actions[data.indices, 0]]]
    if len(idx) == 0:
        return None
    rng = np.random.default_rng(seed)
    bg_idx = np.sort(rng.choice(data.indices, min(sample, len(data.indices)), replace=False))
    bg = np.median(np.asarray(data.frames[bg_idx], np.float32), axis=0)  # [C, H, W]
    _, h, w = bg.shape
    cw, ch = w / imap.x_bins, h / imap.y_bins
    seen = 0
    pick = np.sort(rng.choice(idx, min(sample, len(idx)), replace=False))
    for i in pick:
        a = data.actions[i]
        cx, cy = (a[1] + 0.5) * cw, (a[2] + 0.5) * ch
        x0, x1 = int(max(0, cx - cw)), int(min(w, cx + cw + 1))
        y0, y1 = int(max(0, cy - ch)), int(min(h, cy + ch + 1))
        diff = np.abs(np.asarray(data.frames[i][:, y0:y1, x0:x1], np.float32) - bg[:, y0:y1, x0:x1]).max(0)
        seen += int((diff > 30).sum() >= max(4, 0.25 * cw * ch))
    return seen / len(pick)


def lag_from_clicks(data, imap, fps: float, frames: int = 2, margin: float = 0.2) -> tuple[float, list]:
    """Study's default label lag: 0, or k frames AFTER each grab (k <= `frames`) when the click frames labelled
    that way show something near the click (`click_visibility`) on `margin` more of them than at 0; the smallest
    such k. A game without clicks (or a store without its input log) keeps 0. Returns (lag, the visibilities).

    Measured on the zoo's two click games and Pop (2026-12-07): at lag 0 their click frames show the target on
    59 %, 55 % and 13 % of clicks, one frame later on 100 % of each: the target vanishes when it is clicked, and
    the click, pressed between two grabs, is filed with the grab after it."""
    from hakisa.data import DataError

    if not any(c.kind.startswith("click") for c in imap.commands):
        return 0.0, []
    period, recorded, tried = 1.0 / fps, data.actions.copy(), []
    try:
        # k = 0 from the recorded labels themselves; later ones re-derived from the input log
        for k in range(frames + 1):
            if k:
                data.relabel(-k * period, period)
            v = click_visibility(data, imap)
            tried.append({"frames_after": k, "lag": -k * period,
                          "click_visibility": None if v is None else round(v, 3)})
    except DataError:  # not a teacher's recording, or no input log: the labels stay as recorded
        pass
    finally:
        data.actions[:] = recorded  # the caller relabels with the lag chosen
    base = tried[0]["click_visibility"] if tried else None
    for t in tried[1:]:
        if base is not None and t["click_visibility"] is not None and t["click_visibility"] >= base + margin:
            print(f"study: clicks filed {t['frames_after']} frame(s) earlier: the clicked cell shows something on "
                  f"{t['click_visibility']:.0%} of click frames that way, {base:.0%} as recorded", flush=True)
            return t["lag"], tried
    return 0.0, tried


def choose_label_lag(data, args, fps: float, make_net, weights_for) -> tuple[float, list]:
    """--label-lag auto: a full study per candidate lag (0 and 1-3 frames AFTER each grab); the one whose
    held-out balanced accuracy is best wins. A recording samples a person who answers a frame ~0.1-0.3 s later;
    which frame's input is the answer depends on the person and the game, so it is measured, not assumed."""
    from hakisa.data import DataError

    period = 1.0 / fps
    tried = []
    # each candidate gets the real schedule: short probes mislead (on the zoo's Catch, 600-step probes preferred
    # labels 2 frames late, which played at half the score of the lag-0 clone whose full run was also better held out)
    probe = replace(args, progress=False)
    for k in (0, 1, 2, 3):
        lag = -k * period
        try:
            data.relabel(lag, period)
        except DataError as e:
            print(f"study: label lag stays 0 ({str(e).splitlines()[0]})")
            return 0.0, []
        train, val = data.split(args.val_fraction, seed=args.seed)
        w, p = weights_for(train)
        torch.manual_seed(args.seed)
        best, _ = fit(make_net(), train, val, probe, w, p, label=f"label lag {k} frames")
        tried.append({"lag": lag, "frames_after": k, "score": best["score"]})
        print(f"study: labels {k} frame(s) after the grab: held-out score {best['score']:.3f}", flush=True)
    # a later lag must beat the earlier ones clearly: a tie means the player's answer is already in the frame
    pick = tried[0]
    for t in tried[1:]:
        if t["score"] > pick["score"] + 0.02:
            pick = t
    return pick["lag"], tried


def hold_pointer(data, imap) -> float:
    """--pointer-labels held: a frame where the pointer did not move (noop) is labelled `move` to the cell the
    pointer is in (the last move or click of its episode), in place; returns the share of frames relabelled.

    A mouse is where it was left: "move to the cell it is in" and "do nothing" are the same action. Labelled
    noop, a frame where the player keeps a paddle under a falling object teaches the command head a timing (when
    to move) that the screen does not show, and the x/y heads nothing. Labelled with the cell, every frame
    teaches where the pointer belongs. Frames before the episode's first move or click keep noop."""
    kinds = [c.kind for c in imap.commands]
    if "move" not in kinds or "noop" not in kinds:
        return 0.0
    move, noop = kinds.index("move"), kinds.index("noop")
    sets_pointer = np.array([k == "move" or k.startswith("click") for k in kinds])
    a, ep = data.actions, data.episode_of
    where, changed = None, 0
    for i in range(len(a)):
        if i == 0 or ep[i] != ep[i - 1]:
            where = None
        if sets_pointer[a[i, 0]]:
            where = (a[i, 1], a[i, 2])
        elif a[i, 0] == noop and where is not None:
            a[i] = (move, *where)
            changed += 1
    return changed / max(len(a), 1)
