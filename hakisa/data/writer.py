"""Writing the episode store crash-safely (the format and why it is safe: hakisa/data/format.py)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from hakisa.data.format import (
    AGENT,
    ARRAYS,
    FORMAT,
    OPTIONAL,
    PERSON,
    SOURCES,
    VERSION,
    atomic_write,
    events_array,
    frame_shape_of,
    fsync_dir,
    jsonable,
)
from hakisa.data.store import EpisodeStore


class EpisodeWriter:
    """Append episodes to a store, crash-safely. Opening an existing store appends to it.

    meta: input_map (InputMap or dict), obs_spec (ObsSpec or dict), fps, source ("teacher" |
    "explore" | "play"), and optionally game, window, anything else JSON-able.
    """

    def __init__(self, root: str | Path, meta: dict, chunk_seconds: float = 1.0, chunk_frames: int | None = None):
        self.root = Path(root)
        meta = jsonable(meta)
        for k in ("input_map", "obs_spec", "fps", "source"):
            if k not in meta:
                raise ValueError(f"EpisodeWriter meta needs {k!r}")
        if meta["source"] not in SOURCES:
            raise ValueError(f"meta source must be one of {SOURCES}, got {meta['source']!r}")
        self.chunk_seconds = float(chunk_seconds)
        # ~1 s of frames per chunk at the nominal fps, so a crash loses at most ~1 s
        self.chunk_frames = int(chunk_frames or max(1, round(float(meta["fps"]) * self.chunk_seconds)))
        self.frame_shape = tuple(int(v) for v in frame_shape_of(meta["obs_spec"]))
        (self.root / "chunks").mkdir(parents=True, exist_ok=True)
        meta_path = self.root / "meta.json"
        self.next_ep = 0
        if meta_path.exists():  # append to an existing store: it must describe the same data
            old = json.loads(meta_path.read_text())
            for k in ("input_map", "obs_spec"):
                if old.get(k) != meta[k]:
                    raise ValueError(f"{self.root}: existing store has a different {k}; record into a new directory")
            self.meta = old
            self._repair_torn_tail()
            store = EpisodeStore(self.root)
            self.next_ep = 1 + max((e.id for e in store.episodes), default=-1)
        else:
            self.meta = {"format": FORMAT, "version": VERSION, "created": time.time(), **meta}
            atomic_write(meta_path, json.dumps(self.meta, indent=1).encode())
        self._manifest = open(self.root / "manifest.jsonl", "ab")
        fsync_dir(self.root)
        self.ep: int | None = None
        self._buf: dict[str, list] = {k: [] for k in (*ARRAYS, *OPTIONAL, "actor")}
        self._events: list = []
        self._ep_frames = self._ep_chunks = 0
        self._ep_return = 0.0
        self._ep_done = False

    def _repair_torn_tail(self) -> None:
        # a crash can leave a half-written last manifest line that was never acknowledged (its fsync
        # never returned); cut it so the next record starts on a fresh line
        p = self.root / "manifest.jsonl"
        if not p.exists():
            return
        data = p.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(p, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())

    def _record(self, rec: dict) -> None:
        self._manifest.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())
        self._manifest.flush()
        os.fsync(self._manifest.fileno())

    # ---- episodes -------------------------------------------------------------------------------
    def begin_episode(self, **info) -> int:
        if self.ep is not None:
            self.end_episode()
        self.ep, self.next_ep = self.next_ep, self.next_ep + 1
        self._ep_frames = self._ep_chunks = 0
        self._ep_return, self._ep_done = 0.0, False
        self._record({"kind": "begin", "ep": self.ep, "t": time.time(), **info})
        return self.ep

    def add(self, frame: np.ndarray, action, reward: float = 0.0, done: bool = False, t: float | None = None,
            logp: float | None = None, value: float | None = None, actor: int | None = None) -> None:
        """One step: the frame seen BEFORE `action`, then the reward/done that followed it. logp/value:
        the acting policy's log-prob of `action` and its value estimate (agents only; see OPTIONAL; NaN on
        a frame the person acted on). actor: who sent `action` (PERSON or AGENT), when both could."""
        if self.ep is None:
            raise RuntimeError("EpisodeWriter.add before begin_episode()")
        if actor is not None and actor not in (PERSON, AGENT):
            raise ValueError(f"actor must be {PERSON} (person) or {AGENT} (agent), got {actor!r}")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.frame_shape:
            raise ValueError(
                f"frame must be ONE preprocessed frame uint8 {self.frame_shape}, got {frame.dtype} {frame.shape}"
            )
        t = time.time() if t is None else float(t)
        b = self._buf
        # flush BEFORE appending once ~1 s is buffered, so the episode's last chunk (written by
        # end_episode) always carries the events logged after its last frame
        if b["frames"] and (len(b["frames"]) >= self.chunk_frames or t - b["timestamps"][0] >= self.chunk_seconds):
            self.flush()
            b = self._buf
        b["frames"].append(frame)
        b["actions"].append(np.asarray(action, dtype=np.int64).reshape(3))
        b["rewards"].append(float(reward))
        b["dones"].append(bool(done))
        b["timestamps"].append(t)
        for k, v in (("logp", logp), ("value", value)):
            if v is not None:
                b[k].append(float(v))
        if actor is not None:
            b["actor"].append(int(actor))
        self._ep_return += float(reward)
        self._ep_done = bool(done)

    def add_events(self, events: Iterable) -> None:
        """Raw input events (t, type, key, x, y); stored with the next chunk written."""
        self._events.extend(events)

    def flush(self) -> None:
        """Make everything buffered durable: chunk file -> fsync -> rename -> manifest line -> fsync."""
        b = self._buf
        n = len(b["frames"])
        if n == 0 or self.ep is None:
            return
        arrays = {
            "frames": np.stack(b["frames"]),
            "actions": np.stack(b["actions"]),
            "rewards": np.asarray(b["rewards"], dtype=np.float32),
            "dones": np.asarray(b["dones"], dtype=bool),
            "timestamps": np.asarray(b["timestamps"], dtype=np.float64),
            "events": events_array(self._events),
        }
        for k in OPTIONAL:  # only when every step of the chunk has one
            if len(b[k]) == n:
                arrays[k] = np.asarray(b[k], dtype=np.float32)
        actors = {}
        if len(b["actor"]) == n:
            a = arrays["actor"] = np.asarray(b["actor"], dtype=np.int8)
            actors = {"agent_frames": int(a.sum()), "takeovers": int(((a[:-1] == AGENT) & (a[1:] == PERSON)).sum()),
                      "actor_first": int(a[0]), "actor_last": int(a[-1])}
        bio = io.BytesIO()
        np.savez_compressed(bio, **arrays)
        data = bio.getvalue()
        name = f"chunks/e{self.ep:06d}-c{self._ep_chunks:05d}.npz"
        atomic_write(self.root / name, data)
        self._record(
            {
                "kind": "chunk",
                "ep": self.ep,
                "idx": self._ep_chunks,
                "file": name,
                "start": self._ep_frames,
                "n": n,
                "t0": arrays["timestamps"][0].item(),
                "t1": arrays["timestamps"][-1].item(),
                "events": len(arrays["events"]),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                **actors,
            }
        )
        self._ep_frames += n
        self._ep_chunks += 1
        self._buf = {k: [] for k in (*ARRAYS, *OPTIONAL, "actor")}
        self._events = []

    def end_episode(self, **info) -> None:
        """Close the episode. `terminated` defaults to the last step's done (else it was truncated)."""
        if self.ep is None:
            return
        self.flush()
        self._record(
            {
                "kind": "end",
                "ep": self.ep,
                "frames": self._ep_frames,
                "chunks": self._ep_chunks,
                "return": self._ep_return,
                "terminated": self._ep_done,
                "t": time.time(),
                **info,
            }
        )
        self.ep = None

    @property
    def episode_frames(self) -> int:
        """Frames in the open episode, durable or still buffered."""
        return self._ep_frames + len(self._buf["frames"])

    def close(self) -> None:
        if self._manifest.closed:
            return
        self.end_episode()
        self._manifest.close()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

