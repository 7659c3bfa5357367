"""The live trainer's learners: background threads that update a net while the actor plays real time.

Each learner takes transitions from the actor (`add`, `start_episode`), updates its net in its own thread
and hands weights over through `publish`/`pull`: the actor takes the newest weights between two steps and
never waits for a learner (the lock guards only a swap of references).

Every learner is guarded (`Guard`): an update whose loss or Q values are not finite, or far above their
running scale, is undone by loading the last good weights (snapshotted every `Guard.every` healthy updates)
and clearing the optimizer's moments, which the bad step poisoned too. Rollbacks are counted
(`charts/rollbacks`) and the bad weights are never published, so the actor keeps playing the good ones.

- `DQNLearner`: branching double DQN (hakisa/algos/dqn.py `td_loss`, `FrameReplay`) at a replay ratio of
  up to `replay_ratio` gradient steps per env step. Started from a policy checkpoint (a studied clone), its Q
  advantages start as the policy's logits (`q_from_policy`).
- `PPOLearner` (hakisa/algos/live_ppo.py): PPO's clipped update on batches of per-window segments.
- `SRDQNLearner` (hakisa/algos/srdqn.py): the sample-efficient learner for play from scratch.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections import defaultdict

import numpy as np
import torch

from hakisa.model import HakisaNet


class Guard:
    """Catches a diverging learner: `ok(loss, q)` is False for a non-finite value, or one over `factor` times
    its running scale (an EMA of |value|, plus `floor` so a scale near 0 does not flag small noise) once
    `warm` healthy updates have set that scale. Rewards in a game are a few units a step, so healthy Q values
    move by percents per update, never by 100x: the bar sits far from learning and near an explosion."""

    def __init__(self, factor: float = 100.0, warm: int = 50, every: int = 200, beta: float = 0.99,
                 floor: float = 1.0):
        self.factor, self.warm, self.every, self.beta, self.floor = factor, warm, every, beta, floor
        self.scale: dict[str, float] = {}
        self.seen = 0
        self.rollbacks = 0
        self.good: dict | None = None  # the last good weights (online + anything the learner adds)

    def ok(self, **values: float) -> bool:
        for k, v in values.items():
            if not math.isfinite(v):
                return False
            s = self.scale.get(k)
            if s is not None and self.seen >= self.warm and abs(v) > self.factor * (s + self.floor):
                return False
        for k, v in values.items():
            s = self.scale.get(k)
            self.scale[k] = abs(v) if s is None else self.beta * s + (1 - self.beta) * abs(v)
        self.seen += 1
        return True

    def rebase(self) -> None:
        """Forget the running scale (after a deliberate reset, whose losses are new again)."""
        self.scale, self.seen = {}, 0


def clone_state(*modules: torch.nn.Module) -> list[dict]:
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]


class Learner(threading.Thread):
    """A background thread that updates `net` and hands weights to the actor through `pull`."""

    def __init__(self, net: HakisaNet, args, writer):
        super().__init__(name="hakisa-learner", daemon=True)
        self.net, self.args, self.writer = net, args, writer
        self.lock = threading.Lock()  # guards the shared data and the published weights
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.version, self._pulled = 0, 0
        self.grad_steps = 0
        self.env_steps = 0
        self._published = None
        self.guard = Guard()
        self.opt: torch.optim.Optimizer | None = None
        self.snapshot_wanted = threading.Event()  # the actor asks for a resumable checkpoint's state
        self.snapshot: dict | None = None
        self.publish()

    def serve_snapshot(self) -> None:
        """Between two updates, when the actor asked: a copy of the weights and the optimizer's state that belong
        together (what `hakisa train --resume` needs), left in `snapshot` for the actor, which never waits for it."""
        if not self.snapshot_wanted.is_set():
            return
        snap = {"net": clone_state(self.net)[0], "grad_steps": self.grad_steps,
                "opt": None if self.opt is None else copy.deepcopy(self.opt.state_dict()), "state": self.state()}
        with self.lock:
            self.snapshot = snap
        self.snapshot_wanted.clear()

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """What a resumed run needs of this learner besides its weights and optimizer: (arrays, JSON scalars).
        Taken in the learner's thread between two updates (`serve_snapshot`). A PPO batch in progress is not kept:
        seconds of play."""
        return {}, {}

    def restore(self, arrays: dict[str, np.ndarray], scalars: dict, steps: int, grad_steps: int) -> bool:
        """Put a `state` back before the thread starts. True: the learner's counters now go on from the run's
        (steps, grad_steps); False: nothing was kept, and they count from 0 again."""
        return False

    def take_snapshot(self) -> dict | None:
        """The snapshot served since the actor asked, once (None: not yet)."""
        with self.lock:
            snap, self.snapshot = self.snapshot, None
        return snap

    def guarded_modules(self) -> tuple[torch.nn.Module, ...]:
        """What a rollback restores: the online net, and (DQN learners) the target net."""
        return (self.net,)

    def healthy(self, **values: float) -> bool:
        """After an update: True if it stands. Otherwise the last good weights are back, the optimizer's moments
        are cleared and the rollback is logged; a good update past `Guard.every` becomes the new good point."""
        g = self.guard
        if g.ok(**values):
            if g.seen % g.every == 0:
                g.good = clone_state(*self.guarded_modules())
            return True
        for m, sd in zip(self.guarded_modules(), g.good):
            m.load_state_dict(sd)
        if self.opt is not None:
            self.opt.state = defaultdict(dict)  # Adam's moments hold the explosion too
        g.rollbacks += 1
        if self.writer is not None:
            self.writer.add_scalar("charts/rollbacks", g.rollbacks, self.env_steps)
        return False

    def publish(self) -> None:
        sd = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        with self.lock:
            self._published, self.version = sd, self.version + 1

    def pull(self, actor: HakisaNet) -> bool:
        """Load the newest published weights into the actor's net (between two steps); True if new."""
        with self.lock:
            if self.version == self._pulled:
                return False
            sd, self._pulled = self._published, self.version
        actor.load_state_dict(sd)
        return True

    def run(self) -> None:
        try:
            self.guard.good = clone_state(*self.guarded_modules())  # the starting weights are the first good ones
            self.loop()
        except BaseException as e:  # re-raised in the actor's thread by `check`
            self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the learner thread failed: {type(self.error).__name__}: {self.error}") from self.error

    def stop(self) -> None:
        self.halt.set()
        self.join()
        self.check()


