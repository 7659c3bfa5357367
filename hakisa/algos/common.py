"""The few things every learner repeats: threads, seeding, run dirs, episode bookkeeping."""
from __future__ import annotations

import ctypes
import json
import os
import random
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np
import psutil
import torch


def native_bf16() -> bool:
    """True when this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX, through oneDNN)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual torch build: stay in float32
        return False


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Let freed tensors' memory serve the next ones instead of going back to the OS (glibc only; elsewhere
    a no-op that returns False). PyTorch on CPU has no caching allocator: every tensor is a malloc, and glibc
    serves each one above 32 MB with a fresh mmap and unmaps it on free, so each minibatch's frames,
    activations and gradients page-fault in anew. Measured on this 2-core VM: PPO at the train bench's
    settings 1.20x faster in float32, 1.31x in bf16 (benchmarks/allocator.json); a 512-frame uint8 -> float32
    copy 55 -> 12 ms. The gain is the machine's page-fault cost. The price: the process keeps its peak heap
    (a 40-update PPO run stays flat at 798 MB, against 560 MB), as PyTorch's CUDA allocator keeps its."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1


def busy_cores_elsewhere(interval: float = 0.2) -> float:
    """How many cores other processes keep busy right now: the machine's busy CPU time over `interval`
    seconds minus this process's own (steal counts as busy: a core the hypervisor lends elsewhere is not
    ours either). Not the load average: that is a one-minute moving average, so for a minute after any job
    ends (a previous run, the pip install before a demo, a learner's own first stage) it still reads ~2 on an
    idle 2-core box."""
    def busy(t) -> float:
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    me = psutil.Process()
    t0, m0 = psutil.cpu_times(), me.cpu_times()
    time.sleep(interval)
    t1, m1 = psutil.cpu_times(), me.cpu_times()
    own = (m1.user + m1.system) - (m0.user + m0.system)
    return max(0.0, busy(t1) - busy(t0) - own) / interval


def setup_torch(threads: int = 0, seed: int | None = None) -> None:
    """threads=0: one per core up to 2, but 1 when other processes already keep the cores busy: OpenMP
    threads that spin-wait for a core another process holds make every op slower, not faster (measured
    here: under load 8 on 2 cores a 2-thread forward pass took 5x longer than a 1-thread one). "Busy" is
    measured now (busy_cores_elsewhere), not read from the load average: choosing by the load average, a
    bf16 PPO started within a minute of another job ran at 1 thread, its update 1.7x slower.
    Also keeps freed memory for the next tensors (keep_freed_memory)."""
    keep_freed_memory()
    if not threads:
        cpus = os.cpu_count() or 1
        threads = max(1, min(2, cpus))
        if threads > 1 and busy_cores_elsewhere() > cpus - 0.5:
            threads = 1
    torch.set_num_threads(threads)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


def start_run(run_dir: str | os.PathLike | None, args, extra: dict | None = None, purge_step: int | None = None):
    """Create runs/<name>/, write config.json, return a TensorBoard SummaryWriter (or None). purge_step (a
    resumed run): TensorBoard hides the earlier events at or after this step, so the curve reads as one run."""
    if run_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"args": asdict(args) if is_dataclass(args) else dict(args), **(extra or {})}
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    return SummaryWriter(str(run_dir), purge_step=purge_step)


class EpisodeStats:
    """Per-env running return/length; `update` returns the episodes that just finished.

    Works with SAME_STEP autoreset: the step that ends an episode carries its last reward, and its
    info (read with the `_key` masks, Gymnasium's convention) describes the finished episode. Where the env
    also gives `final_info` (Gymnasium's SyncVectorEnv, a window game's env: its top-level info on that step
    is already the NEXT episode's reset info), the finished episode's winner/score are read from there.
    """

    def __init__(self, n: int):
        self.ret = np.zeros(n, np.float64)
        self.len = np.zeros(n, np.int64)

    def update(self, rewards, terminated, truncated, infos) -> list[dict]:
        self.ret += rewards
        self.len += 1
        done = np.logical_or(terminated, truncated)
        out = []
        if done.any():
            infos = infos if isinstance(infos, dict) else {}
            final = infos.get("final_info") if isinstance(infos.get("final_info"), dict) else {}
            for i in np.flatnonzero(done):
                ep = {"return": float(self.ret[i]), "length": int(self.len[i])}
                src = final if final and np.asarray(infos.get("_final_info", np.ones(len(done), bool)))[i] else infos
                for key in ("winner", "score"):  # won-or-lost games report a winner, score games a score
                    v = _masked(src, key, i, len(done))
                    if v is not None:
                        ep[key] = int(v) if key == "winner" else float(v)
                out.append(ep)
                self.ret[i] = 0.0
                self.len[i] = 0
        return out


def _masked(info: dict, key: str, i: int, n: int):
    """info[key][i] where Gymnasium's mask info["_key"] says env i has it, else None."""
    if key not in info or not np.asarray(info.get(f"_{key}", np.ones(n, bool)))[i]:
        return None
    return info[key][i]


def summarize(episodes: list[dict]) -> dict:
    """episodes, mean_return, mean_length and, where the env reports them, win_rate or mean_score (with
    the half-width of its 95 % normal interval)."""
    if not episodes:
        return {"episodes": 0}
    s = {"episodes": len(episodes),
         "mean_return": float(np.mean([e["return"] for e in episodes])),
         "std_return": float(np.std([e["return"] for e in episodes])),
         "mean_length": float(np.mean([e["length"] for e in episodes]))}
    w = [e["winner"] for e in episodes if "winner" in e]
    if w:
        s["win_rate"] = float(np.mean([x == 1 for x in w]))
    sc = [e["score"] for e in episodes if "score" in e]
    if sc:
        s["mean_score"] = float(np.mean(sc))
        s["score_ci95"] = ci95(sc)
    return s


def ci95(values) -> float:
    """Half-width of the 95 % interval of a mean (normal approximation; 0 for fewer than 2 values)."""
    v = np.asarray(values, np.float64)
    return float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


class RunningMeanStd:
    """Running mean/variance over batches (Chan et al.'s parallel update), as Gymnasium's wrappers keep."""

    def __init__(self, shape: tuple = ()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        b_mean, b_var, b_n = x.mean(0), x.var(0), x.shape[0]
        delta, tot = b_mean - self.mean, self.count + b_n
        self.mean = self.mean + delta * b_n / tot
        m2 = self.var * self.count + b_var * b_n + delta ** 2 * self.count * b_n / tot
        self.var, self.count = m2 / tot, tot


class RewardScaler:
    """Rewards divided by a running std of each env's discounted return (Gymnasium's NormalizeReward), so a value
    head sees O(1) targets whatever the game's reward scale. One for PPO in a simulator (`step`, all envs at
    once) and on live windows (`segment`, one window's steps at a time)."""

    def __init__(self, n: int, gamma: float):
        self.gamma, self.acc, self.rms = gamma, np.zeros(n), RunningMeanStd()

    def step(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """One step of every env: reward [n], done [n] (the step ended its episode) -> scaled rewards."""
        self.acc = self.acc * self.gamma + reward
        self.rms.update(self.acc)
        self.acc[done] = 0.0
        return (reward / np.sqrt(self.rms.var + 1e-8)).astype(np.float32)

    def segment(self, i: int, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """T steps of env i at once: one statistics update for the segment, not one per step."""
        rets = np.empty(len(reward))
        for t in range(len(reward)):
            self.acc[i] = self.acc[i] * self.gamma + reward[t]
            rets[t] = self.acc[i]
            if done[t]:
                self.acc[i] = 0.0
        self.rms.update(rets)
        return (reward / np.sqrt(self.rms.var + 1e-8)).astype(np.float32)
