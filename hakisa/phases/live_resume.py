"""What a live run keeps on disk to go on after a crash or `kill -9`: `hakisa train ... --resume`.

checkpoint/ is written from the learner's snapshot (its weights and its optimizer's state, taken together between
two updates: `Learner.serve_snapshot`) plus the actor's books in config.json's `resume`: env steps, games per
window, minutes played, the best judged score and what it was measured at, whether the run started from a
checkpoint (the exploration schedule and srdqn's resets depend on it). curve.json beside it keeps every game so
far, so a resumed run's curve is one curve, and TensorBoard purges the killed run's events after the checkpoint.

A Q learner's replay and target net go to checkpoint/learner.safetensors with the rest (`Learner.state`; the
filled slots only, ~6 KB a 96x64 frame), written by a thread of its own (`Saver`) so the actor never waits on the
disk; resumed with other --windows or another buffer size, the learner fills it again and says so in one line.
Not kept: a PPO batch in progress (seconds of play).
"""
from __future__ import annotations

import copy
import json
import math
import threading
from pathlib import Path
from types import SimpleNamespace

from hakisa.algos.common import summarize
from hakisa.model import CheckpointError, save_checkpoint


def curve(episodes: list, key: str) -> list:
    """[minute, that minute's mean score (or win rate / return), games] for each minute of play."""
    out = []
    for m in range(int(max((e["minute"] for e in episodes), default=0)) + 1):
        eps = [e for e in episodes if m <= e["minute"] < m + 1]
        if eps:  # a minute whose games all ended unread (no score on their last frame) has no value
            v = summarize(eps).get(key)
            out.append([m + 1, None if v is None else round(v, 3), len(eps)])
    return out


def write_curve(run_dir: Path, key: str, episodes: list) -> list:
    c = curve(episodes, key)
    (run_dir / "curve.json").write_text(json.dumps({"score_key": key, "curve": c, "episodes": episodes}, indent=1))
    return c


def checkpoint_job(actor, snap: dict, metrics: dict, minutes: float):
    """checkpoint/ from a learner snapshot and the actor's books (and curve.json, in step with it), as a function
    that writes it: what it needs of the actor is taken now, so another thread can do the writing (`Saver`)."""
    learner = actor.learner
    net = copy.deepcopy(learner.net)  # its structure; the snapshot's weights go in
    net.load_state_dict(snap["net"])
    # save_checkpoint only asks an optimizer for its state_dict(): the snapshot's, taken with these weights
    opt = None if snap["opt"] is None else SimpleNamespace(state_dict=lambda: snap["opt"])
    arrays, scalars = snap.get("state", ({}, {}))
    books = {
        "steps": actor.steps, "games": actor.games.tolist(), "minutes": minutes,
        "best": actor.best if math.isfinite(actor.best) else None, "best_metrics": dict(actor.best_metrics),
        "from_checkpoint": actor.from_checkpoint, "grad_steps": actor.grad_steps_before + snap["grad_steps"],
        "learner": scalars,
    }
    run_dir, key, episodes, cfg = actor.run_dir, actor.score_key, list(actor.episodes), actor.ck_cfg

    def write() -> None:
        write_curve(run_dir, key, episodes)
        save_checkpoint(run_dir / "checkpoint", net, cfg, metrics, optimizer=opt, resume=books,
                        arrays={"learner": arrays})

    return write


class Saver:
    """Writes checkpoint/ in a thread of its own: a Q learner's replay is tens to hundreds of MB, and a live actor
    that waited on the disk would miss its frames. One write at a time: `save` waits for the one before (written
    every few minutes, each takes a second or two), `close` for the last; a failed write raises there."""

    def __init__(self):
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _run(self, job) -> None:
        try:
            job()
        except BaseException as e:  # re-raised in the actor's thread by `close` or the next `save`
            self.error = e

    def save(self, job, wait: bool = False) -> None:
        self.close()
        if wait:
            job()
            return
        self.thread = threading.Thread(target=self._run, args=(job,), name="hakisa-checkpoint")
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            e, self.error = self.error, None
            raise RuntimeError(f"writing checkpoint/ failed: {type(e).__name__}: {e}") from e


def books(run_dir: Path) -> dict:
    """The actor's books in run_dir/checkpoint (a live run's), or a one-line CheckpointError."""
    ck = Path(run_dir) / "checkpoint" / "config.json"
    if not ck.exists():
        raise CheckpointError(f"{run_dir}: no checkpoint/ to resume from (a live run saves one every --save-minutes)")
    doc = json.loads(ck.read_text())
    if "resume" not in doc or "games" not in doc["resume"]:
        raise CheckpointError(f"{ck.parent}: this checkpoint keeps no live run's books to resume (written before "
                              "resumable live runs, or by another kind of run)")
    return doc["resume"]


def restore(actor, b: dict) -> None:
    """The actor's books from `books`; the episodes from curve.json; the learner's replay (and the rest of its
    `state`) from learner.safetensors, when the checkpoint keeps one that fits."""
    import numpy as np

    actor.steps = int(b["steps"])
    actor.games = np.asarray(b["games"], np.int64)
    actor.judging = actor._judged(actor.games)
    actor.best = -np.inf if b.get("best") is None else float(b["best"])
    actor.best_metrics = dict(b.get("best_metrics") or {})
    actor.grad_steps_before = int(b.get("grad_steps", 0))
    actor.spent = 60.0 * float(b["minutes"])
    path = actor.run_dir / "curve.json"
    actor.episodes = json.loads(path.read_text())["episodes"] if path.exists() else []
    state = actor.run_dir / "checkpoint" / "learner.safetensors"
    if not state.exists():
        return
    from safetensors.numpy import load_file

    try:
        kept = actor.learner.restore(load_file(str(state)), b.get("learner") or {}, actor.steps,
                                     actor.grad_steps_before)
    except (ValueError, KeyError, RuntimeError) as e:  # another --windows or buffer size: refill, and say why
        print(f"resume: the replay is not restored ({str(e).splitlines()[0]}); the learner fills it again", flush=True)
        return
    if kept:
        actor.grad_steps_before = 0  # the learner's own counters go on from the run's
        print(f"resume: the learner's replay is back ({len(getattr(actor.learner, 'rb', ()))} transitions)", flush=True)
