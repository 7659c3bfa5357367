"""`hakisa consolidate`: learn from stored episodes: offline branching DQN, or a PPO update on explored ones.

    hakisa consolidate --data datasets/duel-explore --steps 20000 --run duel-offline [--init runs/duel-ppo] [--cql 1.0]
    hakisa consolidate --algo ppo --data datasets/duel-explore --init runs/duel-bc --run duel-round1

The same TD loss as the online learner (hakisa/algos/dqn.py: per-branch double-Q targets from a
target network refreshed every --target-every steps, Huber), fed from `Transitions(store)`
(single stored frames, stacked on the fly, cut episodes' last steps dropped). Offline Q-learning
overestimates actions the data never took; `--cql` adds the conservative Q-learning penalty
(Kumar et al. 2020), logsumexp_a Q_d(s, a) - Q_d(s, a_data), per active branch.

`--algo ppo` is the other half of Hakisa's explore -> consolidate loop: `hakisa explore` (sampling from
the policy) stores each action's behaviour log-prob and V(s); consolidate computes GAE per episode
from the stored rewards and values and runs PPO's clipped update (hakisa/algos/ppo.py `update_policy`)
on them, starting from `--init`. The clip keeps the step near the policy that played, so alternating
explore and consolidate is PPO with the rollouts kept on disk. Teacher episodes carry no log-probs
and are refused here (clone them with `hakisa study` instead).
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm


@dataclass
class ConsolidateArgs:
    """The options of `hakisa consolidate` (offline DQN, or a PPO update on explored episodes): one flag per
    field (`add_dataclass_args`), and each field's docstring below is its flag's help. `data` is required."""

    data: str
    """episode store directory"""
    algo: str = "dqn"
    """dqn: offline TD learning (any episodes); ppo: a PPO update on explored episodes"""
    init: str = ""
    """start from this checkpoint (ppo: the policy that explored the episodes)"""
    steps: int = 20_000
    """dqn: gradient steps"""
    epochs: int = 2
    """ppo: passes over the stored episodes"""
    value_epochs: int = 0
    """ppo: value-only passes before the update (warm-starts a cloned policy's critic)"""
    batch_size: int = 0
    """minibatch; 0: dqn 64, ppo 512"""
    lr: float = 0.0
    """learning rate; 0: dqn 1e-4, ppo 2.5e-4"""
    gamma: float = 0.99
    """discount factor"""
    target_every: int = 1_000
    """dqn: gradient steps between target-network refreshes"""
    cql: float = 0.0
    """dqn: conservative-Q penalty weight (0: plain DQN)"""
    ent_coef: float = 0.01
    """ppo: entropy bonus"""
    clip: float = 0.1
    """ppo: surrogate clip"""
    encoder: str = "small"
    """dqn without --init: small | nature | torchvision:<name>"""
    hidden: int = 256
    """dqn without --init: trunk width"""
    run: str = "consolidate"
    """run name: runs-dir/run gets config.json, TensorBoard events and checkpoint/"""
    runs_dir: str = "runs"
    """where runs go"""
    seed: int = 0
    """torch/numpy seed"""
    threads: int = 0
    """torch threads; 0: one per core up to 2"""
    progress: bool = True
    """show a progress bar"""


def add_args(p: argparse.ArgumentParser) -> None:
    from hakisa.dcargs import add_dataclass_args

    add_dataclass_args(p, ConsolidateArgs)


def consolidate(store, steps: int, run_dir: str | Path | None = None, net=None, batch_size: int = 64, lr: float = 1e-4,
                gamma: float = 0.99, target_every: int = 1_000, cql: float = 0.0, seed: int = 0,
                encoder: str = "small", hidden: int = 256, progress: bool = True,
                threads: int = 0) -> tuple[object, dict]:
    """Offline DQN on an `EpisodeStore`; returns (net, metrics)."""
    from hakisa.algos.common import setup_torch
    from hakisa.algos.dqn import cql_penalty, td_loss
    from hakisa.data import Transitions
    from hakisa.model import HakisaNet, save_checkpoint

    setup_torch(threads, seed)
    imap, spec = store.input_map, store.obs_spec
    net = net or HakisaNet(spec, imap, encoder, hidden)
    if not net.input_map.same_as(imap) or net.obs_spec != spec:
        raise ValueError("the net's input map / obs spec differ from the episode store's")
    target = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1.5e-4)
    tr = Transitions(store, stack=spec.stack)
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
            pen = cql_penalty(net, b["obs"], b["actions"])
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


