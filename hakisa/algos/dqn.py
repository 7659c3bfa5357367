"""Branching dueling DQN (Tavakoli et al. 2018) on vector envs, CleanRL dqn_atari.py style.

The action [command, x, y] has one Q branch per dimension over a shared V(s) (see hakisa/model.py).
The TD target is ONE number per transition, shared by all branches:
    y = sum_{i<n} g^i r_{t+i} + g^n (1 - done) * mean_d Q_target_d(s', argmax_a Q_online_d(s', a))
i.e. per-branch double-Q (online net picks, target net evaluates), averaged over the branches that
matter at s' (x/y only when the chosen command uses them). Each active branch regresses its own
Q_d(s, a_d) onto y with a Huber loss.

The target net is a separate copy refreshed every `target_every` gradient steps (a target that moves with
every step chases itself); the target is a Q value of the target net at the online argmax; the replay
buffer stores every uint8 frame once and rebuilds stacks at sample time (k times less memory).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, setup_torch, start_run, summarize
from hakisa.envs.make import contract
from hakisa.model import HakisaNet, save_checkpoint


@dataclass
class Args:
    """The branching dueling DQN learner's settings (`train(envs, args)`; also the live `DQNLearner`).

    `hakisa train --set KEY=VALUE` and a game file's train recipe set them; each field's docstring below is its
    help, listed by `hakisa train --help`. Saved in the run's config.json."""

    total_steps: int = 500_000
    """total env steps (summed over the vector envs)"""
    buffer_size: int = 100_000
    """replay capacity in frames (split evenly across the vector envs)"""
    lr: float = 1e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount factor"""
    n_step: int = 3
    """n-step returns (1: plain one-step TD)"""
    batch_size: int = 64
    """minibatch size"""
    learning_starts: int = 5_000
    """env steps of pure exploration before the first update"""
    train_every: int = 4
    """env steps (summed over envs) per gradient step"""
    target_every: int = 1_000
    """gradient steps between hard copies of the online net into the target net"""
    eps_start: float = 1.0
    """initial exploration rate"""
    eps_end: float = 0.05
    """final exploration rate"""
    eps_fraction: float = 0.3
    """fraction of total_steps over which epsilon decays linearly"""
    max_grad_norm: float = 10.0
    """global gradient-norm clip"""
    seed: int = 0
    """torch/numpy seed"""
    encoder: str = "small"
    """encoder: small | nature | torchvision:<name>"""
    hidden: int = 256
    """trunk width"""
    threads: int = 0
    """torch threads; 0: one per core up to 2"""
    save_every: int = 50_000
    """save runs/<name>/checkpoint every this many env steps (and at the end)"""
    max_minutes: float = 0.0
    """wall-clock training budget in minutes; 0: none (stop at the step/generation count)"""
    progress: bool = True
    """show a tqdm progress bar"""


@dataclass
class LiveArgs(Args):
    """Branching DQN on a live window, where it starts from a studied clone: a short warm-up (500 steps), a
    constant small epsilon (a uniformly random click can cost a life) and a target copied every 250 gradient
    steps. A game file's `train.live.dqn` entry and `--set` override these."""

    buffer_size: int = 60_000
    learning_starts: int = 500
    target_every: int = 250
    eps_start: float = 0.05
    eps_end: float = 0.05


