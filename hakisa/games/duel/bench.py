"""`hakisa duel bench`: how fast the duel runs headless. The last line printed is one JSON object.

  sim_ticks_per_s   60 Hz rule ticks per second, all fights of one DuelSim together, no pixels
  env_steps_per_s   DuelVecEnv decisions per second (frame_skip ticks each, pixel observations
                    [4, 90, 160] ready for a model, SAME_STEP autoreset included), default copy=True
                    (a fresh obs array per step); env_steps_per_s_copy_false reuses two buffers
Also the per-frame cost of each stage, so a regression points at its cause, and the rates per second of
process CPU time (*_per_cpu_s): on a shared box, wall-clock rates mostly measure the neighbours.
Target: env_steps_per_s >= 20,000
on the 2-core dev box. Also runnable as `python -m hakisa.games.duel.bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from hakisa.games.duel.env import DuelVecEnv
from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim

TARGET_ENV_STEPS_PER_S = 20_000


def _time_sim(n: int, decisions: int, frame_skip: int, tier: str, seed: int) -> tuple[float, float]:
    sim = DuelSim(n, tier=tier, seed=seed)
    keys = COMMAND_KEYS[np.random.default_rng(seed).integers(0, 8, (decisions, n))]
    t, c = time.perf_counter(), time.process_time()
    for k in keys:
        for _ in range(frame_skip):
            sim.step(k)
        if sim.done.any():
            sim.reset(mask=sim.done)
    ticks = decisions * frame_skip * n
    return ticks / (time.perf_counter() - t), ticks / max(time.process_time() - c, 1e-9)


def _time_env(n: int, steps: int, tier: str, seed: int, copy: bool = True) -> tuple[float, float, dict]:
    env = DuelVecEnv(n, tier=tier, seed=seed, copy=copy)
    env.reset(seed=seed)
    acts = np.random.default_rng(seed).integers(0, 8, (steps + 20, n, 1)) * np.array([1, 0, 0])
    for a in acts[:20]:  # warm-up: caches, allocator
        env.step(a)
    ends = 0
    t, c = time.perf_counter(), time.process_time()
    for a in acts[20:]:
        _, _, term, _, _ = env.step(a)
        ends += int(term.sum())
    dt, dc = time.perf_counter() - t, max(time.process_time() - c, 1e-9)
    # where the time goes, per frame (one fight, one decision)
    f = env.fights
    rects = f.sim.draw_rects()
    out = np.empty((n, *f.spec.frame_shape), np.uint8)
    reps = max(1, 2000 // n)
    t0 = time.perf_counter()
    for _ in range(reps):
        rects = f.sim.draw_rects()
    t1 = time.perf_counter()
    for _ in range(reps):
        f.renderer.render(rects, out=out)
    t2 = time.perf_counter()
    us = lambda a, b: round((b - a) / (reps * n) * 1e6, 3)  # noqa: E731
    return (
        steps * n / dt,
        steps * n / dc,
        {"draw_rects_us_per_frame": us(t0, t1), "render_us_per_frame": us(t1, t2), "episodes_ended": ends},
    )


def run(args: argparse.Namespace) -> int:
    """The `hakisa duel bench` entry point: prints the result (JSON last) and returns 0."""
    measure(args)
    return 0


def measure(args: argparse.Namespace) -> dict:
    n = getattr(args, "num_envs", None) or 256
    steps = getattr(args, "steps", None) or 300
    tier, seed = getattr(args, "tier", "normal"), getattr(args, "seed", 0)
    sim_tps, sim_tps_cpu = _time_sim(n, steps, 4, tier, seed)
    env_sps, env_sps_cpu, parts = _time_env(n, steps, tier, seed)
    env_sps_nocopy, _, _ = _time_env(n, steps, tier, seed, copy=False)
    result = {
        "bench": "duel",
        "n_envs": n,
        "steps": steps,
        "frame_skip": 4,
        "tier": tier,
        "obs_shape": [4, 90, 160],
        "sim_ticks_per_s": round(sim_tps),
        "env_steps_per_s": round(env_sps),
        "env_steps_per_s_copy_false": round(env_sps_nocopy),
        # per second of this process's CPU time: what one free core gives when the box is shared
        "sim_ticks_per_cpu_s": round(sim_tps_cpu),
        "env_steps_per_cpu_s": round(env_sps_cpu),
        "sim_us_per_env_step": round(4 / sim_tps * 1e6, 3),
        **parts,
        "target_env_steps_per_s": TARGET_ENV_STEPS_PER_S,
        "meets_target": env_sps >= TARGET_ENV_STEPS_PER_S,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    if not getattr(args, "json_only", False):
        print(
            f"duel sim: {sim_tps:,.0f} ticks/s; vector env: {env_sps:,.0f} steps/s with pixel obs "
            f"({n} envs; target {TARGET_ENV_STEPS_PER_S:,})"
        )
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--tier", default="normal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-only", action="store_true")
    raise SystemExit(run(p.parse_args()))
