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
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec

CHECKPOINT_FORMAT = "hakisa-checkpoint"


class CheckpointError(ValueError):
    """Not a Hakisa checkpoint, a corrupt one, or one made for another game's actions or observations."""

CHECKPOINT_VERSION = 1


class Heads(NamedTuple):
    cmd: torch.Tensor  # policy logits [B, n_commands]
    x: torch.Tensor  # policy logits [B, x_bins]
    y: torch.Tensor  # policy logits [B, y_bins]
    value: torch.Tensor  # V(s) [B]
    q_cmd: torch.Tensor  # branching-dueling Q [B, n_commands]
    q_x: torch.Tensor  # [B, x_bins]
    q_y: torch.Tensor  # [B, y_bins]


# ---- encoders ---------------------------------------------------------------------------------
def layer_init(layer: nn.Module, std: float = 2**0.5, bias: float = 0.0) -> nn.Module:
    # orthogonal init as in CleanRL/baselines: measurably faster PPO starts than PyTorch's default
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def _small_cnn(c: int, h: int = 90, w: int = 160) -> nn.Module:
    # Sized for 160x90: three strided convs take it to 32x8x4 = 1024 features in ~6.5 M MACs/frame,
    # several times cheaper than the Nature CNN, which matters on a 2-core CPU. Wide frames under 64 px
    # high (the duel's 80x45) get a 6x6/3 first layer instead of 8x8/4, so they end on a 2x5 map rather than
    # collapsing to 1x3.
    k, st = (6, 3) if h < 64 <= w else (8, 4)
    return nn.Sequential(
        layer_init(nn.Conv2d(c, 16, k, stride=st)),
        nn.ReLU(),
        layer_init(nn.Conv2d(16, 32, 4, stride=2)),
        nn.ReLU(),
        layer_init(nn.Conv2d(32, 32, 3, stride=2)),
        nn.ReLU(),
        nn.Flatten(),
    )


def _nature_cnn(c: int) -> nn.Module:
    # Mnih et al. 2015, the DQN/PPO Atari standard
    return nn.Sequential(
        layer_init(nn.Conv2d(c, 32, 8, stride=4)),
        nn.ReLU(),
        layer_init(nn.Conv2d(32, 64, 4, stride=2)),
        nn.ReLU(),
        layer_init(nn.Conv2d(64, 64, 3, stride=1)),
        nn.ReLU(),
        nn.Flatten(),
    )


