"""Reading and checking the episode store (the format: hakisa/data/format.py). Chunks are read on demand."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from hakisa.data.format import AGENT, ARRAYS, EVENT_DTYPE, FORMAT, OPTIONAL, PERSON, VERSION, DataError, frame_shape_of


@dataclass
class EpisodeInfo:
    """One episode as the store's manifest lists it: its chunk records (in frame order), its begin and end
    records, and what the end record says (`complete`, `terminated`, `ret`). No frames are read to build it."""

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
        self.frame_shape = frame_shape_of(self.meta["obs_spec"])
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
    """What `EpisodeStore.check` found: errors (corruption; `ok` is False when there are any), warnings,
    the ids of cut episodes (no end record), and how many chunks and frames read back intact."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)
    chunks_ok: int = 0
    frames_ok: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors
