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

Checkpoints are a directory: `model.safetensors` (tensors only) + `config.json` (everything needed to
rebuild the net). Loading executes no code: no pickle, no import strings beyond our own encoders.

The package: encoders.py (obs -> features, by name), net.py (`HakisaNet`, its heads and `act_mode`),
checkpoint.py (save, find, load). Import its names from `hakisa.model`.
"""
from hakisa.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    PRETRAINED_DIR,
    CheckpointError,
    checkpoint_obs_spec,
    find_checkpoint,
    load_checkpoint,
    read_checkpoint_config,
    save_checkpoint,
)
from hakisa.model.encoders import build_encoder, layer_init
from hakisa.model.net import FactorisedPolicy, HakisaNet, Heads, act_mode

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "PRETRAINED_DIR",
    "CheckpointError",
    "FactorisedPolicy",
    "HakisaNet",
    "Heads",
    "act_mode",
    "build_encoder",
    "checkpoint_obs_spec",
    "find_checkpoint",
    "layer_init",
    "load_checkpoint",
    "read_checkpoint_config",
    "save_checkpoint",
]