class ReplayLearner(Learner):
    """What the Q learners share: a frame replay filled by the actor, a target net, a replay-ratio cap, a
    clone's heads-only warm-up, and the loop; a subclass says what one `update` and `after_update` are."""

    def __init__(self, net, args, writer, n_envs: int, replay_ratio: float, publish_every: int, warmup: int = 0,
                 cql: float = 0.0):
        from hakisa.algos.dqn import FrameReplay

        super().__init__(net, args, writer)
        self.rb = FrameReplay(n_envs, args.buffer_size, net.obs_spec.frame_shape, net.obs_spec.stack)
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.replay_ratio, self.publish_every = replay_ratio, publish_every
        self.warmup, self.cql = warmup * 100, cql
        self.quiet_until = 0  # no weights handed over before this grad step
        self.rng = np.random.default_rng(args.seed)

    def guarded_modules(self):
        return (self.net, self.target)

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        # the replay is what a Q learner learns from: without it a resumed run waits learning_starts steps and
        # then learns from minutes of play where the killed run had tens (resume_pair: 11.45 vs 6.20 at 30 min)
        arrays = {f"replay.{k}": v for k, v in self.rb.snapshot(self.lock).items()}
        arrays.update({f"target.{k}": v.numpy() for k, v in clone_state(self.target)[0].items()})
        return arrays, {}

    def restore(self, arrays: dict[str, np.ndarray], scalars: dict, steps: int, grad_steps: int) -> bool:
        self.rb.load({k[7:]: v for k, v in arrays.items() if k.startswith("replay.")})
        self.target.load_state_dict({k[7:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("target.")})
        # readiness and the replay-ratio cap count from the run's start again, as if it had not stopped
        self.env_steps, self.grad_steps = steps, grad_steps
        return True

    def start_episode(self, i: int, obs) -> None:
        with self.lock:
            self.rb.start_episode(i, obs)

    def add(self, i: int, action, reward, term, trunc, next_obs, logp=None, value=None) -> None:
        with self.lock:
            self.rb.add(i, action, reward, term, trunc, next_obs)
            self.env_steps += 1

    def wait_for_data(self) -> bool:
        """True (after a short sleep) while the replay ratio is reached: it is an upper bound, never a debt."""
        ready = self.env_steps - self.args.learning_starts
        if ready <= 0 or self.grad_steps >= self.replay_ratio * ready:
            time.sleep(0.005)
            return True
        return False

    def loop(self) -> None:
        frozen = freeze_features(self.net, self.warmup > 0)
        while not self.halt.is_set():
            self.serve_snapshot()
            if frozen and self.grad_steps >= self.warmup:
                frozen = freeze_features(self.net, False)
            if self.wait_for_data():
                continue
            loss, q = self.update()
            if not self.healthy(loss=loss, q=q):
                continue
            self.after_update()
            if self.grad_steps % self.publish_every == 0 and self.grad_steps >= self.quiet_until:
                self.publish()
            self.log(loss, q)

    def update(self) -> tuple[float, float]:
        """One gradient step; (loss, mean Q of the taken actions)."""
        raise NotImplementedError

    def after_update(self) -> None:
        """After a healthy update: the target net's move (and whatever else the learner does then)."""

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.args.max_grad_norm)
        self.opt.step()
        self.grad_steps += 1

    def log(self, loss: float, q: float) -> None:
        if self.writer is not None and self.grad_steps % 100 == 0:
            ready = max(1, self.env_steps - self.args.learning_starts)
            self.writer.add_scalar("losses/td_loss", loss, self.env_steps)
            self.writer.add_scalar("losses/q_values", q, self.env_steps)
            self.writer.add_scalar("charts/replay_ratio", self.grad_steps / ready, self.env_steps)


