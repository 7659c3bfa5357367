"""The one preprocess function every observation goes through, and what it makes: `ObsSpec`, `FrameStack`.

`preprocess` is pure (BGRA frame in, uint8 channels-first observation out). Screen grabs, the duel
simulator's renders and stable-retro frames all go through it, which is what lets an agent trained
on one source play another.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ObsSpec:
    """What the model sees: `stack` frames of `height` x `width`, gray (1 channel) or RGB (3)."""

    width: int = 160
    height: int = 90
    gray: bool = True
    stack: int = 4
    crop: tuple[int, int, int, int] | None = None  # (left, top, width, height) in source pixels

    @property
    def channels(self) -> int:
        return 1 if self.gray else 3

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.stack * self.channels, self.height, self.width)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ObsSpec":
        d = dict(d)
        if d.get("crop") is not None:
            d["crop"] = tuple(d["crop"])
        return cls(**d)


def preprocess(frame: np.ndarray, spec: ObsSpec) -> np.ndarray:
    """BGRA (or BGR) uint8 frame [H, W, C] -> observation frame uint8 [C', h, w] (channels-first).

    Also accepts a batch [N, H, W, C] -> [N, C', h, w]. Order: crop, colour conversion, then resize
    (INTER_AREA, skipped when the size already matches). Converting first means the resize touches
    1 channel instead of 4 (0.16 vs 0.32 ms for 640x360 -> 160x90), and for frames made of uniform
    blocks (the duel's 4-px grid) both orders give the same bytes.
    """
    if frame.ndim == 4:
        if frame.shape[1:3] != (spec.height, spec.width) or spec.crop is not None:
            return np.stack([preprocess(f, spec) for f in frame])
        n, h, w, c = frame.shape
        # cvtColor is per-pixel, so a batch converts in one call as one tall image
        flat = _convert(np.ascontiguousarray(frame).reshape(n * h, w, c), spec.gray)
        return flat.reshape(n, h, w, -1).transpose(0, 3, 1, 2).copy()
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"preprocess expects a uint8 BGRA/BGR frame [H, W, 3|4], got {frame.dtype} {frame.shape}")
    if spec.crop is not None:
        left, top, cw, ch = spec.crop
        frame = frame[top:top + ch, left:left + cw]
    out = _convert(np.ascontiguousarray(frame), spec.gray)
    if out.shape[:2] != (spec.height, spec.width):
        out = cv2.resize(out, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        if out.ndim == 2:  # cv2 drops a single channel axis
            out = out[..., None]
    return out.transpose(2, 0, 1).copy()


def _convert(img: np.ndarray, gray: bool) -> np.ndarray:
    c = img.shape[2]
    if gray:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if c == 4 else cv2.COLOR_BGR2GRAY)[..., None]
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if c == 4 else cv2.COLOR_BGR2RGB)


def rgb_to_bgra(rgb: np.ndarray) -> np.ndarray:
    """For sources that hand out RGB (stable-retro, browser screenshots)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)


class FrameStack:
    """The last k preprocessed frames, oldest first, as one [k*C, H, W] array."""

    def __init__(self, spec: ObsSpec):
        self.spec = spec
        self.frames: deque[np.ndarray] = deque(maxlen=spec.stack)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames.clear()
        for _ in range(self.spec.stack):
            self.frames.append(frame)
        return self.get()

    def push(self, frame: np.ndarray) -> np.ndarray:
        if not self.frames:
            return self.reset(frame)
        self.frames.append(frame)
        return self.get()

    def get(self) -> np.ndarray:
        return np.concatenate(list(self.frames), axis=0)
