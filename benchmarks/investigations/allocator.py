"""How much faster is our PPO when glibc keeps freed memory for the next tensors (`keep_freed_memory`)?

    python benchmarks/investigations/allocator.py --rounds 3

`ppo.train` at `hakisa duel bench-train`'s settings (16 duel envs, 160x90, 4 updates of 2048 steps, 2 threads),
fp32 and bf16, with the setting (what every hakisa learner does since setup_torch makes it) and without it
(glibc's default for tensors above 32 MB: a fresh mmap each, page-faulted in), each run in a new process
after a one-update warm-up there, alternating, `--rounds` times each. Prints env steps/s; the JSON is the
last line.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

import hakisa.algos.common as common
import hakisa.algos.ppo as ppo
from hakisa.envs.make import make_vec
from hakisa.games.duel.bench_train import PPO_SETTINGS

N, UPDATES = 16, 4


def sps(bf16: bool, keep: bool) -> float:
    """In a new process: glibc as a fresh process has it, unless `keep`."""
    if not keep:  # setup_torch (inside ppo.train) would switch it on
        common.keep_freed_memory = lambda: False
    run = lambda steps: ppo.train(  # noqa: E731
        make_vec("Hakisa/Duel-v0", N, seed=0),
        ppo.Args(total_steps=steps, progress=False, threads=2, bf16=bf16, **PPO_SETTINGS), None)
    run(N * PPO_SETTINGS["num_steps"])  # warm-up: oneDNN's kernels
    steps = N * PPO_SETTINGS["num_steps"] * UPDATES
    t = time.perf_counter()
    run(steps)
    return round(steps / (time.perf_counter() - t), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    out: dict = {"loadavg_start": round(os.getloadavg()[0], 2)}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        runs = {"keep": [], "default": []}
        for r in range(a.rounds):
            for way in ("keep", "default") if r % 2 else ("default", "keep"):
                pool = multiprocessing.get_context("spawn").Pool(1)
                runs[way].append(pool.apply(sps, (bf16, way == "keep")))
                pool.close()
                pool.join()
        med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
        out[name] = {**runs, "speedup_of_medians": round(med["keep"] / med["default"], 2)}
        print(name, out[name], flush=True)
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
