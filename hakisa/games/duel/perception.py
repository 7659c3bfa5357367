"""`hakisa duel perception`: teach an encoder to SEE the duel before anyone studies a teacher.

    hakisa duel perception --out runs/duel-perception            # ~6 min on 2 cores
    hakisa study datasets/me --init runs/duel-perception --eval-episodes 200

Behaviour cloning from pixels on a few dozen fights fails for a reason that has nothing to do with
the teacher: the net has to learn where the knight and the boss are, how long the telegraph bar is and
how much stamina is left from ~10k labelled frames, and the expert's decisions hinge on exactly those
numbers (a roll a few ticks early is a hit taken). The simulator renders the same pixels as the page
and knows the true state, so it can label as many frames as we like with WHAT IS ON SCREEN. Never with
what to do: the targets below are positions, timers, HP, stamina and action phases, so everything the
studied agent does still comes from the teacher's demonstrations.

The frames come from noisy experts and a few random fighters (per-fight noise 0..60 %, 1/8 purely
random), over all three tiers, so the encoder also sees the states a half-trained clone drifts into.
The result is a normal Hakisa checkpoint (the heads are untrained): `hakisa study --init` copies its
encoder and trunk. Measured in the sim with the expert as teacher (18 / 60 fights, 200 argmax fights):
see benchmarks/teacher_study_bench.py and the README.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from hakisa.games.duel.env import state_targets
from hakisa.games.duel.sim import COMMAND_KEYS, load_rules

TIERS = ("easy", "normal", "hard")


@dataclass
class PerceptionArgs:
    """The options of `hakisa duel perception` (an encoder trained to read the duel's state off its pixels): one
    flag per field, and each field's docstring below, where it has one, is its flag's help. `train_perception`
    takes one; the run's config.json keeps it under "args"."""

    out: str = "runs/duel-perception"
    """run directory: config.json, TensorBoard, checkpoint/"""
    obs: str = "80x45"
    """frame size; must match the datasets it will be used with"""
    encoder: str = "small"
    """as in hakisa study"""
    hidden: int = 256
    """trunk width, as in hakisa study"""
    frames: int = 300_000
    """labelled training frames, held in RAM as uint8 stacks (300k at 80x45: 4.3 GB)"""
    val_frames: int = 8_000
    """held-out frames from other seeds"""
    epochs: int = 15
    """passes over the frames (linear LR decay to 0)"""
    lr: float = 1e-3
    batch_size: int = 256
    num_envs: int = 32
    """fights rendered side by side while collecting"""
    seed: int = 0
    threads: int = 0
    """torch threads (0: up to 2)"""
    progress: bool = True


def collect(frames: int, seed: int, obs_spec, num_envs: int, progress: bool = False):
    """(uint8 obs [N, C, H, W], float32 targets [N, D], names) from noisy experts in the sim."""
    from tqdm import tqdm

    from hakisa.games.duel.env import DuelVecEnv
    from hakisa.games.duel.expert import expert_keys

    rules = load_rules()
    n = num_envs
    env = DuelVecEnv(n, tier=[TIERS[i % 3] for i in range(n)], seed=seed, obs_spec=obs_spec, frame_skip=4)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    eps = rng.uniform(0.0, 0.6, n)
    eps[: max(1, n // 8)] = 1.0
    lut = np.zeros(256, np.int64)
    lut[np.asarray(COMMAND_KEYS, np.int64)] = np.arange(len(COMMAND_KEYS))
    steps = -(-frames // n)
    O = np.empty((steps * n, *obs.shape[1:]), np.uint8)
    T, names = None, []
    for t in tqdm(range(steps), desc="perception: render", disable=not progress, leave=False):
        s = env.fights.sim.state
        y, names = state_targets(s, rules)
        if T is None:
            T = np.empty((steps * n, y.shape[1]), np.float32)
        O[t * n:(t + 1) * n], T[t * n:(t + 1) * n] = obs, y
        cmd = lut[expert_keys(s, rules, period=4)]  # keys the map lacks (none today) would read as noop
        rnd = rng.random(n) < eps
        cmd[rnd] = rng.integers(0, len(COMMAND_KEYS), int(rnd.sum()))
        obs, *_ = env.step(np.stack([cmd, np.zeros(n, np.int64), np.zeros(n, np.int64)], 1))
    env.close()
    return O[:frames], T[:frames], names


def train_perception(args: PerceptionArgs) -> dict:
    from tqdm import trange

    from hakisa.algos.common import setup_torch, start_run
    from hakisa.games.duel.env import DuelEnv
    from hakisa.model import HakisaNet, save_checkpoint
    from hakisa.recipe import parse_obs

    setup_torch(args.threads, args.seed)
    spec = parse_obs(args.obs)
    t0 = time.time()
    O, T, names = collect(args.frames, args.seed, spec, args.num_envs, args.progress)
    Ov, Tv, _ = collect(args.val_frames, args.seed + 10_007, spec, args.num_envs)
    t_collect = time.time() - t0
    mu, sd = T.mean(0), T.std(0) + 1e-2  # z-scored targets: each counts alike, constant ones do not blow up
    Tn, Tvn = torch.from_numpy((T - mu) / sd), torch.from_numpy((Tv - mu) / sd)
    Ot, Ovt = torch.from_numpy(O), torch.from_numpy(Ov)
    env = DuelEnv(obs_spec=spec)
    net = HakisaNet(env.obs_spec, env.input_map, encoder=args.encoder, hidden=args.hidden)
    head = nn.Linear(args.hidden, T.shape[1])  # a LINEAR read-out: the trunk itself has to carry the state
    params = [*net.encoder.parameters(), *net.trunk.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / args.epochs)
    tb = start_run(args.out, args, {"targets": names})
    config = {"algo": "duel-perception", "args": asdict(args), "targets": names,
              "target_mean": mu.tolist(), "target_std": sd.tolist()}

    def val_mse() -> np.ndarray:
        with torch.no_grad():
            return torch.cat([(head(net.features(Ovt[i:i + 1024])) - Tvn[i:i + 1024]) ** 2
                              for i in range(0, len(Ovt), 1024)]).mean(0).numpy()

    first = val_mse()
    step = 0
    for ep in trange(args.epochs, desc="perception: train", disable=not args.progress):
        perm = torch.randperm(len(Ot))
        for i in range(0, len(Ot) - args.batch_size + 1, args.batch_size):
            b = perm[i:i + args.batch_size]
            loss = ((head(net.features(Ot[b])) - Tn[b]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if tb and step % 50 == 0:
                tb.add_scalar("losses/perception_mse", loss.item(), step)
        sched.step()
        err = val_mse()
        if tb:
            tb.add_scalar("losses/perception_val_mse", float(err.mean()), step)
    if tb:
        tb.close()
    per = {k: round(float(v), 4) for k, v in zip(names, err)}
    metrics = {"val_mse": float(err.mean()), "val_mse_untrained": float(first.mean()), "val_mse_per_target": per,
               "frames": int(len(O)), "seconds_collect": round(t_collect, 1), "seconds": round(time.time() - t0, 1)}
    save_checkpoint(Path(args.out) / "checkpoint", net, config, metrics)
    return {"out": args.out, **{k: v for k, v in metrics.items() if k != "val_mse_per_target"},
            "worst_targets": dict(sorted(per.items(), key=lambda kv: -kv[1])[:4])}


def add_args(p: argparse.ArgumentParser) -> None:
    from hakisa.dcargs import add_dataclass_args

    add_dataclass_args(p, PerceptionArgs)


def main(args) -> int:
    from hakisa.dcargs import from_args

    res = train_perception(from_args(PerceptionArgs, args))
    print(json.dumps(res))
    return 0
