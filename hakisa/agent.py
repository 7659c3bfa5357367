"""An agent as the verbs load it: a checkpoint (or an untrained net, the baseline) with the act mode it asks
for, and its policy as a function of numpy frames. `hakisa play`, `record --agent`, play_live and the
benchmarks load agents here.
"""
from __future__ import annotations

import numpy as np

from hakisa.model import find_checkpoint


def chosen_mode(args) -> bool | None:
    """--argmax: True, --sample: False, neither: None (the checkpoint's own preference)."""
    return True if getattr(args, "argmax", False) else False if getattr(args, "sample", False) else None


def numpy_policy(net, mode: str):
    """`net.act(obs, mode)` for numpy frames: uint8 [C,H,W] -> action [3], or a batch [B,C,H,W] -> [B,3]."""
    import torch

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(obs))
        single = x.ndim == 3
        with torch.inference_mode():
            a = net.act(x.unsqueeze(0) if single else x, mode).numpy()
        return a[0] if single else a

    return act


def load_agent(checkpoint, game, deterministic: bool | None, head: str = "auto", seed: int = 0):
    """(net, act, its act mode, checkpoint path or None) for a checkpoint, or for a fresh untrained net (checkpoint None
    or "untrained") built for the game's observation and input map: the baseline every agent should beat."""
    from hakisa.model import HakisaNet, act_mode, load_checkpoint

    if checkpoint in (None, "untrained"):
        import torch

        torch.manual_seed(seed)
        net, doc, checkpoint = HakisaNet(game.obs_spec, game.input_map), {}, None
    else:
        checkpoint = find_checkpoint(checkpoint)
        net, doc = load_checkpoint(checkpoint, input_map=game.input_map)  # refuses another game's actions
    net.eval()
    mode = act_mode(doc, head, deterministic)
    return net, numpy_policy(net, mode), mode, checkpoint

