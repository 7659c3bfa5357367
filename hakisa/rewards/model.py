"""RewardNet: a small CNN that reads a crop when hand-written readers fail.

The model is a *reader*, not a reward: it classifies a crop of a region into labelled classes (e.g.
"in play" / "menu", or HP buckets), each class maps to a value, it is trained with a held-out
validation split that is reported (a reader nobody validated is a guess), and its reading feeds the
same DeltaReward as every other reader, so the reward stays a change, never a level.
Save/load is safetensors + JSON; loading executes no code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hakisa.rewards.readers import Region, crop


@dataclass
class RewardNetConfig:
    """What a `RewardNet` reads and how it is built; saved as JSON beside its weights (`reward_net.json`).

    classes: the labels it tells apart; values: the reading each class stands for; region/canvas: the crop, in
    pixels of a `canvas` (w, h) frame (rescaled to the frame actually grabbed, as `readers.crop` does)."""

    classes: list[str]
    values: list[float] | None = None  # the reading of each class (default: its index)
    region: Region | None = None  # where to crop in canvas pixels; None = the whole frame
    canvas: tuple[int, int] | None = None
    size: tuple[int, int] = (64, 32)  # (w, h) the crop is resized to
    gray: bool = False
    width: int = 16  # channels of the first conv

    @property
    def channels(self) -> int:
        return 1 if self.gray else 3


class RewardNet(nn.Module):
    """A learned screen reader: three small convolutions and a linear head classifying one crop into `cfg.classes`.

    `read(frame)` crops a whole BGR(A) frame and returns the predicted class's value, a reading like any
    hand-written reader's. `fit` trains on labelled crops and returns held-out accuracy beside the majority
    share; `save`/`load` use safetensors + JSON (loading runs no code)."""

    def __init__(self, cfg: RewardNetConfig):
        super().__init__()
        self.cfg, c, w = cfg, cfg.channels, cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten())
        self.head = nn.Linear(2 * w * 8, len(cfg.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, h, w] -> logits [B, n_classes]."""
        return self.head(self.body(x.float() / 255.0))

    # ---- pixels -> input ------------------------------------------------------------------------
    def prepare(self, images: list[np.ndarray] | np.ndarray, already_cropped: bool = True) -> torch.Tensor:
        """BGR(A) crops (or whole frames, cropped here when already_cropped=False) -> uint8 tensor."""
        cfg, out = self.cfg, []
        for img in images:
            if not already_cropped and cfg.region is not None:
                img = crop(img, cfg.region, cfg.canvas)
            img = cv2.resize(np.ascontiguousarray(img[..., :3]), cfg.size, interpolation=cv2.INTER_AREA)
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None] if cfg.gray else img
            out.append(img.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(out))

    @torch.no_grad()
    def predict(self, images, already_cropped: bool = True) -> np.ndarray:
        self.eval()
        return self(self.prepare(images, already_cropped)).argmax(-1).numpy()

    @torch.no_grad()
    def read(self, frame: np.ndarray) -> float:
        """The reading for one whole frame: the value of the predicted class."""
        k = int(self.predict([frame], already_cropped=False)[0])
        return float(self.cfg.values[k]) if self.cfg.values else float(k)

    # ---- training -------------------------------------------------------------------------------
    def fit(self, crops: list[np.ndarray], labels: list[int], val_frac: float = 0.25, epochs: int = 30,
            lr: float = 3e-3, batch: int = 32, seed: int = 0) -> dict:
        """Train on labelled crops with a stratified-by-shuffle validation split; returns metrics.

        Light augmentation (brightness jitter, 1-px shifts) because a handful of screenshots is
        all a user will label, and screen captures differ by exactly such small amounts.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a model this small trains fastest on one thread (and never spin-waits on a busy box)
        try:
            return self._fit(crops, labels, val_frac, epochs, lr, batch, seed)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, crops, labels, val_frac, epochs, lr, batch, seed) -> dict:
        g = torch.Generator().manual_seed(seed)
        x, y = self.prepare(crops), torch.as_tensor(np.asarray(labels), dtype=torch.long)
        perm = torch.randperm(len(y), generator=g)
        n_val = max(1, int(round(len(y) * val_frac)))
        vi, ti = perm[:n_val], perm[n_val:]
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        for _ in range(epochs):
            self.train()
            for b in ti[torch.randperm(len(ti), generator=g)].split(batch):
                xb = x[b].float()
                xb = xb * (0.8 + 0.4 * torch.rand(len(b), 1, 1, 1, generator=g))
                dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
                xb = torch.roll(xb, (dy, dx), dims=(2, 3)).clamp(0, 255)
                loss = F.cross_entropy(self(xb), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.eval()
        with torch.no_grad():
            acc = lambda idx: float((self(x[idx]).argmax(-1) == y[idx]).float().mean())  # noqa: E731
            counts = np.bincount(y[vi].numpy(), minlength=len(self.cfg.classes))
            return {"train_acc": acc(ti), "val_acc": acc(vi), "n_train": len(ti), "n_val": len(vi),
                    "val_majority": float(counts.max() / counts.sum()), "final_loss": float(loss)}

    # ---- save / load ----------------------------------------------------------------------------
    def save(self, directory: str | Path, metrics: dict | None = None) -> None:
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(d / "reward_net.safetensors"))
        cfg = dict(vars(self.cfg))
        (d / "reward_net.json").write_text(json.dumps({"config": cfg, "metrics": metrics or {}}, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> "RewardNet":
        from safetensors.torch import load_file

        d = Path(directory)
        meta = json.loads((d / "reward_net.json").read_text())["config"]
        for k in ("region", "canvas", "size"):
            if meta.get(k) is not None:
                meta[k] = tuple(meta[k])
        net = cls(RewardNetConfig(**meta))
        net.load_state_dict(load_file(str(d / "reward_net.safetensors")))
        return net.eval()

