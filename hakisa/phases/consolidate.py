"""`hakisa consolidate`: offline branching DQN from stored episodes (teacher, explore or play).

    hakisa consolidate --data datasets/duel-explore --steps 20000 --run duel-offline [--init runs/duel-ppo] [--cql 1.0]

The same TD loss as the online learner (hakisa/algos/dqn.py: per-branch double-Q targets from a
target network refreshed every --target-every steps, Huber), fed from `EpisodeStore.transitions()`
(single stored frames, stacked on the fly, cut episodes' last steps dropped). Offline Q-learning
overestimates actions the data never took; `--cql` adds the conservative Q-learning penalty
(Kumar et al. 2020), logsumexp_a Q_d(s, a) - Q_d(s, a_data), per active branch.
(A PPO update on explored rollouts is not offered: stored episodes lack the behaviour policy's
log-probs, so the PPO ratio cannot be formed honestly.)
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="episode store directory")
    p.add_argument("--steps", type=int, default=20_000, help="gradient steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--target-every", type=int, default=1_000)
    p.add_argument("--cql", type=float, default=0.0, help="conservative-Q penalty weight (0: plain DQN)")
    p.add_argument("--init", metavar="CHECKPOINT", help="start from this checkpoint")
    p.add_argument("--encoder", default="small")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--run", default="consolidate")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def consolidate(store, steps: int, run_dir: str | Path | None = None, net=None, batch_size: int = 64, lr: float = 1e-4,
                gamma: float = 0.99, target_every: int = 1_000, cql: float = 0.0, seed: int = 0,
                encoder: str = "small", hidden: int = 256, progress: bool = True) -> tuple[object, dict]:
    """Offline DQN on an `EpisodeStore`; returns (net, metrics)."""
    from hakisa.algos.common import setup_torch
    from hakisa.algos.dqn import td_loss
    from hakisa.model import HakisaNet, save_checkpoint

    setup_torch(0, seed)
    imap, spec = store.input_map, store.obs_spec
    net = net or HakisaNet(spec, imap, encoder, hidden)
    if not net.input_map.same_as(imap) or net.obs_spec != spec:
        raise ValueError("the net's input map / obs spec differ from the episode store's")
    target = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1.5e-4)
    tr = store.transitions(stack=spec.stack)
    if len(tr) == 0:
        raise ValueError("the store has no usable transitions")
    writer = None
    if run_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(run_dir))
    rng = np.random.default_rng(seed)
    start, loss = time.time(), torch.tensor(0.0)
    for step in tqdm(range(1, steps + 1), disable=not progress, desc="consolidate"):
        d = tr.sample(batch_size, rng)
        b = {"obs": d["obs"], "next_obs": d["next_obs"], "actions": d["actions"].astype(np.int64),
             "returns": d["rewards"].astype(np.float32), "discount": np.full(len(d["rewards"]), gamma, np.float32),
             "dones": d["dones"].astype(bool)}
        loss, q_mean = td_loss(net, target, b)
        pen = torch.tensor(0.0)
        if cql > 0:
            qs = net.q_values(torch.from_numpy(b["obs"]))
            act = torch.from_numpy(b["actions"])
            m = net.uses_xy[act[:, 0]].float()
            per = [torch.logsumexp(q, 1) - q.gather(1, act[:, i:i + 1]).squeeze(1) for i, q in enumerate(qs)]
            pen = (per[0] + m * (per[1] + per[2])).mean()
        opt.zero_grad(set_to_none=True)
        (loss + cql * pen).backward()
        gn = nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        if step % target_every == 0:
            target.load_state_dict(net.state_dict())
        if writer is not None and step % 100 == 0:
            writer.add_scalar("losses/td_loss", loss.item(), step)
            writer.add_scalar("losses/cql", pen.item(), step)
            writer.add_scalar("losses/q_values", q_mean.item(), step)
            writer.add_scalar("charts/grad_norm", float(gn), step)
    metrics = {"steps": steps, "td_loss": loss.item(), "transitions": len(tr), "time_s": time.time() - start}
    if run_dir is not None:
        cfg = {"algo": "dqn", "offline": True, "batch_size": batch_size, "lr": lr, "gamma": gamma,
               "target_every": target_every, "cql": cql, "seed": seed}
        (Path(run_dir) / "config.json").write_text(json.dumps(cfg, indent=1))
        save_checkpoint(Path(run_dir) / "checkpoint", net, cfg, metrics)
        writer.close()
    return net, metrics


def main(args) -> int:
    from hakisa.data import EpisodeStore

    store = EpisodeStore(args.data)
    net = None
    if args.init:
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(args.init, input_map=store.input_map, obs_spec=store.obs_spec)
    run_dir = Path(args.runs_dir) / args.run
    _, m = consolidate(store, args.steps, run_dir, net, args.batch_size, args.lr, args.gamma, args.target_every,
                       args.cql, args.seed, args.encoder, args.hidden, progress=not args.no_progress)
    print(json.dumps({"run": str(run_dir), **m}))
    return 0
