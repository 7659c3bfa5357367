"""What a live run keeps on disk to go on after a crash or `kill -9`: `hakisa train ... --resume`.

checkpoint/ is written from the learner's snapshot (its weights and its optimizer's state, taken together between
two updates: `Learner.serve_snapshot`) plus the actor's books in config.json's `resume`: env steps, games per
window, minutes played, the best judged score and what it was measured at, whether the run started from a
checkpoint (the exploration schedule and srdqn's resets depend on it). curve.json beside it keeps every game so
far, so a resumed run's curve is one curve, and TensorBoard purges the killed run's events after the checkpoint.

Not kept: the replay (hundreds of MB of frames: a resumed Q learner refills it, waiting `learning_starts` steps
again) and a PPO batch in progress. Both are minutes of play at most; the resumed run says so in one line.
"""
from __future__ import annotations

import copy
import json
import math
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


def write_checkpoint(actor, snap: dict, metrics: dict, minutes: float) -> None:
    """checkpoint/ from a learner snapshot and the actor's books (and curve.json, in step with it)."""
    learner = actor.learner
    net = copy.deepcopy(learner.net)  # its structure; the snapshot's weights go in
    net.load_state_dict(snap["net"])
    # save_checkpoint only asks an optimizer for its state_dict(): the snapshot's, taken with these weights
    opt = None if snap["opt"] is None else SimpleNamespace(state_dict=lambda: snap["opt"])
    books = {
        "steps": actor.steps, "games": actor.games.tolist(), "minutes": minutes,
        "best": actor.best if math.isfinite(actor.best) else None, "best_metrics": actor.best_metrics,
        "from_checkpoint": actor.from_checkpoint, "grad_steps": actor.grad_steps_before + snap["grad_steps"],
    }
    write_curve(actor.run_dir, actor.score_key, actor.episodes)
    save_checkpoint(actor.run_dir / "checkpoint", net, actor.ck_cfg, metrics, optimizer=opt, resume=books)


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
    """The actor's books from `books`; the episodes from curve.json."""
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
