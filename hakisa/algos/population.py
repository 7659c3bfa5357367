"""A population of policies as flat weight vectors, and its evaluation in one vector env: what GA and ES share.

Only the policy's parameters are a member's genome (`policy_param_names`); the value and Q heads play no
part in a greedy policy. `evaluate_population` runs every member at once with `torch.func.vmap`, member i
on sub-envs [i*m, (i+1)*m), and is tested against one-member-at-a-time runs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, vmap

from hakisa.model import HakisaNet


# ---- flat policy parameters ------------------------------------------------------------------
def policy_param_names(net: HakisaNet) -> list[str]:
    # the value and Q heads play no part in a greedy policy; evolving them would waste search
    return [k for k, _ in net.named_parameters() if not k.startswith(("v.", "q_v.", "adv_"))]


def get_flat(net: HakisaNet) -> torch.Tensor:
    p = dict(net.named_parameters())
    return torch.cat([p[k].detach().reshape(-1) for k in policy_param_names(net)])


def set_flat(net: HakisaNet, flat: torch.Tensor) -> None:
    i = 0
    p = dict(net.named_parameters())
    with torch.no_grad():
        for k in policy_param_names(net):
            n = p[k].numel()
            p[k].copy_(flat[i:i + n].view_as(p[k]))
            i += n


def unflatten(net: HakisaNet, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """[P, D] -> {name: [P, *shape]} for vmap'd functional_call (non-evolved params broadcast)."""
    out, i = {}, 0
    p = dict(net.named_parameters())
    for k in policy_param_names(net):
        n = p[k].numel()
        out[k] = flat[:, i:i + n].reshape((flat.shape[0],) + p[k].shape)
        i += n
    return out


# ---- evaluation: member i plays on sub-envs [i*m, (i+1)*m) -------------------------------------
@torch.no_grad()
def evaluate_population(
    envs, net: HakisaNet, flat: torch.Tensor, episodes: int, seed: int, max_steps: int = 5_000
) -> np.ndarray:
    """Mean return of each member's first episode on each of its `episodes` sub-envs -> [P].

    envs must have exactly P * episodes sub-envs. Sub-env j of every member gets the same env seed
    (common random numbers: members differ only by their weights, which makes selection fairer).
    """
    P, m = flat.shape[0], episodes
    if envs.num_envs != P * m:
        raise ValueError(f"need {P * m} sub-envs (pop {P} x {m} episodes), got {envs.num_envs}")
    params = {f"net.{k}": v for k, v in unflatten(net, flat).items()}
    wrapper = _PolicyOnly(net)

    def policy(p, obs):  # one member's evolved params, its m observations -> greedy actions
        cmd, x, y, _ = functional_call(wrapper, p, (obs,))  # params not in p: the net's own
        return torch.stack([cmd.argmax(1), x.argmax(1), y.argmax(1)], 1)

    batched = vmap(policy)
    obs, _ = _reset(envs, [seed * 1000 + j for _ in range(P) for j in range(m)])
    ret = np.zeros(P * m)
    done = np.zeros(P * m, bool)
    for _ in range(max_steps):
        o = torch.from_numpy(np.asarray(obs)).reshape((P, m) + obs.shape[1:])
        a = net.canonical(batched(params, o).reshape(P * m, 3)).numpy()
        obs, r, term, trunc, _ = envs.step(a)
        ret += np.where(done, 0.0, r)
        done |= np.logical_or(term, trunc)
        if done.all():
            break
    return ret.reshape(P, m).mean(1)


class _PolicyOnly(torch.nn.Module):
    # functional_call runs forward(); this wrapper's forward is the policy path (no Q heads)
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, obs):
        return self.net.policy(obs)


def _reset(envs, seeds: list[int]):
    try:
        return envs.reset(seed=seeds)
    except (TypeError, ValueError, AssertionError):
        return envs.reset(seed=seeds[0])  # envs that only take one base seed
