"""PPO's privileged heads, for envs that can show their true state (`envs.state()`, PettingZoo's name): in
training only, the value that scores actions may read it while the policy reads pixels (the asymmetric
actor-critic of Pinto et al. 2018), and the trunk may learn to predict it. They live here, outside the
HakisaNet, so a checkpoint never contains them. `ppo.Args.critic` and `aux_coef` ask for them."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from hakisa.model import layer_init


class Privileged(nn.Module):
    """Training-only heads that read the env's true state: a critic V(state) and a head that predicts the
    state from the policy's trunk features. Kept out of the HakisaNet, so nothing privileged is saved."""

    def __init__(self, state_dim: int, hidden: int, critic: bool, aux: bool):
        super().__init__()
        mlp = lambda: nn.Sequential(
            layer_init(nn.Linear(state_dim, 256)), nn.ReLU(), layer_init(nn.Linear(256, 256)), nn.ReLU(),
            layer_init(nn.Linear(256, 1), 1.0),
        )
        self.critic = mlp() if critic else None
        self.aux = layer_init(nn.Linear(hidden, state_dim), 1.0) if aux else None

    def value(self, state: torch.Tensor) -> torch.Tensor:
        return self.critic(state).squeeze(1)

    def loss(self, args, h: torch.Tensor, state: torch.Tensor, ret: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(())
        if self.critic is not None:
            out = out + args.vf_coef * 0.5 * ((self.value(state) - ret) ** 2).mean()
        if self.aux is not None:
            out = out + args.aux_coef * ((self.aux(h) - state) ** 2).mean()
        return out


def privileged_heads(envs, args, hidden: int) -> Privileged | None:
    """The Privileged heads `args` (a ppo.Args) asks for, or None; a clear error when the env cannot show its state."""
    if args.critic not in ("pixels", "state"):
        raise ValueError(f"critic={args.critic!r}: use 'pixels' or 'state'")
    if args.critic == "pixels" and not args.aux_coef:
        return None
    if not callable(getattr(envs, "state", None)):
        raise ValueError(
            f"critic={args.critic!r} / aux_coef={args.aux_coef}: this env has no state() to read the true "
            "state from (a simulator may offer one; a live window never does)"
        )
    dim = int(np.asarray(envs.state()).shape[1])
    return Privileged(dim, hidden, args.critic == "state", args.aux_coef > 0)
