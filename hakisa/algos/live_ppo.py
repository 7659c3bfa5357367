"""PPO on live windows: a background learner thread fed per-window segments by the live trainer's actor.

`PPOLearner` batches each window's segment of `num_steps` steps, computes their advantages with ppo.py's `gae`
(rewards scaled by the rollout's `RewardScaler`) and runs ppo.py's clipped update (`update_policy`). From a
studied clone it first warms up V alone (`warmup` updates) and can keep a cloning term on the teacher's store
(`demos`, weight `demo_coef` decaying by `demo_decay` per update). The actor never waits: see
hakisa/algos/live_learners.py (`Learner`, its guard and the weight hand-over).
"""
from __future__ import annotations

import queue

import numpy as np
import torch

from hakisa.algos.common import RewardScaler
from hakisa.algos.live_learners import Learner


class PPOLearner(Learner):
    """Batches of per-window segments arrive through a queue of one; while the learner is busy the actor
    fills the next batch. If a second batch is ready before the first was taken, the older is dropped
    (counted in `dropped`): the actor never waits."""

    def __init__(self, net, args, writer, n_envs: int, warmup: int = 0, demos=None, demo_coef: float = 0.0,
                 demo_decay: float = 1.0):
        super().__init__(net, args, writer)
        self.demos, self.demo_coef, self.demo_decay = demos, demo_coef, demo_decay
        self.rng = np.random.default_rng(args.seed)
        self.opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        self.warmup, self.n_envs = warmup, n_envs
        self.batch_steps = args.num_steps * n_envs
        self.q: queue.Queue = queue.Queue(maxsize=1)
        self.seg = [[] for _ in range(n_envs)]
        self.pending, self.dropped, self.updates = 0, 0, 0
        self.scaler = RewardScaler(n_envs, args.gamma)

    def start_episode(self, i: int, obs) -> None:
        pass

    def add(self, i: int, action, reward, term, trunc, next_obs, logp=None, value=None) -> None:
        self.env_steps += 1
        self.seg[i].append((self._obs[i], action, logp, value, reward, term or trunc))
        self._obs[i] = next_obs
        self.pending += 1
        if self.pending >= self.batch_steps:
            batch = [(i, s, self._obs[i].copy()) for i, s in enumerate(self.seg) if s]
            self.seg, self.pending = [[] for _ in range(self.n_envs)], 0
            try:
                self.q.put_nowait(batch)
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
                self.q.put_nowait(batch)

    def begin(self, obs: np.ndarray) -> None:
        self._obs = [o.copy() for o in obs]

    def loop(self) -> None:
        while not self.halt.is_set():
            self.serve_snapshot()
            try:
                batch = self.q.get(timeout=0.05)
            except queue.Empty:
                continue
            u = self.update(*self._gae(batch))
            self.updates += 1
            if not self.healthy(v_loss=u["v_loss"].item()):
                continue
            self.publish()
            if self.writer is not None:
                self.writer.add_scalar("losses/value_loss", u["v_loss"].item(), self.env_steps)
                self.writer.add_scalar("losses/approx_kl", float(u["approx_kl"].item()), self.env_steps)
                self.writer.add_scalar("charts/dropped_batches", self.dropped, self.env_steps)

    def update(self, obs, act, logp, adv, ret, val) -> dict:
        from hakisa.algos.ppo import update_policy

        a, net = self.args, self.net
        if self.updates < self.warmup:  # V only, on the clone's frozen features: the policy does not move
            for _ in range(a.update_epochs):
                with torch.no_grad():
                    h = net.features(obs)
                v_loss = 0.5 * ((net.v(h).squeeze(1) - ret) ** 2).mean()
                self.opt.zero_grad(set_to_none=True)
                (a.vf_coef * v_loss).backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), a.max_grad_norm)
                self.opt.step()
                self.grad_steps += 1
            return {"v_loss": v_loss, "approx_kl": torch.tensor(0.0)}
        coef = self.demo_coef * self.demo_decay ** (self.updates - self.warmup)
        aux = (lambda: coef * self._demo_loss()) if self.demos is not None and coef > 1e-3 else None
        u = update_policy(net, self.opt, a, obs, act, logp, adv, ret, val, max(1, len(act) // a.num_minibatches),
                          aux_loss=aux)
        self.grad_steps += u["grad_steps"]
        return u

    def _demo_loss(self) -> torch.Tensor:
        from hakisa.algos.bc import bc_loss

        data, weights = self.demos
        b = data.sample(self.args.num_steps, self.rng)
        loss, _ = bc_loss(
            self.net,
            {"obs": torch.from_numpy(b["obs"]), "actions": torch.from_numpy(b["actions"])},
            weights,
            self.net.uses_xy,
        )
        return loss

    def _gae(self, batch):
        """GAE per window's segment (ppo.py's `gae`), with V of the obs after its last step from the current
        net; rewards scaled as ppo.py's norm_reward does (`RewardScaler`)."""
        from hakisa.algos.ppo import gae

        a = self.args
        out = {k: [] for k in ("obs", "act", "logp", "adv", "ret", "val")}
        for i, seg, last_obs in batch:
            rew = np.array([s[4] for s in seg], np.float64)
            done = np.array([s[5] for s in seg], bool)  # the step ended its game
            val = np.array([s[3] for s in seg], np.float32)
            if a.norm_reward:
                rew = self.scaler.segment(i, rew, done)
            with torch.inference_mode():
                last_v = self.net.policy(torch.from_numpy(last_obs[None]))[3]
            started = torch.from_numpy(np.r_[False, done[:-1]].astype(np.float32))[:, None]  # gae's "done"
            adv, ret = gae(torch.from_numpy(np.asarray(rew, np.float32))[:, None], torch.from_numpy(val)[:, None],
                           started, last_v, float(done[-1]), a.gamma, a.gae_lambda)
            out["obs"].append(np.stack([s[0] for s in seg]))
            out["act"].append(np.stack([s[1] for s in seg]))
            out["logp"].append(np.array([s[2] for s in seg], np.float32))
            out["adv"].append(adv[:, 0].numpy())
            out["ret"].append(ret[:, 0].numpy())
            out["val"].append(val)
        return tuple(torch.from_numpy(np.concatenate(out[k])) for k in ("obs", "act", "logp", "adv", "ret", "val"))