def episode_gae(tr, gamma: float = 0.99, lam: float = 0.95, values: np.ndarray | None = None):
    """GAE over every stored episode of `tr` (a `Transitions` view).

    Rewards are divided by the std of the discounted return, as PPO's training does (Gymnasium's
    NormalizeReward), so V's targets are O(1). A terminated episode bootstraps 0 after its last step;
    a cut one (time limit, stopped recording) uses its last step only as the bootstrap V.
    Returns (step indices, advantages, returns, reward scale)."""
    from hakisa.algos.ppo import gae

    v_all = tr.values if values is None else values
    if tr.logp is None or v_all is None:
        raise ValueError(f"{tr.store.root}: these episodes carry no behaviour log-probs/values (a teacher's, or "
                         "greedy play): record them with `hakisa explore` (sampling), or use --algo dqn")
    bounds = np.flatnonzero(np.diff(tr.episode_of)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(tr.episode_of)]
    disc = []
    for s, e in zip(starts, ends):  # forward discounted sums, the statistic NormalizeReward tracks
        g = 0.0
        for r in tr.rewards[s:e]:
            g = g * gamma + r
            disc.append(g)
    scale = float(np.std(disc)) + 1e-8 if len(disc) > 1 else 1.0
    idx, adv, ret = [], [], []
    for s, e in zip(starts, ends):
        term = bool(tr.dones[e - 1])
        last = e if term else e - 1  # steps with a known successor
        if last <= s:
            continue
        r = torch.from_numpy((tr.rewards[s:last] / scale).astype(np.float32))[:, None]
        v = torch.from_numpy(v_all[s:last].astype(np.float32))[:, None]
        boot = torch.tensor([0.0 if term else float(v_all[e - 1])])  # V after the last step kept
        a, rt = gae(r, v, torch.zeros_like(r), boot, 0.0, gamma, lam)  # no episode starts inside the slice
        idx.append(np.arange(s, last))
        adv.append(a[:, 0].numpy())
        ret.append(rt[:, 0].numpy())
    if not idx:
        raise ValueError(f"{tr.store.root}: no episode has two steps to learn from")
    return np.concatenate(idx), np.concatenate(adv).astype(np.float32), np.concatenate(ret).astype(np.float32), scale


