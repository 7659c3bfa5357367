"""The episode store: the one dataset format the teacher, explore, play, study and consolidate share.

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
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

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


def _fsync_dir(path: Path) -> None:
    # a rename is only durable once the directory entry is on disk
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _jsonable(d: dict) -> dict:
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


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
class EpisodeWriter:
    """Append episodes to a store, crash-safely. Opening an existing store appends to it.

    meta: input_map (InputMap or dict), obs_spec (ObsSpec or dict), fps, source ("teacher" |
    "explore" | "play"), and optionally game, window, anything else JSON-able.
    """

    def __init__(self, root: str | Path, meta: dict, chunk_seconds: float = 1.0, chunk_frames: int | None = None):
        self.root = Path(root)
        meta = _jsonable(meta)
        for k in ("input_map", "obs_spec", "fps", "source"):
            if k not in meta:
                raise ValueError(f"EpisodeWriter meta needs {k!r}")
        if meta["source"] not in SOURCES:
            raise ValueError(f"meta source must be one of {SOURCES}, got {meta['source']!r}")
        self.chunk_seconds = float(chunk_seconds)
        # ~1 s of frames per chunk at the nominal fps, so a crash loses at most ~1 s
        self.chunk_frames = int(chunk_frames or max(1, round(float(meta["fps"]) * self.chunk_seconds)))
        self.frame_shape = tuple(int(v) for v in _frame_shape(meta["obs_spec"]))
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
            _atomic_write(meta_path, json.dumps(self.meta, indent=1).encode())
        self._manifest = open(self.root / "manifest.jsonl", "ab")
        _fsync_dir(self.root)
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
        _atomic_write(self.root / name, data)
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


def _frame_shape(obs_spec: dict) -> tuple[int, int, int]:
    return (1 if obs_spec.get("gray", True) else 3, int(obs_spec["height"]), int(obs_spec["width"]))


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
@dataclass
class EpisodeInfo:
    id: int
    chunks: list[dict] = field(default_factory=list)
    complete: bool = False  # has an "end" record; False = cut (the recorder died mid-episode)
    terminated: bool = False  # ended by the game (last step done), not by a split/stop
    ret: float = 0.0
    begin: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return sum(c["n"] for c in self.chunks)

    @property
    def duration(self) -> float:
        return (self.chunks[-1]["t1"] - self.chunks[0]["t0"]) if self.chunks else 0.0


class EpisodeStore:
    """Read a store. Chunks are read on demand, so opening a huge dataset is cheap.

    `.meta`, `.episodes`, `.episode(i)`, `.iter_chunks()`, `.check()`; `Transitions(store)` learns from it.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.exists():
            raise DataError(f"{self.root} is not an episode store (no meta.json)")
        try:
            self.meta: dict = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{meta_path}: corrupt meta ({e})") from None
        if self.meta.get("format") != FORMAT or self.meta.get("version", 99) > VERSION:
            raise DataError(
                f"{meta_path}: format {self.meta.get('format')!r} v{self.meta.get('version')} "
                "is not readable by this build"
            )
        self.frame_shape = _frame_shape(self.meta["obs_spec"])
        self.problems: list[str] = []  # non-fatal findings (torn last manifest line)
        self.episodes: list[EpisodeInfo] = self._read_manifest()

    def _read_manifest(self) -> list[EpisodeInfo]:
        path = self.root / "manifest.jsonl"
        eps: dict[int, EpisodeInfo] = {}
        if not path.exists():
            return []
        data = path.read_bytes()
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: a write the crash interrupted
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if last:
                    self.problems.append(f"{path}: ignored a torn last line (a write interrupted by a crash)")
                    continue
                raise DataError(f"{path}: line {i + 1} is corrupt") from None
            ep = eps.setdefault(rec["ep"], EpisodeInfo(rec["ep"]))
            if rec["kind"] == "begin":
                ep.begin = rec
            elif rec["kind"] == "chunk":
                if rec["start"] != ep.frames:
                    raise DataError(
                        f"{path}: line {i + 1}: chunk {rec['file']} starts at frame {rec['start']}, "
                        f"expected {ep.frames}"
                    )
                ep.chunks.append(rec)
            elif rec["kind"] == "end":
                ep.complete, ep.terminated, ep.ret, ep.end = (
                    True,
                    bool(rec.get("terminated")),
                    float(rec.get("return", 0.0)),
                    rec,
                )
        return [eps[k] for k in sorted(eps)]

    # ---- meta helpers ---------------------------------------------------------------------------
    @property
    def input_map(self):
        from hakisa.input_map import InputMap

        return InputMap.from_dict(self.meta["input_map"])

    @property
    def obs_spec(self):
        from hakisa.preprocess import ObsSpec

        return ObsSpec.from_dict(self.meta["obs_spec"])

    @property
    def num_frames(self) -> int:
        return sum(e.frames for e in self.episodes)

    def __len__(self) -> int:
        return len(self.episodes)

    # ---- chunks ---------------------------------------------------------------------------------
    def read_chunk(self, rec: dict, verify: bool = True) -> dict[str, np.ndarray]:
        path = self.root / rec["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"chunk missing: {path} (listed in the manifest of episode {rec['ep']})") from None
        if len(data) != rec["bytes"]:
            raise DataError(f"chunk truncated: {path} has {len(data)} bytes, the manifest says {rec['bytes']}")
        if verify and hashlib.sha256(data).hexdigest() != rec["sha256"]:
            raise DataError(f"chunk corrupt: {path} fails its sha256 checksum")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except Exception as e:  # zip/npy errors: still name the file
            raise DataError(f"chunk unreadable: {path} ({type(e).__name__}: {e})") from None
        n = rec["n"]
        for k in (*ARRAYS, *(k for k in (*OPTIONAL, "actor") if k in out)):
            if k not in out or len(out[k]) != n:
                raise DataError(f"chunk inconsistent: {path}: {k!r} missing or not {n} long")
        if out["frames"].shape[1:] != self.frame_shape or out["frames"].dtype != np.uint8:
            raise DataError(
                f"chunk inconsistent: {path}: frames {out['frames'].dtype} {out['frames'].shape[1:]}, "
                f"meta says uint8 {self.frame_shape}"
            )
        return out

    def iter_chunks(self, episodes: Iterable[int] | None = None) -> Iterator[tuple[EpisodeInfo, dict]]:
        """Stream (episode info, chunk arrays), one chunk in memory at a time."""
        wanted = None if episodes is None else set(episodes)
        for ep in self.episodes:
            if wanted is not None and ep.id not in wanted:
                continue
            for rec in ep.chunks:
                yield ep, self.read_chunk(rec)

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode at position i of `.episodes`: frames [T,C,H,W], actions [T,3], rewards, dones, timestamps, events;
        logp/value when every chunk has them; actor when any chunk has it (the others' frames are the person's)."""
        ep = self.episodes[i]
        parts = [self.read_chunk(rec) for rec in ep.chunks]
        if not parts:
            return {
                "frames": np.zeros((0, *self.frame_shape), np.uint8),
                "actions": np.zeros((0, 3), np.int64),
                "rewards": np.zeros(0, np.float32),
                "dones": np.zeros(0, bool),
                "timestamps": np.zeros(0),
                "events": np.zeros(0, EVENT_DTYPE),
            }
        keys = [*ARRAYS, "events", *(k for k in OPTIONAL if all(k in p for p in parts))]
        out = {k: np.concatenate([p[k] for p in parts]) for k in keys}
        if any("actor" in p for p in parts):
            out["actor"] = np.concatenate([p.get("actor", np.zeros(len(p["actions"]), np.int8)) for p in parts])
        return out

    def actor_counts(self) -> dict:
        """Frames per actor and takeovers (agent -> person switches inside an episode), from the manifest alone."""
        agent = takeovers = 0
        for ep in self.episodes:
            last = PERSON
            for rec in ep.chunks:
                agent += rec.get("agent_frames", 0)
                takeovers += rec.get("takeovers", 0)
                first = rec.get("actor_first", PERSON)
                takeovers += last == AGENT and first == PERSON
                last = rec.get("actor_last", PERSON)
        return {"person": int(self.num_frames - agent), "agent": int(agent), "takeovers": int(takeovers)}

    def action_histogram(self) -> np.ndarray:
        """Counts per command index (streams the chunks)."""
        n = len(self.meta["input_map"]["commands"])
        hist = np.zeros(n, np.int64)
        for _, c in self.iter_chunks():
            hist += np.bincount(c["actions"][:, 0], minlength=n)[:n]
        return hist

    # ---- validation -----------------------------------------------------------------------------
    def check(self) -> "CheckReport":
        """Read and verify every chunk. Corruption is an error; a cut episode is a warning naming it."""
        rep = CheckReport(warnings=list(self.problems))
        listed = set()
        nvec = np.array(
            [
                len(self.meta["input_map"]["commands"]),
                self.meta["input_map"].get("x_bins", 1),
                self.meta["input_map"].get("y_bins", 1),
            ]
        )
        for ep in self.episodes:
            for rec in ep.chunks:
                listed.add(rec["file"])
                try:
                    c = self.read_chunk(rec)
                except DataError as e:
                    rep.errors.append(str(e))
                    continue
                rep.chunks_ok += 1
                rep.frames_ok += rec["n"]
                a = c["actions"]
                if "actor" in c and not np.isin(c["actor"], (PERSON, AGENT)).all():
                    rep.errors.append(f"{self.root / rec['file']}: actor not {PERSON} (person) or {AGENT} (agent)")
                if (a < 0).any() or (a >= nvec).any():
                    rep.errors.append(
                        f"{self.root / rec['file']}: action out of range for the input map {nvec.tolist()}"
                    )
                if np.any(np.diff(c["timestamps"]) < 0):
                    rep.errors.append(f"{self.root / rec['file']}: timestamps go backwards")
            if not ep.complete:
                rep.cut.append(ep.id)
                rep.warnings.append(
                    f"episode {ep.id} is CUT (no end record: the recording stopped mid-episode); "
                    f"{ep.frames} frames in {len(ep.chunks)} complete chunks are readable"
                )
            elif ep.end.get("frames", ep.frames) != ep.frames:
                rep.errors.append(
                    f"episode {ep.id}: end record says {ep.end['frames']} frames, chunks hold {ep.frames}"
                )
        for p in sorted((self.root / "chunks").glob("*")):
            rel = f"chunks/{p.name}"
            if p.name.endswith(".tmp"):
                rep.warnings.append(f"{p}: leftover temp file of an interrupted chunk write (ignored)")
            elif rel not in listed:
                rep.warnings.append(f"{p}: chunk written but never listed in the manifest (interrupted; ignored)")
        return rep


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)
    chunks_ok: int = 0
    frames_ok: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors
