"""Where a sweep lives and how it resumes: the Optuna storage and study, who owns a RUNNING trial and
whether they are still there (reap_stale), the ask lock, the heartbeat, and the trial counts."""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

from hakisa.sweep.config import SweepConfig

HEARTBEAT_S = 30.0  # a running trial writes a heartbeat this often ...
STALE_S = 300.0  # ... and one on another host that has been silent this long is taken for dead


def _storage(cfg: SweepConfig):
    import optuna

    if "://" in cfg.storage:  # sqlite:///x.db, postgresql://...: Optuna opens it
        return cfg.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(cfg.storage).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return JournalStorage(JournalFileBackend(cfg.storage))


def open_study(cfg: SweepConfig, worker: int, create: bool = False):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(cfg)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3),
              "halving": optuna.pruners.SuccessiveHalvingPruner, "none": optuna.pruners.NopPruner}[cfg.pruner]()
    # each worker, and each resumed run, seeds its sampler differently: with one seed, parallel workers (or
    # a resumed run's first random trials) would propose exactly the parameters already being tried
    n_before = 0
    if not create:
        n_before = len(optuna.load_study(study_name=cfg.name, storage=storage).trials)
    sampler = optuna.samplers.TPESampler(seed=(cfg.seed * 1_000_003 + worker * 7919 + n_before) % 2**31,
                                         multivariate=True, n_startup_trials=max(3, cfg.trials // 4))
    if create:
        return optuna.create_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner,
                                   direction="maximize", load_if_exists=True)
    return optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)


# ---- liveness: who owns a RUNNING trial, and are they still there -------------------------------
def _proc(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc (Linux), or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "")
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return fields[0], fields[19]


def owner_info() -> dict:
    pid = os.getpid()
    info = _proc(pid)
    return {"host": socket.gethostname(), "pid": pid, "start": info[1] if info else ""}


def _owner_gone(trial) -> str | None:
    """Why a RUNNING trial's worker is gone, or None while it may still be working on it."""
    owner = trial.user_attrs.get("owner")
    now = time.time()
    if owner is None:  # asked for but not yet claimed: only a crash in that instant leaves one like this
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return "no worker ever claimed it" if now - started > STALE_S else None
    if owner["host"] == socket.gethostname():
        if Path("/proc").is_dir():
            info = _proc(owner["pid"])
            if info is None or info[0] in ("Z", "X") or (owner["start"] and info[1] != owner["start"]):
                return f"its worker (pid {owner['pid']}) is gone"
            return None
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return f"its worker (pid {owner['pid']}) is gone"
        except PermissionError:
            pass
        return None
    beat = trial.user_attrs.get("heartbeat", 0.0)
    if now - beat > STALE_S:
        return f"its worker on {owner['host']} has been silent for {now - beat:.0f} s"
    return None


def reap_stale(study) -> list[int]:
    """Mark RUNNING trials whose worker is gone as FAIL (saying why) and queue their parameters again.
    Returns the numbers of the trials retried. Two reapers racing: the storage refuses the second FAIL."""
    import optuna
    from optuna.trial import TrialState

    retried = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = _owner_gone(t)
        if why is None:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "failed_because", why)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first and retried it
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        retried.append(t.number)
    return retried


@contextlib.contextmanager
def ask_lock(cfg: SweepConfig):
    """Workers on this machine take turns to count and ask, so parallel jobs never start more trials than
    --trials (workers on other machines of a Ray cluster can overshoot by a trial: they share no lock)."""
    cfg.dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the same small overshoot as across machines
        yield
        return
    with open(cfg.dir / ".ask.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Heartbeat:
    """Writes the trial's `heartbeat` attr every HEARTBEAT_S, so another host can tell it is alive."""

    def __init__(self, study, trial):
        self.study, self.trial, self.stop_ev = study, trial, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a trial finishing meanwhile: nothing to keep alive
                self.study._storage.set_trial_user_attr(self.trial._trial_id, "heartbeat", time.time())

    def stop(self):
        self.stop_ev.set()
        self.thread.join()


def counts(study) -> dict:
    from optuna.trial import TrialState

    c = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    key = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    for t in study.get_trials(deepcopy=False):
        c[key[t.state]] += 1
    c["finished"] = c["complete"] + c["pruned"]
    c["retried"] = sum(1 for t in study.get_trials(deepcopy=False) if "retry_of" in t.user_attrs)
    return c