def consolidate_ppo(store, net, run_dir: str | Path | None = None, epochs: int = 2, lr: float = 2.5e-4,
                    batch_size: int = 512, gamma: float = 0.99, clip: float = 0.1, ent_coef: float = 0.01,
                    seed: int = 0, progress: bool = True, value_epochs: int = 0,
                    threads: int = 0) -> tuple[object, dict]:
    """One PPO update (`epochs` passes) on explored episodes, from `net` (the policy that explored).

    value_epochs: passes fitting only the value head to these episodes' returns first. A cloned policy
    (`hakisa study`) never trained its value head, so its first advantages are noise and the first PPO
    steps undo some of the cloning; the policy is untouched by the warm-up (frozen features)."""
    from hakisa.algos import ppo
    from hakisa.algos.common import setup_torch
    from hakisa.data import Transitions
    from hakisa.model import save_checkpoint

    setup_torch(threads, seed)
    if not net.input_map.same_as(store.input_map) or net.obs_spec != store.obs_spec:
        raise ValueError("the net's input map / obs spec differ from the episode store's")
    tr = Transitions(store, stack=store.obs_spec.stack)
    idx, adv, ret, scale = episode_gae(tr, gamma)
    args = ppo.Args(lr=lr, update_epochs=epochs, clip_coef=clip, ent_coef=ent_coef, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-5)
    start = time.time()
    # the batch in memory as uint8 stacks (80x45x4 frames: ~14 KB a step)
    b_obs = torch.from_numpy(tr.stacked(idx))
    b_act = torch.from_numpy(tr.actions[idx].astype(np.int64))
    b_logp = torch.from_numpy(tr.logp[idx].astype(np.float32))
    b_val = torch.from_numpy(tr.values[idx].astype(np.float32))
    net.train()
    v_first = None
    if value_epochs:
        with torch.no_grad():  # features once: only the value head (a linear layer on them) is fitted
            every = torch.from_numpy(tr.stacked(np.arange(len(tr.episode_of))))
            feats = torch.cat([net.features(every[mb]) for mb in torch.arange(len(every)).split(1024)])
        v_opt = torch.optim.Adam(net.v.parameters(), lr=1e-3)
        target, at = torch.from_numpy(ret), torch.from_numpy(idx)
        for _ in range(value_epochs):
            for mb in torch.randperm(len(idx)).split(batch_size):
                v_loss = 0.5 * ((net.v(feats[at[mb]]).squeeze(1) - target[mb]) ** 2).mean()
                v_first = v_loss.item() if v_first is None else v_first
                v_opt.zero_grad(set_to_none=True)
                v_loss.backward()
                v_opt.step()
        with torch.no_grad():  # advantages from the fitted critic (the behaviour log-probs stay as stored)
            v_new = net.v(feats).squeeze(1).numpy()
        idx, adv, ret, scale = episode_gae(tr, gamma, values=v_new)
        b_val = torch.from_numpy(v_new[idx].astype(np.float32))
    u = ppo.update_policy(net, opt, args, b_obs, b_act, b_logp, torch.from_numpy(adv), torch.from_numpy(ret), b_val,
                          min(batch_size, len(idx)))
    _, ep_of = np.unique(tr.episode_of, return_inverse=True)
    ep_ret = np.bincount(ep_of, weights=tr.rewards)  # one pass, not a mask per episode
    metrics = {"algo": "ppo", "steps": int(len(idx)), "episodes": len(ep_ret), "mean_return": float(np.mean(ep_ret)),
               "reward_scale": scale, "grad_steps": u["grad_steps"], "approx_kl": float(u["approx_kl"]),
               "value_loss": u["v_loss"].item(), "value_loss_before_warmup": v_first,
               "clipfrac": float(np.mean(u["clipfracs"])), "time_s": time.time() - start}
    if run_dir is not None:
        cfg = {
            "algo": "ppo",
            "offline": False,
            "source": str(store.root),
            "epochs": epochs,
            "lr": lr,
            "gamma": gamma,
            "clip": clip,
            "ent_coef": ent_coef,
            "seed": seed,
        }
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "config.json").write_text(json.dumps(cfg, indent=1))
        save_checkpoint(Path(run_dir) / "checkpoint", net, cfg, metrics)
    return net, metrics


def main(args) -> int:
    from hakisa.data import EpisodeStore
    from hakisa.dcargs import from_args

    a = from_args(ConsolidateArgs, args)
    if a.algo not in ("dqn", "ppo"):
        raise SystemExit(f"hakisa consolidate: --algo {a.algo!r}: dqn or ppo")
    store = EpisodeStore(a.data)
    net = None
    if a.init:
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(a.init, input_map=store.input_map, obs_spec=store.obs_spec)
    run_dir = Path(a.runs_dir) / a.run
    if a.algo == "ppo":
        if net is None:
            raise SystemExit("hakisa consolidate --algo ppo needs --init: the policy that explored the episodes")
        _, m = consolidate_ppo(store, net, run_dir, a.epochs, a.lr or 2.5e-4, a.batch_size or 512, a.gamma, a.clip,
                               a.ent_coef, a.seed, progress=a.progress, value_epochs=a.value_epochs, threads=a.threads)
    else:
        _, m = consolidate(store, a.steps, run_dir, net, a.batch_size or 64, a.lr or 1e-4, a.gamma, a.target_every,
                           a.cql, a.seed, a.encoder, a.hidden, progress=a.progress, threads=a.threads)
    print(json.dumps({"run": str(run_dir), **m}))
    return 0
