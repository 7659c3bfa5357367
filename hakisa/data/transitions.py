"""Stacked (obs, action, reward, next_obs, done) minibatches built from single stored frames.

The store keeps each frame once; stacks are gathered at batch time from a memory-mapped,
decompressed copy of all frames (a cache file next to the data). That keeps datasets larger than
RAM trainable and costs k gathers per batch instead of k copies of every frame on disk.
Stacking matches `hakisa.preprocess.FrameStack`: at an episode's start the first frame is repeated.
`stride` > 1 stacks every stride-th frame (frames i, i-s, i-2s, ...) while every frame stays a sample: a
60 fps recording studied with stride 4 sees the 4-tick spacing of a 15 Hz stack, with a label at every tick.
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from hakisa.data.format import DataError
from hakisa.data.store import EpisodeStore


class Transitions:
    """An episode store's frames as learnable transitions, stacked `stack` deep (every `stride`-th frame).

    A view: `indices` are the usable steps (the next frame is in the same episode, or the step ended it);
    `len` counts them, `split` and `subset` make views by episode. `get`/`sample`/`batches` return dicts of
    obs and next_obs (uint8 [B, stack*C, H, W]), actions, rewards, dones, episode and index. Per-frame `actor`,
    `logp` and `values` come along when the store has them. Raises DataError for a store with no frames."""

    def __init__(self, store: EpisodeStore, stack: int | None = None, cache_dir: str | Path | None = None,
                 stride: int = 1):
        stack = stack or int(store.meta["obs_spec"].get("stack", 4))  # default: the stack the store was recorded for
        self.store, self.stack, self.stride = store, int(stack), int(stride)
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        eps = [e for e in store.episodes if e.frames > 0]
        if not eps:
            raise DataError(f"{store.root}: no frames to learn from")
        self.n_frames = sum(e.frames for e in eps)
        self.frame_shape = store.frame_shape
        self.frames = self._frame_cache(eps, cache_dir)
        # the small per-frame arrays live in RAM (~40 bytes a frame)
        cols: dict[str, list] = {"actions": [], "rewards": [], "dones": [], "timestamps": [], "logp": [], "value": [],
                                 "events": [], "actor": []}
        ep_of, start_of = [], []
        pos = 0
        for e in eps:
            for rec in e.chunks:
                c = store.read_chunk(rec, verify=False)  # verified while building the cache
                for k in cols:
                    if k in c:
                        cols[k].append(c[k])
                if "actor" not in c:  # recorded without an agent: every frame is the person's
                    cols["actor"].append(np.zeros(rec["n"], np.int8))
            ep_of.append(np.full(e.frames, e.id, np.int64))
            start_of.append(np.full(e.frames, pos, np.int64))
            pos += e.frames
        self.actions = np.concatenate(cols["actions"])
        self.rewards = np.concatenate(cols["rewards"]).astype(np.float32)
        self.dones = np.concatenate(cols["dones"]).astype(bool)
        self.timestamps = np.concatenate(cols["timestamps"])
        ev = np.concatenate(cols["events"]) if cols["events"] else None
        self.events = None if ev is None else ev[np.argsort(ev["t"], kind="stable")]  # time order, ties as logged
        n_chunks = sum(len(e.chunks) for e in eps)
        # the behaviour policy's log-probs and values, when every chunk has them (explored episodes)
        self.logp = np.concatenate(cols["logp"]) if len(cols["logp"]) == n_chunks else None
        self.values = np.concatenate(cols["value"]) if len(cols["value"]) == n_chunks else None
        # who acted on each frame (hakisa record --agent): 0 the person, 1 the agent; all 0 in a teacher's store.
        # logp/value are NaN where the person acted. A switch point is where it changes inside an episode.
        self.actor = np.concatenate(cols["actor"]).astype(np.int8)
        self.episode_of = np.concatenate(ep_of)
        self.ep_start = np.concatenate(start_of)
        # a step is usable when its next frame exists (same episode) or it ended the episode
        ep_end = np.empty(self.n_frames, np.int64)
        pos = 0
        for e in eps:
            ep_end[pos:pos + e.frames] = pos + e.frames
            pos += e.frames
        g = np.arange(self.n_frames)
        self.indices = g[(g + 1 < ep_end) | self.dones]

    def _frame_cache(self, eps, cache_dir) -> np.ndarray:
        h = hashlib.sha256()
        for e in eps:
            for rec in e.chunks:
                h.update(f"{rec['file']}:{rec['sha256']};".encode())
        key = h.hexdigest()[:16]
        dirs = (
            [Path(cache_dir)]
            if cache_dir
            else [self.store.root / ".cache", Path(tempfile.gettempdir()) / "hakisa-cache"]
        )
        shape = (self.n_frames, *self.frame_shape)
        for d in dirs:
            path = d / f"frames-{key}.u8"
            if path.exists() and path.stat().st_size == int(np.prod(shape)):
                return np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
            try:
                d.mkdir(parents=True, exist_ok=True)
                tmp = d / f"frames-{key}.u8.{os.getpid()}.tmp"
                mm = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
            except OSError:
                continue  # a read-only dataset: try the next place
            pos = 0
            for e in eps:  # stream: one chunk in RAM at a time
                for rec in e.chunks:
                    c = self.store.read_chunk(rec)
                    mm[pos : pos + rec["n"]] = c["frames"]
                    pos += rec["n"]
            mm.flush()
            del mm
            for old in d.glob("frames-*.u8"):  # the store grew: drop caches of its older states
                if old.name != path.name and dirs[0] == d:
                    old.unlink(missing_ok=True)
            os.replace(tmp, path)
            return np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
        raise DataError(f"no writable place for the frame cache of {self.store.root}")

    def relabel(self, lag: float, period: float) -> float:
        """Re-derive every frame's action from the raw input log as of `lag` seconds BEFORE the frame was
        grabbed; returns the share of commands that changed. At lag 0 this is what `hakisa record`
        labelled, up to the ~1 ms the grab takes (a frame's timestamp is taken just before its grab, the
        recorder's key snapshot just after).

        Why: a grabbed frame shows the game as it was a little earlier (game tick -> render -> compositor
        -> grab), and a key pressed now acts on the game a little later. The keys held at grab time
        therefore answer a state the frame does not show yet, and a clone learns to act early. `lag` is
        that round trip; `period` the recording's frame period (the key window of an episode's first frame).
        A negative lag labels each frame with what the player did just AFTER it was grabbed: the answer to
        that frame, for a player who reacts within a frame or two."""
        if self.store.meta.get("source") != "teacher":
            raise DataError(
                f"{self.store.root}: only a recorded teacher's labels come from a key log "
                f"(source {self.store.meta.get('source')!r})"
            )
        if self.events is None or not np.isin(self.events["type"], ("down", "up", "move", "press")).any():
            raise DataError(f"{self.store.root}: no input events stored: labels cannot be re-derived")
        region = self.store.meta.get("region") or (0, 0, 1, 1)
        fresh = actions_from_events(
            self.events,
            self.timestamps - lag,
            self.store.input_map,
            period,
            region,
            first=np.r_[True, self.episode_of[1:] != self.episode_of[:-1]],
        )
        changed = float((fresh[:, 0] != self.actions[:, 0]).mean())
        self.actions[:] = fresh  # in place: views from an earlier split() see the new labels too
        return changed

    # ---- views ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    @property
    def episode_ids(self) -> np.ndarray:
        return np.unique(self.episode_of[self.indices])

    def subset(self, episode_ids) -> "Transitions":
        """A view on some episodes (shares the frame cache)."""
        view = copy.copy(self)
        view.indices = self.indices[np.isin(self.episode_of[self.indices], np.asarray(list(episode_ids)))]
        return view

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple["Transitions", "Transitions"]:
        """Train/validation split BY EPISODE (neighbouring frames are near-duplicates, so a split by
        frame would leak and flatter validation)."""
        ids = np.random.default_rng(seed).permutation(self.episode_ids)
        n_val = int(round(len(ids) * val_fraction))
        if len(ids) >= 2:
            n_val = min(max(n_val, 1), len(ids) - 1)
        else:
            n_val = 0
        return self.subset(ids[n_val:]), self.subset(ids[:n_val])

    # ---- batches --------------------------------------------------------------------------------
    def stacked(self, frame_idx: np.ndarray) -> np.ndarray:
        """uint8 [B, k*C, H, W]: frames frame_idx-(k-1)*stride .. frame_idx (every stride-th), clamped to
        each episode's start."""
        frame_idx = np.asarray(frame_idx)
        start = self.ep_start[frame_idx]
        parts = []
        for j in range(self.stack - 1, -1, -1):  # oldest first, as FrameStack
            src = np.maximum(frame_idx - j * self.stride, start)
            order = np.argsort(src)  # sorted reads are kinder to a memory map
            got = np.empty((len(src), *self.frame_shape), np.uint8)
            got[order] = self.frames[src[order]]
            parts.append(got)
        return np.concatenate(parts, axis=1)

    def get(self, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Transitions at positions `pos` of this view."""
        i = self.indices[np.asarray(pos)]
        done = self.dones[i]
        nxt = np.where(done, i, i + 1)  # a terminal step has no next frame; next_obs is masked by done
        return {
            "obs": self.stacked(i),
            "actions": self.actions[i],
            "rewards": self.rewards[i],
            "next_obs": self.stacked(nxt),
            "dones": done,
            "episode": self.episode_of[i],
            "index": i,
        }

    def sample(
        self, batch_size: int, rng: np.random.Generator | None = None, p: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """A random minibatch (with replacement); `p` optional sampling weights over this view."""
        rng = rng or np.random.default_rng()
        return self.get(rng.choice(len(self), size=batch_size, p=p))

    def batches(self, batch_size: int, shuffle: bool = True, rng: np.random.Generator | None = None) -> Iterator[dict]:
        """One pass over this view in minibatches."""
        order = (rng or np.random.default_rng()).permutation(len(self)) if shuffle else np.arange(len(self))
        for s in range(0, len(order), batch_size):
            yield self.get(order[s : s + batch_size])


def actions_from_events(
    events: np.ndarray | None, times: np.ndarray, imap, period: float, region, first: np.ndarray | None = None
) -> np.ndarray:
    """Action triples at `times` from a raw input log, exactly as `hakisa record` builds them: the log is
    replayed through the recorder's own `InputState` and snapshotted at each time (keys held plus those
    pressed since the previous snapshot, clicks and pointer moves since then, at the pointer's place in
    `region`). `first` marks each episode's first frame, whose window is the `period` before it (the
    recorder snapshotted at the tick before, storing nothing)."""
    from hakisa.input_map import InputState

    n = len(times)
    out = np.zeros((n, 3), np.int64)
    out[:, 0] = imap.encode()[0] if any(c.kind == "noop" for c in imap.commands) else 0
    if events is None or len(events) == 0:
        return out
    inp, j = InputState(), 0
    ev = events[np.argsort(events["t"], kind="stable")]

    def feed(until: float) -> None:
        nonlocal j
        while j < len(ev) and ev["t"][j] <= until:
            t, kind, key, x, y = ev["t"][j], ev["type"][j], ev["key"][j], ev["x"][j], ev["y"][j]
            if kind in ("down", "up"):
                inp.key(kind == "down", str(key), t=t)
            elif kind == "move":
                inp.move(x, y, t=t)
            elif kind in ("press", "release"):
                inp.button(x, y, str(key), kind == "press", t=t)
            j += 1

    first = np.r_[True, np.zeros(n - 1, bool)] if first is None else first
    for i in np.argsort(times, kind="stable"):  # sweep the log once, in time order
        if first[i]:
            feed(times[i] - period)
            inp.snapshot(imap, region)
        feed(times[i])
        out[i] = inp.snapshot(imap, region)[0]
    return out