class FrameReplay:
    """Per-env rings of SINGLE frames; a transition's stacks are rebuilt from consecutive slots.

    At an episode start the k-1 older frames of the first stack are written as padding slots (never
    sampled), so a stack never reaches across an episode boundary, whatever the env's reset stacking
    is. Slot s holds the newest frame of obs_t plus a_t, r_t, done_t; obs_{t+1} is the stack ending
    at slot s+1. `valid[s]` is True once the transition at s is complete (its next frame is written,
    or it ended in a terminal state); time-limit cuts are never valid (no next frame to bootstrap).
    """

    def __init__(self, n_envs: int, capacity: int, frame_shape: tuple, stack: int):
        self.E, self.cap, self.k, self.C = n_envs, max(capacity // n_envs, stack + 8), stack, frame_shape[0]
        self.frames = np.zeros((self.E, self.cap) + tuple(frame_shape), np.uint8)
        # written once now, so its memory is taken at the start: a run that cannot hold its replay fails in its
        # first second, not an hour in, and the process's size stays flat afterwards (a growing RSS is a leak)
        self.frames.fill(0)
        self.actions = np.zeros((self.E, self.cap, 3), np.int64)
        self.rewards = np.zeros((self.E, self.cap), np.float32)
        self.dones = np.zeros((self.E, self.cap), bool)
        self.valid = np.zeros((self.E, self.cap), bool)
        self.pos = np.zeros(self.E, np.int64)  # next slot to write
        self.cur = np.zeros(self.E, np.int64)  # slot of the current obs's newest frame
        self.wrapped = np.zeros(self.E, bool)  # the ring went round once: every slot holds a frame

    def _write(self, e: int, frame: np.ndarray) -> int:
        p = self.pos[e]
        self.frames[e, p] = frame
        # slot p and the k-1 after it lose history they needed (their stacks reach back to p)
        self.valid[e, [(p + j) % self.cap for j in range(self.k)]] = False
        self.dones[e, p] = False
        self.pos[e] = (p + 1) % self.cap
        self.wrapped[e] |= self.pos[e] == 0
        return p

    def start_episode(self, e: int, obs: np.ndarray) -> None:
        """obs: the episode's first stack [k*C, H, W]; all k frames go in, the last is current."""
        for j in range(self.k):
            p = self._write(e, obs[j * self.C:(j + 1) * self.C])
        self.cur[e] = p

    def add(
        self, e: int, action, reward: float, terminated: bool, truncated: bool, next_obs: np.ndarray | None
    ) -> None:
        """Record a_t, r_t for env e's current obs; next_obs is obs_{t+1} (ignored when the episode ended)."""
        s = self.cur[e]
        self.actions[e, s], self.rewards[e, s], self.dones[e, s] = action, reward, terminated
        if terminated:
            self.valid[e, s] = True
        elif not truncated:
            self.cur[e] = self._write(e, next_obs[-self.C :])
            self.valid[e, s] = True  # after _write, which clears validity of the slots it shadows

    def __len__(self) -> int:
        return int(self.valid.sum())

    def filled(self) -> int:
        """Slots in use in the fullest ring: the ones a snapshot keeps (the rest are zeros)."""
        return self.cap if self.wrapped.any() else int(self.pos.max())

    def snapshot(self, lock, chunk: int = 1024) -> dict[str, np.ndarray]:
        """A consistent copy of the filled slots, for `hakisa train --resume`, while the actor goes on writing.

        The frames (most of the bytes: a 100,000-frame replay of 96x64 frames is 600 MB) are copied a chunk at a
        time, each under `lock` (the lock the actor's `add` takes), so the actor never waits more than one chunk's
        copy; the slots it wrote meanwhile are copied again at the end, with the books, under the lock once more.
        np.empty_like commits memory only for the slots copied."""
        with lock:
            start, n = self.pos.copy(), self.filled()
        frames = np.empty_like(self.frames)
        for a in range(0, n, chunk):
            with lock:
                frames[:, a : min(n, a + chunk)] = self.frames[:, a : min(n, a + chunk)]
        with lock:
            for e in range(self.E):
                idx = (start[e] + np.arange((self.pos[e] - start[e]) % self.cap)) % self.cap
                frames[e, idx] = self.frames[e, idx]
            n = self.filled()
            books = {k: getattr(self, k)[:, :n].copy() for k in ("actions", "rewards", "dones", "valid")}
            return {"frames": frames[:, :n], **books, "pos": self.pos.copy(), "cur": self.cur.copy(),
                    "wrapped": self.wrapped.copy()}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Put a `snapshot` back; ValueError (one line) when it was taken with other windows, a larger capacity
        or other frames."""
        f = state["frames"]
        # a ring that went round continues at slot 0: it fits only a ring of its own size
        size_ok = f.shape[1] == self.cap if state["wrapped"].any() else f.shape[1] <= self.cap
        if f.shape[0] != self.E or not size_ok or f.shape[2:] != self.frames.shape[2:]:
            raise ValueError(f"a replay of {f.shape[0]} window(s) x {f.shape[1]} frames of {tuple(f.shape[2:])} "
                             f"does not fit this one ({self.E} x {self.cap} of {tuple(self.frames.shape[2:])})")
        n = f.shape[1]
        for k in ("frames", "actions", "rewards", "dones", "valid"):
            getattr(self, k)[:, :n] = state[k]
        self.pos[:], self.cur[:], self.wrapped[:] = state["pos"], state["cur"], state["wrapped"]

    def stacks(self, e: np.ndarray, s: np.ndarray) -> np.ndarray:
        idx = (s[:, None] + np.arange(-self.k + 1, 1)[None, :]) % self.cap  # [B, k] oldest first
        f = self.frames[e[:, None], idx]  # [B, k, C, H, W]
        return f.reshape((len(e), self.k * self.C) + f.shape[3:])

    def sample(self, batch: int, n_step: int, gamma: float, rng: np.random.Generator) -> dict:
        flat = np.flatnonzero(self.valid)
        pick = flat[rng.integers(len(flat), size=batch)]
        e, s = pick // self.cap, pick % self.cap
        ret = np.zeros(batch, np.float32)
        disc = np.ones(batch, np.float32)
        done = np.zeros(batch, bool)
        alive = np.ones(batch, bool)  # still accumulating
        last = s.copy()
        for i in range(n_step):
            si = (s + i) % self.cap
            ret += alive * disc * self.rewards[e, si]
            disc = np.where(alive, disc * gamma, disc)
            last = np.where(alive, si, last)
            done |= alive & self.dones[e, si]
            nxt = (si + 1) % self.cap
            # keep going only through complete, non-terminal transitions of the same episode
            alive = alive & ~self.dones[e, si] & self.valid[e, nxt] & (i + 1 < n_step)
        boot = (last + 1) % self.cap  # the next obs of the last accumulated transition
        return {
            "obs": self.stacks(e, s),
            "actions": self.actions[e, s],
            "returns": ret,
            "discount": disc,
            "dones": done,
            "next_obs": self.stacks(e, np.where(done, last, boot)),
            "env": e,
            "slot": s,
        }


def td_loss(net: HakisaNet, target: HakisaNet, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Branching double-Q Huber loss; returns (loss, mean Q of taken actions)."""
    obs, act = torch.from_numpy(b["obs"]), torch.from_numpy(b["actions"])
    nobs = torch.from_numpy(b["next_obs"])
    with torch.no_grad():
        on = net.q_values(nobs)
        tg = target.q_values(nobs)
        picks = [q.argmax(1, keepdim=True) for q in on]
        vals = [t.gather(1, p).squeeze(1) for t, p in zip(tg, picks)]
        m_next = net.uses_xy[picks[0].squeeze(1)].float()
        mean_next = (vals[0] + m_next * (vals[1] + vals[2])) / (1.0 + 2.0 * m_next)
        y = (
            torch.from_numpy(b["returns"])
            + torch.from_numpy(b["discount"]) * (1.0 - torch.from_numpy(b["dones"]).float()) * mean_next
        )
    qs = net.q_values(obs)
    q_taken = [q.gather(1, act[:, d : d + 1]).squeeze(1) for d, q in enumerate(qs)]
    m = net.uses_xy[act[:, 0]].float()
    losses = [F.smooth_l1_loss(q, y, reduction="none") for q in q_taken]
    # x/y losses count only where the taken command uses them (zero gradient otherwise)
    loss = (losses[0] + m * (losses[1] + losses[2])).sum() / (len(y) + 2.0 * m.sum())
    return loss, q_taken[0].detach().mean()


def cql_penalty(net: HakisaNet, obs: np.ndarray, actions: np.ndarray) -> torch.Tensor:
    """Conservative Q-learning's penalty (Kumar et al. 2020) per active branch: logsumexp_a Q_d(s, a) -
    Q_d(s, a_data). It pushes down the actions the data never took, whose values nothing else corrects:
    offline (consolidate), and online from a clone whose untried bins would otherwise win the argmax."""
    qs = net.q_values(torch.from_numpy(obs))
    act = torch.from_numpy(actions)
    m = net.uses_xy[act[:, 0]].float()
    per = [torch.logsumexp(q, 1) - q.gather(1, act[:, i : i + 1]).squeeze(1) for i, q in enumerate(qs)]
    return (per[0] + m * (per[1] + per[2])).mean()


def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None,
          on_update: Callable[[int, HakisaNet, HakisaNet], None] | None = None) -> dict:
    """Train branching DQN on a SAME_STEP vector env. `on_update(grad_step, online, target)` is
    called after every gradient step (tests use it to watch the target net); its time is not charged to max_minutes."""
    setup_torch(args.threads, args.seed)
    rng = np.random.default_rng(args.seed)
    spec, imap = contract(envs)
    n = envs.num_envs
    net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
    target = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1.5e-4)  # Rainbow's eps
    writer = start_run(run_dir, args, {"algo": "dqn", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()})
    rb = FrameReplay(n, args.buffer_size, spec.frame_shape, spec.stack)
    aspace = envs.single_action_space

    obs, _ = envs.reset(seed=args.seed)
    aspace.seed(args.seed)
    for e in range(n):
        rb.start_episode(e, obs[e])
    stats, recent = EpisodeStats(n), []
    grad_steps, global_step, since_train, next_save = 0, 0, 0, args.save_every
    best_score, loss, q_mean = -np.inf, torch.tensor(0.0), torch.tensor(0.0)
    start = time.time()
    metrics: dict = {}
    bar = tqdm(total=None if args.max_minutes else args.total_steps, disable=not args.progress, unit="step",
               desc="dqn")  # as ppo's bar
    while global_step < args.total_steps:
        if args.max_minutes and time.time() - start > 60 * args.max_minutes:
            break
        eps = epsilon(args, global_step)
        actions = choose_actions(net, obs, eps, rng, aspace)
        next_obs, reward, term, trunc, infos = envs.step(actions)
        for e in range(n):
            rb.add(e, actions[e], float(reward[e]), bool(term[e]), bool(trunc[e]), next_obs[e])
            if term[e] or trunc[e]:
                rb.start_episode(e, next_obs[e])  # SAME_STEP: next_obs already starts the new episode
        for ep in stats.update(np.asarray(reward, np.float64), term, trunc, infos):
            recent.append(ep)
            if writer is not None:
                log_scalars(writer, global_step, {"charts/episodic_return": ep["return"],
                                                  "charts/episodic_length": ep["length"]})
        obs = next_obs
        global_step += n
        since_train += n
        bar.update(n)

        if global_step >= args.learning_starts:
            while since_train >= args.train_every:
                since_train -= args.train_every
                loss, q_mean, grad_norm = gradient_step(net, target, opt, rb.sample(args.batch_size, args.n_step,
                                                                                  args.gamma, rng), args)
                grad_steps += 1
                if grad_steps % args.target_every == 0:
                    target.load_state_dict(net.state_dict())  # the only place the target moves
                if on_update is not None:
                    t_hook = time.time()
                    on_update(grad_steps, net, target)
                    start += time.time() - t_hook  # an observer's time (a sweep's evaluations) is not training time
                if writer is not None and grad_steps % 100 == 0:
                    log_scalars(writer, global_step, {"losses/td_loss": loss.item(), "losses/q_values": q_mean.item(),
                                                      "charts/grad_norm": float(grad_norm), "charts/epsilon": eps,
                                                      "charts/sps": global_step / (time.time() - start)})
        else:
            since_train = 0

        recent = recent[-100:]
        if global_step >= next_save or global_step >= args.total_steps:
            next_save += args.save_every
            metrics, best_score = save_progress(run_dir, net, args, recent, writer, bar, best_score, {
                "global_step": global_step, "grad_steps": grad_steps, "epsilon": eps, "td_loss": loss.item(),
                "sps": global_step / (time.time() - start)})
    bar.close()
    if writer is not None:
        writer.close()
    metrics.update(summarize(recent), grad_steps=grad_steps, global_step=global_step, time_s=time.time() - start,
                   threads=torch.get_num_threads())
    if run_dir is not None:  # the final weights, whatever stopped the loop
        save_checkpoint(Path(run_dir) / "checkpoint", net, {"algo": "dqn", **asdict(args)}, metrics)
    return metrics


