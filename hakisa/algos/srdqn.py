"""SR-DQN: a sample-efficient branching double DQN for live play, where every frame costs real time.

    hakisa train --game G --minutes 30 --windows 2          # no --init: the live default, from scratch
    hakisa train --game G --algo srdqn --init runs/G-bc --demos DATA   # from a clone, its teacher kept

What it takes from the Atari-100k learners (each measured there on 100k agent steps, the budget of 30
minutes of live play on four windows):
- DrQ (Kostrikov et al. 2020), DrQ(eps) (Agarwal et al. 2021): each sampled stack is shifted by up to `shift`
  pixels (hakisa/algos/augment.py `random_shift`), obs and next obs apart, so the Q net cannot memorise pixels
  of the few frames it has; epsilon decays to 0.01 in a few thousand steps, not a million.
- n-step returns (`n_step`; BBF anneals 10 -> 3 after each reset: `n_step_start`, `anneal_steps`).
- SR-SPR (D'Oro et al. 2023) / BBF (Schwarzer et al. 2023): a high replay ratio (`--replay-ratio`, gradient
  steps per env step, capped by what the CPU gives) made safe by resets: every `reset_every` gradient steps
  the trunk and Q heads are re-initialised and the encoder is shrunk toward a fresh init (`shrink`), which
  undoes the loss of plasticity that many updates on little data cause. For `reset_quiet` steps after a
  reset the actor keeps the weights from before it (the live agent plays on while the new heads relearn).
- A target net that is an EMA of the online net (`tau`, BBF's 0.005) instead of periodic hard copies,
  and AdamW with weight decay (BBF's 0.1).
- The branching dueling heads of HakisaNet (Tavakoli et al. 2018) and dqn.py's `td_loss` and `FrameReplay`.
Not taken: BBF's self-predictive (SPR) loss and its wider ResNet. On 2 CPU cores a grad step is the scarce
thing, and SPR's 5-step latent rollouts cost about as much again per step; it was not measured here.

From a clone (`--init`), resets are off (they would erase the clone) and, with `--demos STORE`, each update
also takes a minibatch of the teacher's frames with DQfD's large-margin loss (Hester et al. 2018): the
demonstrated action's Q must beat every other by `margin`, so the greedy policy stays the teacher's where the
teacher went until the TD errors say otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hakisa.algos.augment import random_shift
from hakisa.algos.dqn import cql_penalty, td_loss
from hakisa.algos.live_learners import ReplayLearner
from hakisa.model import HakisaNet


@dataclass
class Args:
    """The SR-DQN live learner's settings (`SRDQNLearner`, run by `hakisa train` on a window).

    `hakisa train --set KEY=VALUE` and a game file's `train.live.srdqn` entry set them; each field's docstring
    below is its help, listed by `hakisa train --help`."""

    total_steps: int = 10**12
    """total env steps (live: the budget is --minutes)"""
    buffer_size: int = 100_000
    """replay capacity in frames (split evenly across the windows)"""
    lr: float = 1e-4
    """AdamW learning rate"""
    weight_decay: float = 0.1
    """AdamW weight decay (BBF's)"""
    gamma: float = 0.99
    """discount factor"""
    n_step: int = 3
    """n-step returns"""
    n_step_start: int = 3
    """n at the start and after each reset, annealed to n_step over anneal_steps (BBF: 10)"""
    anneal_steps: int = 2000
    """gradient steps of that anneal"""
    batch_size: int = 32
    """minibatch size"""
    learning_starts: int = 500
    """env steps before the first update"""
    tau: float = 0.005
    """target net = EMA of the online net, this share a gradient step"""
    shift: int = 4
    """random-shift augmentation: pixels of padding (0: none)"""
    reset_every: int = 0
    """gradient steps between shrink-and-perturb resets (0: never, the default: on the zoo's Catch from scratch,
    resets every 8,000 kept it at the untrained level with both encoders, docs/live_learning.md; always off from a
    clone)"""
    shrink: float = 0.5
    """at a reset, the share of its weights the encoder keeps (the rest: a fresh init)"""
    reset_quiet: int = 1000
    """gradient steps after a reset before its weights are handed to the actor"""
    eps_start: float = 1.0
    """exploration rate at the start (from a clone: eps_end throughout)"""
    eps_end: float = 0.01
    """exploration rate after eps_steps"""
    eps_steps: int = 3000
    """env steps (all windows together) over which epsilon decays linearly"""
    margin: float = 0.8
    """with --demos: DQfD's large margin"""
    demo_coef: float = 1.0
    """with --demos: the margin loss's weight"""
    max_grad_norm: float = 10.0
    """global gradient-norm clip"""
    seed: int = 0
    """torch/numpy seed"""
    encoder: str = "fine"
    """encoder: fine (an eighth of the frame's resolution, with coordinate planes: what learned Catch from scratch)
    | small | nature | torchvision:<name>"""
    hidden: int = 256
    """trunk width"""
    progress: bool = True
    """show a tqdm progress bar"""


def augment(obs: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """DrQ's random shift of uint8 stacks [B, C, H, W] (each stack its own offset); pad 0: unchanged."""
    if pad <= 0:
        return obs
    return random_shift(torch.from_numpy(obs), pad, rng).numpy()


def n_step_at(args: Args, since_reset: int) -> int:
    """BBF's anneal of the return horizon: n_step_start right after a reset, n_step after anneal_steps."""
    frac = min(1.0, since_reset / max(1, args.anneal_steps))
    return int(round(args.n_step_start + (args.n_step - args.n_step_start) * frac))


@torch.no_grad()
def ema_(target: torch.nn.Module, net: torch.nn.Module, tau: float) -> None:
    for pt, p in zip(target.parameters(), net.parameters()):
        pt.lerp_(p, tau)


@torch.no_grad()
def shrink_perturb(net: HakisaNet, fresh: HakisaNet, shrink: float) -> None:
    """SR-SPR/BBF's reset: the last layers (trunk and Q heads) take the fresh init's weights, the encoder
    becomes shrink * itself + (1 - shrink) * the fresh init (what it learned is kept, scaled, and the fresh
    part gives back the plasticity it lost)."""
    for p, f in zip(net.encoder.parameters(), fresh.encoder.parameters()):
        p.mul_(shrink).add_(f, alpha=1.0 - shrink)
    for name in ("trunk", "q_v", "adv_cmd", "adv_x", "adv_y"):
        getattr(net, name).load_state_dict(getattr(fresh, name).state_dict())


def margin_loss(net: HakisaNet, obs: np.ndarray, actions: np.ndarray, margin: float) -> torch.Tensor:
    """DQfD's supervised term per branch: max_a [Q_d(s, a) + margin * (a != a_E)] - Q_d(s, a_E), x/y only
    where the demonstrated command uses them."""
    qs = net.q_values(torch.from_numpy(obs))
    act = torch.from_numpy(actions)
    m = net.uses_xy[act[:, 0]].float()
    per = []
    for d, q in enumerate(qs):
        bump = torch.full_like(q, margin).scatter_(1, act[:, d : d + 1], 0.0)
        per.append((q + bump).max(1).values - q.gather(1, act[:, d : d + 1]).squeeze(1))
    return (per[0] + m * (per[1] + per[2])).mean()


class SRDQNLearner(ReplayLearner):
    """The learner thread (see the module docstring). resets: False from a clone. demos: `load_demos`'s
    (transitions, class weights) or None. warmup, cql: as DQNLearner's, for a clone's first updates."""

    def __init__(self, net, args: Args, writer, n_envs: int, replay_ratio: float, publish_every: int,
                 resets: bool = True, demos=None, warmup: int = 0, cql: float = 0.0):
        super().__init__(net, args, writer, n_envs, replay_ratio, publish_every, warmup, cql)
        self.resets = resets and args.reset_every > 0
        self.demos = demos
        self.opt = self.make_opt()
        self.last_reset, self.n_resets = 0, 0

    def state(self) -> tuple[dict, dict]:
        arrays, scalars = super().state()
        return arrays, {**scalars, "last_reset": self.last_reset, "n_resets": self.n_resets}

    def restore(self, arrays: dict, scalars: dict, steps: int, grad_steps: int) -> bool:
        ok = super().restore(arrays, scalars, steps, grad_steps)
        self.last_reset, self.n_resets = int(scalars.get("last_reset", 0)), int(scalars.get("n_resets", 0))
        return ok

    def make_opt(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.net.parameters(), lr=self.args.lr, eps=1.5e-4,
                                 weight_decay=self.args.weight_decay)

    def update(self) -> tuple[float, float]:
        """One gradient step on an augmented replay minibatch (and a demo minibatch); (loss, mean Q)."""
        a = self.args
        with self.lock:
            b = self.rb.sample(a.batch_size, n_step_at(a, self.grad_steps - self.last_reset), a.gamma, self.rng)
        b["obs"], b["next_obs"] = augment(b["obs"], a.shift, self.rng), augment(b["next_obs"], a.shift, self.rng)
        loss, q_mean = td_loss(self.net, self.target, b)
        if self.cql > 0:
            loss = loss + self.cql * cql_penalty(self.net, b["obs"], b["actions"])
        if self.demos is not None and a.demo_coef > 0:
            d = self.demos[0].sample(a.batch_size, self.rng)
            obs = augment(np.ascontiguousarray(d["obs"]), a.shift, self.rng)
            loss = loss + a.demo_coef * margin_loss(self.net, obs, d["actions"].astype(np.int64), a.margin)
        self.step(loss)
        return loss.item(), q_mean.item()

    def after_update(self) -> None:
        ema_(self.target, self.net, self.args.tau)
        if self.resets and self.grad_steps - self.last_reset >= self.args.reset_every:
            self.reset()

    def reset(self) -> None:
        fresh = HakisaNet(self.net.obs_spec, self.net.input_map, self.net.encoder_name, self.net.hidden)
        shrink_perturb(self.net, fresh, self.args.shrink)
        self.opt = self.make_opt()  # BBF resets the optimizer with the weights
        self.guard.rebase()  # a fresh head's losses are large again, and legitimately so
        self.last_reset, self.n_resets = self.grad_steps, self.n_resets + 1
        self.quiet_until = self.grad_steps + self.args.reset_quiet
        if self.writer is not None:
            self.writer.add_scalar("charts/resets", self.n_resets, self.env_steps)
