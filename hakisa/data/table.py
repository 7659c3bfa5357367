"""One row per episode of a store: what `hakisa data info` prints and the viewer's episode list shows.

    rows = episode_rows(EpisodeStore("datasets/pop"))   # [{"episode", "frames", "duration_s", "outcome", ...}]

Durations and dropped frames come from the frames' own timestamps (every kind of store has them), so a
store written in a burst after its episodes were played reads as short only if its timestamps say so.
A dropped frame is a tick of the store's clock (meta fps) with no frame: the recorder fell behind, or the
game paused play inside the episode (frames out of play are not stored).
"""
from __future__ import annotations

import numpy as np

from hakisa.data.store import EpisodeInfo, EpisodeStore

# the store's per-frame `actor` column (0 the person, 1 the agent; written where both could act): a chunk
# without it, in an episode where others have it, is the person's
ACTORS = {0: "person", 1: "agent"}


def outcome(ep: EpisodeInfo) -> str:
    """won / lost / draw where the game reported a winner (1 is the player, as in `play`'s win rate),
    game over, a stop reason, or cut (the recorder died)."""
    if not ep.complete:
        return "cut"
    w = ep.end.get("winner", ep.begin.get("winner"))
    if w is not None:
        return {1: "won", 0: "draw"}.get(int(w), "lost")
    if ep.terminated:
        return "game over"
    return str(ep.end.get("reason") or "truncated")


def dropped_frames(timestamps: np.ndarray, fps: float | None) -> int:
    """Clock ticks with no frame: a gap of k ticks between two stored frames holds k - 1 dropped ones."""
    if not fps or len(timestamps) < 2:
        return 0
    ticks = np.rint(np.diff(np.asarray(timestamps, np.float64)) * float(fps))
    return int(np.maximum(ticks - 1, 0).sum())


def _light_read(store: EpisodeStore, rec: dict, keys: tuple[str, ...]) -> dict:
    """Only the small per-frame arrays of a chunk: an npz member is decompressed on access, so the frames
    are never inflated (the full, checksummed read is `store.read_chunk`, used for what is shown)."""
    with np.load(store.root / rec["file"], allow_pickle=False) as z:
        return {k: z[k] for k in keys if k in z.files}


def episode_rows(store: EpisodeStore) -> list[dict]:
    fps = store.meta.get("fps")
    rows = []
    for ep in store.episodes:
        ts, actor, has_actor = [], [], False
        for rec in ep.chunks:
            c = _light_read(store, rec, ("timestamps", "actor"))
            ts.append(c["timestamps"])
            actor.append(c.get("actor", np.zeros(rec["n"], np.int64)))
            has_actor = has_actor or "actor" in c
        t = np.concatenate(ts) if ts else np.zeros(0)
        row = {
            "episode": ep.id,
            "frames": ep.frames,
            "duration_s": round(float(t[-1] - t[0]), 3) if len(t) > 1 else 0.0,
            "outcome": outcome(ep),
            "score": ep.end.get("score", ep.begin.get("score")),
            "return": round(ep.ret, 4) if ep.complete else None,
            "dropped": dropped_frames(t, fps),
        }
        if has_actor:
            counts = np.bincount(np.concatenate(actor).astype(np.int64), minlength=2)
            row["actor"] = {ACTORS.get(i, str(i)): int(n) for i, n in enumerate(counts) if n}
        rows.append(row)
    return rows


def who(row: dict) -> str:
    """'person', 'agent', or the shares when both acted ('agent 70%'); '' when the store does not say."""
    a = row.get("actor")
    if not a:
        return ""
    if len(a) == 1:
        return next(iter(a))
    total = sum(a.values())
    top = max(a, key=a.get)
    return f"{top} {100 * a[top] / total:.0f}%"


def format_rows(rows: list[dict]) -> list[str]:
    """A fixed-width text table (one line per episode, a header first)."""
    has_score = any(r["score"] is not None for r in rows)
    has_actor = any("actor" in r for r in rows)
    cols = [("ep", "episode", 5), ("frames", "frames", 7), ("duration", "duration_s", 9)]
    if has_score:
        cols.append(("score", "score", 7))
    cols += [("outcome", "outcome", 10), ("return", "return", 9), ("dropped", "dropped", 8)]
    head = "".join(f"{name:>{w}} " if name != "outcome" else f"{name:<{w}} " for name, _, w in cols)
    if has_actor:
        head += " who acted"
    out = [head.rstrip()]
    for r in rows:
        cells = []
        for name, key, w in cols:
            v = r[key]
            if key == "duration_s":
                v = f"{v:.1f}s"
            elif v is None:
                v = "-"
            elif isinstance(v, float):
                v = f"{v:.4g}"
            cells.append(f"{v:<{w}} " if name == "outcome" else f"{v:>{w}} ")
        line = "".join(cells)
        if has_actor:
            line += " " + who(r)
        out.append(line.rstrip())
    return out
