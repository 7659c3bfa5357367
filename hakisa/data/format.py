"""The episode store's format: the one dataset format the teacher, explore, play, study and consolidate share.

On disk (a directory):
    meta.json        written once: format version, input map, obs spec, fps, game/window, source
    manifest.jsonl   append-only, one JSON record per line, fsync'd after every line:
                       {"kind": "begin", "ep": 3, ...}
                       {"kind": "chunk", "ep": 3, "file": "chunks/e000003-c00000.npz", "n": 30, "sha256": ..., ...}
                       {"kind": "end", "ep": 3, "frames": 412, "terminated": true, ...}
    chunks/*.npz     ~1 s of ONE episode each: frames [n,C,H,W] uint8 (single preprocessed frames, never
                     stacks), actions [n,3], rewards [n], dones [n], timestamps [n], events (raw input log)

Why this shape:
- A chunk is written to a temp name, fsync'd, renamed, and only THEN listed in the manifest (also
  fsync'd). A `kill -9` therefore loses only the frames still buffered in memory (< chunk_seconds),
  and a listed chunk is always complete. Nothing is ever rewritten.
- .npz is numpy's zip of .npy files: a well-kept format every tool can open, read here with
  allow_pickle=False (no code execution), zlib-compressed. The manifest holds each chunk's size and
  sha256, so a truncated or bit-flipped chunk is a clear error naming the file, never silent garbage.
- An episode without an "end" record is a *cut* episode (the recorder died); its frames still read.

Alignment: frames[t] is what was seen BEFORE actions[t]; rewards[t] and dones[t] follow actions[t];
the next observation of step t is frames[t+1]. A step with no next frame that is not done (the last
step of a cut or truncated episode) is dropped by `Transitions`.

The code: this file (constants, errors, crash-safe writes), writer.py (`EpisodeWriter`), store.py
(`EpisodeStore`: reading and checking).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

FORMAT = "hakisa-episodes"
VERSION = 1
SOURCES = ("teacher", "explore", "play")
# the raw input log: key down/up ("down"/"up", key = pynput name), mouse "move", "press"/"release"
# (key = "left"/"right"), "scroll" (x, y = dx, dy). x, y are screen pixels, NaN when not applicable.
EVENT_DTYPE = np.dtype([("t", "<f8"), ("type", "<U8"), ("key", "<U16"), ("x", "<f4"), ("y", "<f4")])
ARRAYS = ("frames", "actions", "rewards", "dones", "timestamps")
# written by agents that sample from their policy (explore): the behaviour policy's log-prob of each
# action and its value estimate, so `hakisa consolidate --algo ppo` can form PPO's ratio honestly.
# Optional per chunk: a human teacher has neither.
OPTIONAL = ("logp", "value")
# who sent each step's action, when an agent played and a person could take over (`hakisa record --agent`):
# 0 the person (teacher), 1 the agent. A chunk without it is all teacher. Its manifest record counts the
# agent's frames and the takeovers (agent -> person) inside it, and names its first and last actor, so that
# counting them needs no chunk read.
PERSON, AGENT = 0, 1


class DataError(RuntimeError):
    """A dataset is unreadable or corrupt; the message names the file."""


def fsync_dir(path: Path) -> None:
    # a rename is only durable once the directory entry is on disk
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def jsonable(d: dict) -> dict:
    """meta may hold an InputMap / ObsSpec; store their dicts."""
    out = {}
    for k, v in d.items():
        out[k] = v.to_dict() if hasattr(v, "to_dict") else v
    return out


def events_array(events: Iterable) -> np.ndarray:
    """(t, type, key, x, y) tuples or dicts -> a structured array of EVENT_DTYPE."""
    rows = []
    for e in events:
        if isinstance(e, dict):
            e = (e["t"], e["type"], e.get("key", ""), e.get("x", np.nan), e.get("y", np.nan))
        e = tuple(e)
        t, typ, key, x, y = e + ("", np.nan, np.nan)[len(e) - 2:]  # key, x and y are optional
        rows.append((float(t), str(typ), "" if key is None else str(key),
                     np.nan if x is None else float(x), np.nan if y is None else float(y)))
    return np.array(rows, dtype=EVENT_DTYPE)


def frame_shape_of(obs_spec: dict) -> tuple[int, int, int]:
    return (1 if obs_spec.get("gray", True) else 3, int(obs_spec["height"]), int(obs_spec["width"]))