def epsilon(args: Args, global_step: int) -> float:
    """Linear decay from eps_start to eps_end over eps_fraction of the steps, then flat."""
    return max(args.eps_end, args.eps_start - (args.eps_start - args.eps_end) * global_step
               / max(1, args.eps_fraction * args.total_steps))


def choose_actions(net: HakisaNet, obs, eps: float, rng: np.random.Generator, aspace) -> np.ndarray:
    """Greedy on Q, each env's action replaced by a uniform random one with probability eps (canonical: the bins
    a command ignores set to 0, as the net's own actions have them)."""
    n = len(obs)
    actions = net.act(torch.from_numpy(np.asarray(obs)), "q").numpy()
    explore = rng.random(n) < eps
    if explore.any():
        rand = np.stack([aspace.sample() for _ in range(n)])
        rand = net.canonical(torch.from_numpy(rand)).numpy()
        actions[explore] = rand[explore]
    return actions


def gradient_step(net: HakisaNet, target: HakisaNet, opt, batch: dict, args: Args):
    """One TD update on a sampled batch; returns (loss, mean Q, gradient norm before clipping)."""
    loss, q_mean = td_loss(net, target, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(net.parameters(), args.max_grad_norm)
    opt.step()
    return loss, q_mean, grad_norm


def save_progress(run_dir, net: HakisaNet, args: Args, recent: list, writer, bar, best_score: float, metrics: dict):
    """Every save_every steps: the last 100 episodes' summary, checkpoint/, and best/ when the win rate (else the
    mean return) over at least 10 episodes beats the best so far. Returns (metrics, best score)."""
    summ = summarize(recent)
    metrics = {**metrics, **summ}
    if writer is not None and "win_rate" in summ:
        writer.add_scalar("charts/win_rate", summ["win_rate"], metrics["global_step"])
    bar.set_postfix({k: round(summ[k], 3) for k in ("mean_return", "win_rate") if k in summ})
    if run_dir is not None:
        save_checkpoint(Path(run_dir) / "checkpoint", net, {"algo": "dqn", **asdict(args)}, metrics)
        score = summ.get("win_rate", summ.get("mean_return", -np.inf)) if summ.get("episodes", 0) >= 10 else -np.inf
        if score > best_score:
            best_score = score
            save_checkpoint(Path(run_dir) / "best", net, {"algo": "dqn", **asdict(args)}, metrics)
    return metrics, best_score


def log_scalars(writer, step: int, values: dict) -> None:
    for k, v in values.items():
        writer.add_scalar(k, v, step)
