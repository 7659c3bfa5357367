"""Can two processes on the 2 cores run a PPO update's work faster than one process on 2 threads?

    python benchmarks/investigations/update_schedules.py --schedule split [--bf16]
    python benchmarks/investigations/update_schedules.py --schedule data-parallel [--bf16]

The work is one update of `hakisa duel bench-train` (160x90 frames, 16 duel envs, 128 steps, 4 epochs x 4
minibatches of 512, the small encoder), timed three times after a warm-up:
  * serial: collect (128 x (env step + forward pass)) then the update's 16 forward+backward+Adam
    minibatches, in one process at 2 threads: what our PPO and SB3 both do;
  * split: the collect in one process and the update in another, 1 thread each, at once (an
    overlapped PPO with a one-update policy lag, at its best: no weights or rollouts moved);
  * data-parallel: two processes at 1 thread, each collecting from half the envs (8) and doing the
    update on half of every minibatch (256), at once (CleanRL's multi-GPU PPO on two CPU cores, at its
    best: no gradient all-reduce).
Every process keeps freed memory as `hakisa`'s learners do (`keep_freed_memory`, since 2026-12-03).
Prints the JSON on its last line: each schedule's seconds per update and its speed-up over serial.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np
import torch


def setup(bf16: bool, batch: int, n: int = 16):
    from hakisa.envs.make import make_vec
    from hakisa.model import HakisaNet

    envs = make_vec("Hakisa/Duel-v0", n, seed=0)
    envs.reset(seed=0)
    acts = [np.stack([envs.single_action_space.sample() for _ in range(n)]) for _ in range(9)]
    frames = [np.asarray(envs.step(a)[0]).copy() for a in acts]
    net = HakisaNet(envs.obs_spec, envs.input_map, "small", 256)
    net.bf16 = bf16
    return envs, acts, net, torch.from_numpy(np.concatenate(frames * (batch // (9 * n) + 1))[:batch])


def collect(envs, acts, net) -> None:
    x = torch.from_numpy(np.asarray(envs.step(acts[0])[0]))
    for t in range(128):
        with torch.inference_mode():
            net.policy(x)
        x = torch.from_numpy(np.asarray(envs.step(acts[t % len(acts)])[0]))


def update(net, batch) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=2.5e-4, eps=1e-5)
    for _ in range(16):
        loss = sum(o.float().sum() for o in net.policy(batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def timed(fn, reps: int = 3, warm_up: bool = True) -> float:
    if warm_up:
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def worker(job: str, bf16: bool, q, ready, go) -> None:
    from hakisa.algos.common import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(1)
    envs, acts, net, batch = setup(bf16, 256, 8) if job == "half" else setup(bf16, 512)
    fn = {"collect": lambda: collect(envs, acts, net), "update": lambda: update(net, batch),
          "half": lambda: (collect(envs, acts, net), update(net, batch))}[job]
    fn()  # warm-up before the start line, so both start their timed work together
    ready.put(job)
    go.wait()
    q.put((job, timed(fn, warm_up=False)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schedule", choices=["split", "data-parallel"], required=True)
    p.add_argument("--bf16", action="store_true", help="the encoder in bf16 autocast (the duel's default here)")
    a = p.parse_args()
    from hakisa.algos.common import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(2)
    envs, acts, net, batch = setup(a.bf16, 512)
    serial = timed(lambda: (collect(envs, acts, net), update(net, batch)))
    jobs = ["collect", "update"] if a.schedule == "split" else ["half", "half"]
    ctx = mp.get_context("spawn")
    q, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=worker, args=(j, a.bf16, q, ready, go)) for j in jobs]
    for pr in procs:
        pr.start()
    for _ in procs:
        ready.get(timeout=300)
    go.set()
    res = [q.get(timeout=600) for _ in procs]
    for pr in procs:
        pr.join()
    parallel = max(t for _, t in res)
    print(json.dumps({"schedule": a.schedule, "bf16": a.bf16, "serial_2threads_s": round(serial, 3),
                      "processes_1thread_s": {f"{j}{i}": round(t, 3) for i, (j, t) in enumerate(res)},
                      "parallel_s": round(parallel, 3), "speedup": round(serial / parallel, 2),
                      "loadavg": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
