"""The encoders: obs uint8 [B, stack*C, H, W] -> features, by name (`small`, `nature`, `fine`, `torchvision:*`)."""
from __future__ import annotations

import torch
import torch.nn as nn


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
