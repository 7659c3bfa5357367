"""How much faster is our PPO when glibc keeps freed memory for the next tensors (`keep_freed_memory`)?

    python benchmarks/investigations/allocator.py --rounds 3

`ppo.train` at `hakisa bench train`'s settings (16 duel envs, 160x90, 4 updates of 2048 steps, 2 threads),
fp32 and bf16, with the setting on (what every hakisa learner does since setup_torch makes it) and off
(glibc's default behaviour for tensors above 32 MB: a fresh mmap each, page-faulted in), alternating,
`--rounds` times each after a warm-up. Prints env steps/s; the JSON is the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import hakisa.algos.ppo as ppo
from hakisa.algos.common import keep_freed_memory, setup_torch
from hakisa.bench.train import PPO_SETTINGS
from hakisa.envs.make import make_vec

N, UPDATES = 16, 4


def sps(bf16: bool, keep: bool) -> float:
    # ppo.train calls setup_torch, which turns the setting on: switch it as asked right after
    ppo.setup_torch = lambda *a, **k: (setup_torch(*a, **k), keep_freed_memory(keep))
    try:
        envs = make_vec("Hakisa/Duel-v0", N, seed=0)
        steps = N * PPO_SETTINGS["num_steps"] * UPDATES
        t = time.perf_counter()
        ppo.train(envs, ppo.Args(total_steps=steps, progress=False, threads=2, bf16=bf16, **PPO_SETTINGS), None)
        envs.close()
        return round(steps / (time.perf_counter() - t), 1)
    finally:
        ppo.setup_torch = setup_torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    out: dict = {"loadavg_start": round(os.getloadavg()[0], 2)}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        runs = {"keep": [], "default": []}
        for r in range(a.rounds + 1):  # round 0 warms up both
            for way in ("keep", "default") if r % 2 else ("default", "keep"):
                v = sps(bf16, way == "keep")
                if r:
                    runs[way].append(v)
        med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
        out[name] = {**runs, "speedup_of_medians": round(med["keep"] / med["default"], 2)}
        print(name, out[name], flush=True)
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
