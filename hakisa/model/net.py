"""One network, three ways to train it: the encoder + factorised heads every Hakisa learner shares.

    obs uint8 [B, stack*C, H, W] ─encoder─▶ features ─trunk─▶ h ─┬─ policy logits: command | x | y
                                                                  ├─ value V(s)            (PPO)
                                                                  └─ branching-dueling Q   (DQN)

The action is a triple [command, x, y]. x and y only mean something for mouse commands
(`input_map.uses_xy`), so their log-probs, entropies and Q losses are multiplied by that mask: a
keyboard-only step must not teach the pointer heads anything (their gradient is exactly zero).

Q heads follow Tavakoli et al. 2018 ("Action Branching Architectures"): Q_d(s, a) = V(s) + A_d(s, a)
- mean_a' A_d(s, a'), one shared state value and one advantage branch per action dimension, so the
output grows with the SUM of the branch sizes, not their product.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from hakisa.input_map import InputMap
from hakisa.model.encoders import build_encoder, layer_init
from hakisa.preprocess import ObsSpec


class Heads(NamedTuple):
    """Every head's output for a batch of B observations (`HakisaNet.forward`): the policy logits, V(s) for PPO,
    and the branching-dueling Q values, one branch per action dimension, for DQN."""

    cmd: torch.Tensor  # policy logits [B, n_commands]
    x: torch.Tensor  # policy logits [B, x_bins]
    y: torch.Tensor  # policy logits [B, y_bins]
    value: torch.Tensor  # V(s) [B]
    q_cmd: torch.Tensor  # branching-dueling Q [B, n_commands]
    q_x: torch.Tensor  # [B, x_bins]
    q_y: torch.Tensor  # [B, y_bins]


class FactorisedPolicy:
    """How a [command, x, y] policy picks and scores actions, given its three heads' logits. Shared by the
    pixel HakisaNet and by any other net that acts in the same action space (hakisa.algos.distill's
    state teacher), so both sample, mask and score actions one way. Needs `self.uses_xy`."""

    def pick(self, logits, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """One index per row from each head's logits, canonical when the three heads are given. Sampling is
        Gumbel-max (argmax of logits minus log of Exp(1) noise): the law of Categorical(logits).sample(), but one
        fused op per head, which matters at a live step of ~1 ms."""
        if sample:
            logits = [lg - torch.empty_like(lg).exponential_(generator=generator).log() for lg in logits]
        a = torch.stack([lg.argmax(1) for lg in logits], 1)
        return self.canonical(a) if a.shape[1] == 3 else a

    def canonical(self, a: torch.Tensor) -> torch.Tensor:
        m = self.uses_xy[a[:, 0]]
        return torch.stack([a[:, 0], a[:, 1] * m, a[:, 2] * m], 1)

    def dist_logp_entropy(self, cmd: torch.Tensor, x: torch.Tensor, y: torch.Tensor, actions: torch.Tensor):
        """Joint log-prob and entropy of `actions` [B, 3] from logits; x/y count only where used."""
        m = self.uses_xy[actions[:, 0]].float()
        lp = [F.log_softmax(lg, dim=1) for lg in (cmd, x, y)]
        logp_d = [l.gather(1, actions[:, i : i + 1]).squeeze(1) for i, l in enumerate(lp)]
        ent_d = [-(l.exp() * l).sum(1) for l in lp]
        # multiplying by a 0/1 mask (not indexing) keeps shapes static; masked terms get exactly 0 grad
        logp = logp_d[0] + m * (logp_d[1] + logp_d[2])
        ent = ent_d[0] + m * (ent_d[1] + ent_d[2])
        return logp, ent


class HakisaNet(FactorisedPolicy, nn.Module):
    """The pixel agent for one `ObsSpec` and one `InputMap`: an encoder (`encoders.py`) and a ReLU trunk under
    policy heads (command, x, y), a value head and branching-dueling Q heads.

    Takes uint8 observations [B, stack*C, H, W] and scales them itself. `act` is the one way an agent picks
    canonical actions [B, 3]; `model_config()` is what a checkpoint stores to rebuild it. `bf16` is a runtime
    switch (not saved) that runs the encoder under bfloat16 autocast; the heads stay float32."""

    def __init__(self, obs_spec: ObsSpec, input_map: InputMap, encoder: str = "small", hidden: int = 256):
        super().__init__()
        self.obs_spec, self.input_map = obs_spec, input_map
        self.encoder_name, self.hidden = encoder, hidden
        c, h, w = obs_spec.shape
        self.encoder = build_encoder(encoder, c, h, w)
        with torch.no_grad():
            n_feat = self.encoder(torch.zeros(1, c, h, w)).shape[1]
        self.trunk = nn.Sequential(layer_init(nn.Linear(n_feat, hidden)), nn.ReLU())
        n_cmd, nx, ny = (int(v) for v in input_map.nvec)
        # small-std policy init: near-uniform first policy (CleanRL's 0.01), value/Q std 1
        self.pi_cmd = layer_init(nn.Linear(hidden, n_cmd), 0.01)
        self.pi_x = layer_init(nn.Linear(hidden, nx), 0.01)
        self.pi_y = layer_init(nn.Linear(hidden, ny), 0.01)
        self.v = layer_init(nn.Linear(hidden, 1), 1.0)
        self.q_v = layer_init(nn.Linear(hidden, 1), 1.0)
        self.adv_cmd = layer_init(nn.Linear(hidden, n_cmd), 1.0)
        self.adv_x = layer_init(nn.Linear(hidden, nx), 1.0)
        self.adv_y = layer_init(nn.Linear(hidden, ny), 1.0)
        # a buffer, so it follows .to(device); derived from the input map, so not saved
        self.register_buffer("uses_xy", torch.as_tensor(input_map.uses_xy, dtype=torch.bool), persistent=False)
        self.keys_only = int(input_map.x_bins) == 1 and int(input_map.y_bins) == 1
        # Run the convolutions in bfloat16 (CPU autocast; AMX/AVX512-BF16 make them ~1.5-3x faster).
        # A runtime switch, not saved: weights stay float32 and the heads always run in float32, so
        # log-probs and values keep full precision.
        self.bf16 = False
        self.encoder.to(memory_format=torch.channels_last)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        # uint8 in, scaled here: replay buffers and rollouts stay 4x smaller than float32
        # channels-last: oneDNN's CPU convolutions run ~2x faster in NHWC (measured: benchmarks/README.md,
        # "Notes moved out of code comments"); the weights follow in __init__. The layout change is done on
        # the uint8 tensor (4x fewer bytes to move than after the float conversion).
        # Under bf16 the frames go straight to bfloat16: half the bytes of a float32 copy, which the
        # autocast would cast down anyway.
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        try:
            x = obs.contiguous(memory_format=torch.channels_last).to(dtype).mul_(1.0 / 255.0)
        except RuntimeError:  # under torch.func.vmap (ES/GA populations) layouts cannot be queried
            x = obs.to(dtype) / 255.0
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                z = self.encoder(x)
            return self.trunk(z.float())
        return self.trunk(self.encoder(x))

    def forward(self, obs: torch.Tensor) -> Heads:
        h = self.features(obs)
        v = self.q_v(h)
        # branching dueling: each branch's advantages minus their own mean, plus the shared V
        q = [v + a - a.mean(dim=1, keepdim=True) for a in (self.adv_cmd(h), self.adv_x(h), self.adv_y(h))]
        return Heads(self.pi_cmd(h), self.pi_x(h), self.pi_y(h), self.v(h).squeeze(1), *q)

    def policy(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cmd logits, x logits, y logits, value), skipping the Q heads."""
        return self.policy_heads(self.features(obs))

    def policy_heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`policy` from trunk features (for a learner that also feeds them to heads of its own)."""
        return self.pi_cmd(h), self.pi_x(h), self.pi_y(h), self.v(h).squeeze(1)

    def q_values(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        heads = self(obs)
        return heads.q_cmd, heads.q_x, heads.q_y

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> torch.Tensor:
        """The one way a Hakisa agent chooses: canonical actions LongTensor [B, 3] (x/y 0 where unused).

        mode: "sample" draws from the policy heads, "argmax" takes their mode, "q" is greedy on the branching
        Q heads (how a DQN agent acts). `act_mode(config, ...)` says which one a checkpoint plays with."""
        if mode == "q":
            return self.canonical(torch.stack([q.argmax(1) for q in self.q_values(obs)], 1))
        if mode not in ("sample", "argmax"):
            raise ValueError(f"act mode {mode!r}: use 'sample', 'argmax' or 'q'")
        if self.keys_only:  # one x/y bin: those heads always say 0, so only the command head runs (~0.3 ms a step)
            a = self.pick([self.pi_cmd(self.features(obs))], mode == "sample", generator)
            return self.canonical(torch.cat([a, torch.zeros(len(a), 2, dtype=a.dtype)], 1))
        return self.pick(self.policy(obs)[:3], mode == "sample", generator)

    def log_prob_entropy(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cmd, x, y, _ = self.policy(obs)
        return self.dist_logp_entropy(cmd, x, y, actions)

    def model_config(self) -> dict:
        return {"encoder": self.encoder_name, "hidden": self.hidden}


def act_mode(config: dict, head: str = "auto", deterministic: bool | None = True) -> str:
    """The one rule for how a checkpoint plays: its `HakisaNet.act` mode. head "q" (or "auto" on a checkpoint a DQN
    learner wrote, `config["algo"]["algo"]`) is greedy on Q, since DQN trains only the Q heads; otherwise the policy
    heads, "argmax" or "sample". deterministic None: the mode the checkpoint asks for (`config["algo"]["act"]`, which
    `hakisa study` measures), else argmax."""
    if head not in ("auto", "policy", "q"):
        raise ValueError(f"head {head!r}: use 'auto', 'policy' or 'q'")
    algo_cfg = (config or {}).get("algo", {})
    algo = str(algo_cfg.get("algo", "")).lower()
    if head == "q" or (head == "auto" and algo == "dqn"):
        return "q"
    if deterministic is None:
        return algo_cfg.get("act") if algo_cfg.get("act") in ("argmax", "sample") else "argmax"
    return "argmax" if deterministic else "sample"
