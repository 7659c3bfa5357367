"""Does PPO's update get faster when a minibatch of frames is gathered as channels-last rows?

    python benchmarks/investigations/minibatch_gather.py

One real 16-env x 128-step duel rollout (160x90 frames); PPO's update_policy on it at the bench's
settings (4 epochs x 4 minibatches of 512, 2 threads), fp32 and bf16, alternating between the old
gather (`b_obs[mb]`, then the encoder's own layout change) and `ppo.minibatch_frames`, `--rounds`
times each. Prints ms per update for both; the JSON is the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

import hakisa.algos.ppo as ppo
from hakisa.envs.make import make_vec
from hakisa.games.duel.bench_train import PPO_SETTINGS
from hakisa.model import HakisaNet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(2)
    envs = make_vec("Hakisa/Duel-v0", 16, seed=0)
    args = ppo.Args(progress=False, threads=2, **PPO_SETTINGS)
    new = ppo.minibatch_frames
    old = lambda b_obs: (lambda mb: b_obs[mb])  # noqa: E731 (what update_policy did before)
    out = {"loadavg_start": round(os.getloadavg()[0], 2)}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        net = HakisaNet(envs.obs_spec, envs.input_map, "small", 256)
        net.bf16 = bf16
        roll = ppo.Rollout(envs, args)
        roll.collect(net)
        adv, ret = ppo.gae(roll.rew, roll.val, roll.done, roll.next_value(net), roll.next_done, 0.99, 0.95)
        batch = (roll.obs.flatten(0, 1), roll.act.reshape(-1, 3), roll.logp.reshape(-1), adv.reshape(-1),
                 ret.reshape(-1), roll.val.reshape(-1))
        opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        times = {"old": [], "new": []}
        for r in range(a.rounds + 1):  # round 0 warms up both
            for way, fn in (("old", old), ("new", new)) if r % 2 else (("new", new), ("old", old)):
                ppo.minibatch_frames = fn
                t = time.perf_counter()
                ppo.update_policy(net, opt, args, *batch, len(batch[1]) // args.num_minibatches)
                if r:
                    times[way].append(round((time.perf_counter() - t) * 1e3))
        ppo.minibatch_frames = new
        out[name] = {**times, "speedup_of_medians": round(sorted(times["old"])[len(times["old"]) // 2]
                                                           / sorted(times["new"])[len(times["new"]) // 2], 2)}
        print(name, out[name], flush=True)
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
