"""One network, three ways to train it: the encoder + factorised heads every Hakisa learner shares, and
its checkpoints. The package: encoders.py (obs -> features, by name), net.py (`HakisaNet`, its policy,
value and branching-dueling Q heads, `act_mode`; the data flow and the x/y masking are described there),
checkpoint.py (safetensors + JSON: save, find, load; loading runs no code). Import its names from
`hakisa.model`.
"""
from hakisa.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    PRETRAINED_DIR,
    CheckpointError,
    checkpoint_obs_spec,
    find_checkpoint,
    load_checkpoint,
    load_training_state,
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
    "load_training_state",
    "read_checkpoint_config",
    "save_checkpoint",
]
