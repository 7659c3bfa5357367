"""Where our PPO's time goes, against `hakisa duel bench-train`'s floor, in one process.

    python benchmarks/investigations/ppo_vs_floor.py

Runs our PPO for 4 updates at the bench's settings (160x90, 16 duel envs, 2 torch threads), fp32 then
bf16, after a warm-up update, timing its collect (env steps included), its update and GAE; then times
the bench's floor parts right after. Prints per update, in ms: ours by phase, and the floor's env steps,
forward passes and update minibatches. The JSON is the last line.
"""
from __future__ import annotations

import json
import os
import time

import torch

import hakisa.algos.ppo as ppo
from hakisa.algos.common import setup_torch
from hakisa.envs.make import make_vec
from hakisa.games.duel.bench_train import PPO_SETTINGS, floor_parts

UPDATES, N = 4, 16


def timed_ppo(bf16: bool) -> dict:
    """ms per update of our PPO's collect, update and GAE, and in all (ppo.train from start to end)."""
    spent = {"collect": 0.0, "env_step": 0.0, "update": 0.0, "gae": 0.0}

    def wrap(name, f):
        def g(*a, **k):
            t = time.perf_counter()
            out = f(*a, **k)
            spent[name] += time.perf_counter() - t
            return out
        return g

    saved = ppo.Rollout.collect, ppo.update_policy, ppo.gae
    ppo.Rollout.collect, ppo.update_policy, ppo.gae = wrap("collect", saved[0]), wrap("update", saved[1]), wrap(
        "gae", saved[2])
    try:
        envs = make_vec("Hakisa/Duel-v0", N, seed=0)
        envs.step = wrap("env_step", envs.step)
        args = ppo.Args(total_steps=N * 128 * UPDATES, seed=0, progress=False, bf16=bf16, threads=2, **PPO_SETTINGS)
        t = time.perf_counter()
        ppo.train(envs, args, None)
        total = time.perf_counter() - t
        envs.close()
    finally:
        ppo.Rollout.collect, ppo.update_policy, ppo.gae = saved
    return {**{k: round(v / UPDATES * 1e3) for k, v in spent.items()}, "all": round(total / UPDATES * 1e3)}


def main() -> None:
    setup_torch(2)
    for bf16 in (False, True):  # warm-up: imports and oneDNN's kernels for both precisions
        ppo.train(make_vec("Hakisa/Duel-v0", N, seed=0),
                  ppo.Args(total_steps=N * 128, progress=False, threads=2, bf16=bf16, **PPO_SETTINGS), None)
    out = {"loadavg_start": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads()}
    s = PPO_SETTINGS
    for name, bf16 in (("fp32", False), ("bf16", True)):
        ours = timed_ppo(bf16)
        p = floor_parts(N, 0, None, bf16)
        fl = {"env_steps": round(s["num_steps"] * p["env_step_ms"]), "forward_passes": round(
            s["num_steps"] * p["infer_ms_2t"]), "update_minibatches": round(
            s["update_epochs"] * s["num_minibatches"] * p["train_minibatch_ms_2t"])}
        out[name] = {"ours_ms_per_update": ours, "floor_ms_per_update": fl}
        print(name, "ours", ours, "floor", fl, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
