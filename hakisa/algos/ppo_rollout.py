"""PPO's experience collection (`Rollout`), shared by the serial trainer (hakisa/algos/ppo.py) and Ray's
rollout workers (hakisa/algos/ppo_ray.py)."""
from __future__ import annotations

import numpy as np
import torch

from hakisa.algos.common import EpisodeStats, RewardScaler
from hakisa.algos.privileged import Privileged
from hakisa.model import HakisaNet


class Rollout:
    """PPO's experience collection on one SAME_STEP vector env, kept apart from the update so that the
    serial trainer and Ray's rollout workers (hakisa.algos.ppo_ray) run the very same steps: reward
    normalisation, the time-limit bootstrap and the episode bookkeeping cannot drift between the two.
    What spans rollouts lives here: the next observation, the running std of the discounted return,
    each env's unfinished episode. `collect(net)` fills the [num_steps, n] buffers and returns the
    episodes that finished; `next_value(net)` is the bootstrap value GAE needs after the last step."""

    def __init__(self, envs, args, priv: Privileged | None = None):  # args: a ppo.Args
        space = getattr(envs, "single_observation_space", None) or envs.observation_space
        self.envs, self.args, self.priv, self.n = envs, args, priv, envs.num_envs
        shape = (args.num_steps, self.n)
        # frames stay uint8 (4x less memory and copying than float32); a vector obs (a state) keeps its dtype
        dtype = torch.from_numpy(np.zeros(0, space.dtype)).dtype
        if len(space.shape) == 3:  # [T, n, C, H, W] in channels-last memory: each step's frames are laid out for the
            # encoder once, as it reads them, and the update's minibatches are then row gathers of this very
            # memory (`minibatch_frames`) with no copy of the whole rollout (measured: benchmarks/README.md)
            c, h, w = space.shape
            self._nhwc = torch.zeros(shape + (h, w, c), dtype=dtype)
            self.obs = self._nhwc.permute(0, 1, 4, 2, 3)
        else:
            self._nhwc, self.obs = None, torch.zeros(shape + space.shape, dtype=dtype)
        self.act = torch.zeros(shape + (3,), dtype=torch.long)
        self.logp, self.rew, self.done, self.val = (torch.zeros(shape) for _ in range(4))
        next_obs, _ = envs.reset(seed=args.seed)
        self.next_obs = torch.from_numpy(np.asarray(next_obs))
        self.next_state = self._state() if priv is not None else None
        self.state = torch.zeros(shape + (self.next_state.shape[1],)) if priv is not None else None
        self.next_done = torch.zeros(self.n)
        self.scaler = RewardScaler(self.n, args.gamma)
        self.stats = EpisodeStats(self.n)

    def _state(self) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.envs.state(), np.float32))

    def collect(self, net: HakisaNet) -> list[dict]:
        args, priv, envs = self.args, self.priv, self.envs
        finished = []
        for step in range(args.num_steps):
            if self._nhwc is not None:  # interleaving the channel planes: 2x faster than a permuted copy_
                torch.stack(self.next_obs.unbind(1), -1, out=self._nhwc[step])
            else:
                self.obs[step] = self.next_obs
            x = self.obs[step]  # frames: channels-last, as the encoder reads them
            self.done[step] = self.next_done
            with torch.inference_mode():
                lc, lx, ly, value = net.policy(x)
                a = net.pick((lc, lx, ly), sample=True)
                logp, _ = net.dist_logp_entropy(lc, lx, ly, a)
                if priv is not None:
                    self.state[step] = self.next_state
                    if priv.critic is not None:
                        value = priv.value(self.next_state)
            self.act[step], self.logp[step], self.val[step] = a, logp, value
            obs, reward, term, trunc, infos = envs.step(a.numpy())
            env_reward = np.asarray(reward, dtype=np.float32)
            reward = env_reward.copy()
            if args.norm_reward:
                reward = self.scaler.step(env_reward, np.logical_or(term, trunc))
            if np.any(trunc & ~term) and "final_obs" in infos:
                # a time-limit cut: bootstrap with V(final obs) rather than treating it as a death
                idx = np.flatnonzero(trunc & ~term & infos.get("_final_obs", trunc))
                if len(idx):
                    # the pixel V head (it learns the same returns as a state critic): the final state is gone
                    fin = torch.from_numpy(np.stack([infos["final_obs"][i] for i in idx]))
                    with torch.inference_mode():  # V is in normalised units, like reward here
                        reward[idx] += args.gamma * net.policy(fin)[3].numpy()
            self.rew[step] = torch.from_numpy(reward)
            self.next_obs = torch.from_numpy(np.asarray(obs))
            self.next_state = self._state() if priv is not None else None
            self.next_done = torch.from_numpy(np.logical_or(term, trunc).astype(np.float32))
            finished.extend(self.stats.update(env_reward, term, trunc, infos))
        return finished

    def next_value(self, net: HakisaNet) -> torch.Tensor:
        with torch.inference_mode():
            if self.priv is not None and self.priv.critic is not None:
                return self.priv.value(self.next_state)
            return net.policy(self.next_obs)[3]