class AddCoords(nn.Module):
    """Two extra input planes holding each pixel's x and y in [-1, 1] (CoordConv, Liu et al. 2018).

    Convolutions see what is where only relative to their window; a policy that must relate two places (a
    paddle's x to a falling item's x, the pointer's cell to a target's) learns that faster when every
    position also says where it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([x, xs, ys], 1)


def _fine_cnn(c: int) -> nn.Module:
    # Keeps an eighth of the frame's resolution (96x64 -> a 12x8 map, 160x90 -> 20x12) where "small" ends at
    # 2x4 on 96x64: things a few cells apart stay apart, which clicking a target or lining up under one needs.
    # Padding keeps the map a plain eighth of the frame whatever its size. ~7 M MACs a 96x64 frame.
    return nn.Sequential(
        AddCoords(),
        layer_init(nn.Conv2d(c + 2, 16, 5, stride=2, padding=2)),
        nn.ReLU(),
        layer_init(nn.Conv2d(16, 32, 3, stride=2, padding=1)),
        nn.ReLU(),
        layer_init(nn.Conv2d(32, 32, 3, stride=2, padding=1)),
        nn.ReLU(),
        nn.Flatten(),
    )


def _torchvision_cnn(name: str, c: int) -> nn.Module:
    try:
        import torchvision  # noqa: F401  (optional extra; imported only when asked for)
        from torchvision import models
    except Exception as e:  # ImportError, or a torchvision built against another torch
        raise ImportError(
            f"encoder 'torchvision:{name}' needs a working torchvision (pip install 'hakisa[vision]'); "
            f"importing it failed: {type(e).__name__}: {e}"
        ) from e
    if not hasattr(models, name):
        raise ValueError(f"torchvision.models has no {name!r}")
    backbone = getattr(models, name)(weights=None)
    # swap the first conv for one taking our stacked channels, drop the classifier
    first = next(m for m in backbone.modules() if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(c, first.out_channels, first.kernel_size, first.stride, first.padding, bias=first.bias is not None)
    for parent in backbone.modules():
        for k, child in parent.named_children():
            if child is first:
                setattr(parent, k, new)
    for attr in ("fc", "classifier", "head"):
        if hasattr(backbone, attr):
            setattr(backbone, attr, nn.Identity())
    return nn.Sequential(backbone, nn.Flatten())


def build_encoder(name: str, in_channels: int, height: int = 90, width: int = 160) -> nn.Module:
    if name == "small":
        return _small_cnn(in_channels, height, width)
    if name == "nature":
        return _nature_cnn(in_channels)
    if name == "fine":
        return _fine_cnn(in_channels)
    if name.startswith("torchvision:"):
        return _torchvision_cnn(name.split(":", 1)[1], in_channels)
    raise ValueError(f"unknown encoder {name!r}: 'small', 'nature', 'fine' or 'torchvision:<model name>'")


# ---- the network ------------------------------------------------------------------------------
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
        # channels-last: oneDNN's CPU convolutions run ~2x faster in NHWC (measured: small encoder,
        # minibatch 512 fwd+bwd, 2 threads: 216 -> 93 ms); the weights follow in __init__. The layout
        # change is done on the uint8 tensor (4x fewer bytes to move than after the float conversion).
        # Under bf16 the frames go straight to bfloat16: half the bytes of a float32 copy, which the
        # autocast would cast down anyway (measured: a 1024-frame 80x45 minibatch, 22 -> 12 ms).
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


# ---- checkpoints ------------------------------------------------------------------------------
def save_checkpoint(
    dir: str | os.PathLike, net: HakisaNet, config: dict | None = None, metrics: dict | None = None
) -> Path:
    """Write `dir/model.safetensors` + `dir/config.json` atomically.

    Everything goes to a temporary sibling directory first, which then replaces `dir`: a crash or
    Ctrl-C mid-save leaves the previous checkpoint intact, never a half-written one.
    """
    dir = Path(dir)
    dir.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "obs_spec": net.obs_spec.to_dict(),
        "input_map": net.input_map.to_dict(),
        "model": net.model_config(),
        "algo": _jsonable(config or {}),
        "metrics": _jsonable(metrics or {}),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{dir.name}.tmp-", dir=dir.parent))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(doc, indent=1))
        if dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dir.name}.old-", dir=dir.parent))
            os.replace(dir, old / "ckpt")  # rename is atomic; the window without `dir` is one syscall
            os.replace(tmp, dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dir


def read_checkpoint_config(dir: str | os.PathLike) -> dict:
    p = Path(dir) / "config.json"
    if not p.exists():
        raise CheckpointError(f"{dir} is not a Hakisa checkpoint (no config.json)")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: corrupt checkpoint config ({e})") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not a Hakisa checkpoint (format={fmt!r})")
    if doc.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {doc['version']} is newer than this Hakisa "
                              f"({CHECKPOINT_VERSION})")
    return doc


PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def find_checkpoint(dir: str | os.PathLike) -> Path:
    """A checkpoint dir as given, or for a run dir its best/ (else its latest checkpoint/).
    `pretrained:<name>` names a checkpoint shipped inside the package (hakisa/pretrained/<name>)."""
    if str(dir).startswith("pretrained:"):
        name = str(dir).split(":", 1)[1]
        path = PRETRAINED_DIR / name
        if not (path / "model.safetensors").exists():
            shipped = sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / "model.safetensors").exists())
            raise CheckpointError(f"no shipped checkpoint {name!r}; shipped: {shipped}")
        return path
    dir = Path(dir)
    for d in (dir, dir / "best", dir / "checkpoint"):
        if (d / "model.safetensors").exists():
            return d
    if (dir / "config.json").exists():  # its config says what it is (reading it tells a foreign file apart)
        return dir
    raise CheckpointError(f"{dir}: no checkpoint here (model.safetensors) nor in its best/ or checkpoint/")


def checkpoint_obs_spec(dir: str | os.PathLike) -> ObsSpec:
    """The observation spec a checkpoint (or run dir, or pretrained:<name>) was trained on, without loading weights."""
    return ObsSpec.from_dict(read_checkpoint_config(find_checkpoint(dir))["obs_spec"])


def load_checkpoint(
    dir: str | os.PathLike,
    input_map: InputMap | None = None,
    obs_spec: ObsSpec | None = None,
    map_location: str = "cpu",
) -> tuple[HakisaNet, dict]:
    """Rebuild the net from JSON + safetensors. Refuses a checkpoint made for another action map or
    observation shape: acting with it would press the wrong keys silently."""
    dir = find_checkpoint(dir)
    doc = read_checkpoint_config(dir)
    ck_map, ck_spec = InputMap.from_dict(doc["input_map"]), ObsSpec.from_dict(doc["obs_spec"])
    if input_map is not None and not ck_map.same_as(input_map):
        raise CheckpointError(
            f"checkpoint {dir} was trained for input map {ck_map.name!r} "
            f"({[c.name for c in ck_map.commands]}, x_bins={ck_map.x_bins}, y_bins={ck_map.y_bins}) but the env uses "
            f"{input_map.name!r} ({[c.name for c in input_map.commands]}, "
            f"x_bins={input_map.x_bins}, y_bins={input_map.y_bins}); "
            "refusing to act with the wrong action vocabulary"
        )
    if obs_spec is not None and ck_spec != obs_spec:
        raise CheckpointError(f"checkpoint {dir} expects observations {ck_spec} but the env gives {obs_spec}")
    m = doc["model"]
    net = HakisaNet(ck_spec, ck_map, encoder=str(m["encoder"]), hidden=int(m["hidden"]))
    try:
        net.load_state_dict(load_file(str(dir / "model.safetensors"), device=map_location))
    except (RuntimeError, OSError, SafetensorError) as e:  # truncated, or tensors of another shape than config.json's
        msg = str(e).splitlines()[0]
        raise CheckpointError(f"{dir}: corrupt checkpoint, its weights do not load ({msg})") from None
    return net, doc


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        try:
            return x.item()
        except (ValueError, RuntimeError):
            return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)