class DQNLearner(ReplayLearner):
    """The live `dqn` learner: branching double DQN (`dqn.td_loss` on n-step samples of the frame replay), Adam,
    plus `cql` x `cql_penalty` when started from a clone, and a hard copy into the target net every
    `args.target_every` gradient steps. `args` is a `hakisa.algos.dqn.Args`."""

    def __init__(self, net, args, writer, n_envs: int, replay_ratio: float, publish_every: int, warmup: int = 0,
                 cql: float = 0.0):
        super().__init__(net, args, writer, n_envs, replay_ratio, publish_every, warmup, cql)
        self.opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1.5e-4)

    def update(self) -> tuple[float, float]:
        from hakisa.algos.dqn import cql_penalty, td_loss

        a = self.args
        with self.lock:
            b = self.rb.sample(a.batch_size, a.n_step, a.gamma, self.rng)
        loss, q_mean = td_loss(self.net, self.target, b)
        if self.cql > 0:
            loss = loss + self.cql * cql_penalty(self.net, b["obs"], b["actions"])
        self.step(loss)
        return loss.item(), q_mean.item()

    def after_update(self) -> None:
        if self.grad_steps % self.args.target_every == 0:
            self.target.load_state_dict(self.net.state_dict())


def q_from_policy(net: HakisaNet, obs: np.ndarray) -> None:
    """Start the Q heads where the policy is: each branch's advantages are the policy's logits, scaled so
    that on `obs` the best action's advantage over the branch mean is 1 on average (a reward's size; the raw
    logits of a sharp clone differ by tens, and the TD target's mean over branches would inherit that),
    and V(s) starts at 0. Greedy-Q then acts as the policy's argmax."""
    with torch.no_grad():
        h = net.features(torch.from_numpy(np.ascontiguousarray(obs)))
        for adv, pi in ((net.adv_cmd, net.pi_cmd), (net.adv_x, net.pi_x), (net.adv_y, net.pi_y)):
            lg = pi(h)
            gap = float((lg.max(1).values - lg.mean(1)).mean())
            scale = 1.0 / max(gap, 1e-3)
            adv.weight.copy_(pi.weight * scale)
            adv.bias.copy_(pi.bias * scale)
        net.q_v.weight.zero_()
        net.q_v.bias.zero_()


def freeze_features(net: HakisaNet, frozen: bool) -> bool:
    """Freeze (or free) the encoder and trunk: heads-only warm-up updates leave the features as they are."""
    for p in (*net.encoder.parameters(), *net.trunk.parameters()):
        p.requires_grad_(not frozen)
    return frozen
