"""Is it perception? Study a zoo recording with a probe encoder, then play the clone (issue 34, steer).

    python benchmarks/zoo/perception_probe.py oracle runs/zoo-1207b/steer/data --out runs/probe/steer-oracle
    python benchmarks/zoo/perception_probe.py relations runs/zoo-1207b/steer/data --out runs/probe/steer-rel

Runs `hakisa study DATA --out OUT --encoder NAME --eval-episodes 0`, then `hakisa play --game
benchmarks/zoo/steer.json --checkpoint OUT --episodes 20 --seed 2`, in this process with the probe encoders
added to Hakisa's encoder table (the checkpoints load only here). Last line: JSON.

- `oracle` (steer only, a diagnostic, never an agent to ship): 12 numbers read from each stacked frame by
  steer's gray levels (the head's, the food's and the body's centres, the food's offset from the head, the
  head's motion, the body's offset), then the usual trunk and heads. It answers "would the labels teach a clone
  to play if the clone could see where things are?"
- `relations`: generic: per plane, 32 learned gray levels, each with how much of the frame has it and the
  centre of that part (a soft histogram with centroids), plus on the newest plane every pair of levels'
  centre difference, gated by both being there, and each level's motion since the plane before.
- `rn`: the same levels as tokens of a relation network (Santoro et al. 2017): a shared MLP over every ordered
  pair, summed, beside the levels' own numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from hakisa.model import encoders as enc  # noqa: E402
from hakisa.model import net as net_module  # noqa: E402


class ColourCentroids(nn.Module):
    """Per plane and per learned gray level: log-share of the frame at that level, and its centre in [-1, 1].
    A 256-bin histogram with x and y sums per sample (no gradient needed through the image), then a soft
    assignment of the 256 levels to k learned ones (Gaussian, learned centre and width)."""

    def __init__(self, c: int, k: int = 32, width: float = 0.5):
        super().__init__()
        self.mu = nn.Parameter(torch.linspace(0.0, 1.0, k).repeat(c, 1))
        self.log_s = nn.Parameter(torch.full((c, k), math.log(width / k)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        lv = (x.float() * 255).round().clamp(0, 255).long().reshape(n * c, h * w)
        ys = torch.linspace(-1, 1, h).view(h, 1).expand(h, w).reshape(-1)
        xs = torch.linspace(-1, 1, w).view(1, w).expand(h, w).reshape(-1)
        ones = torch.ones_like(lv, dtype=torch.float)
        cnt = torch.zeros(n * c, 256).scatter_add_(1, lv, ones).view(n, c, 256)
        sx = torch.zeros(n * c, 256).scatter_add_(1, lv, xs.expand(n * c, -1).contiguous()).view(n, c, 256)
        sy = torch.zeros(n * c, 256).scatter_add_(1, lv, ys.expand(n * c, -1).contiguous()).view(n, c, 256)
        levels = torch.arange(256, dtype=torch.float) / 255
        table = torch.exp(-0.5 * ((levels.view(1, 256, 1) - self.mu.view(c, 1, -1))
                                  / self.log_s.exp().view(c, 1, -1)) ** 2)
        mass = torch.einsum("ncv,cvk->nck", cnt, table)
        cx = torch.einsum("ncv,cvk->nck", sx, table) / (mass + 1e-3)
        cy = torch.einsum("ncv,cvk->nck", sy, table) / (mass + 1e-3)
        return torch.log1p(mass) / math.log1p(h * w), cx, cy, mass


class Relations(nn.Module):
    def __init__(self, c: int, k: int = 32, scale: float = 5.0):
        super().__init__()
        self.col, self.scale = ColourCentroids(c, k), scale
        self.register_buffer("iu", torch.triu_indices(k, k, 1))

    def forward(self, x):
        share, cx, cy, _ = self.col(x)
        present = torch.tanh(share * 20)
        i, j = self.iu
        gate = present[:, -1, i] * present[:, -1, j]
        parts = [share.flatten(1), cx.flatten(1), cy.flatten(1),
                 (cx[:, -1, i] - cx[:, -1, j]) * gate * self.scale, (cy[:, -1, i] - cy[:, -1, j]) * gate * self.scale]
        if x.shape[1] > 1:
            g2 = present[:, -1] * present[:, -2]
            parts += [(cx[:, -1] - cx[:, -2]) * g2 * self.scale * 2, (cy[:, -1] - cy[:, -2]) * g2 * self.scale * 2]
        return torch.cat(parts, 1)


class RelationNet(nn.Module):
    def __init__(self, c: int, k: int = 32, out: int = 256):
        super().__init__()
        self.col, self.k = ColourCentroids(c, k), k
        self.g = nn.Sequential(nn.Linear(18, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
        self.f = nn.Sequential(nn.Linear(128 + c * k * 3, out), nn.ReLU())
        ii, jj = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        self.register_buffer("ii", ii[ii != jj])
        self.register_buffer("jj", jj[ii != jj])

    def forward(self, x):
        n = x.shape[0]
        share, cx, cy, mass = self.col(x)
        present = torch.sigmoid((mass - 1.5) * 4)
        moved = x.shape[1] > 1
        mx = (cx[:, -1] - cx[:, -2]) * 10 if moved else torch.zeros_like(cx[:, -1])
        my = (cy[:, -1] - cy[:, -2]) * 10 if moved else torch.zeros_like(cy[:, -1])
        mu = self.col.mu[-1].view(1, self.k).expand(n, -1)
        tok = torch.stack([share[:, -1], cx[:, -1], cy[:, -1], mx, my, mu * 4 - 2], 2)
        ti, tj = tok[:, self.ii], tok[:, self.jj]
        w = (present[:, -1, self.ii] * present[:, -1, self.jj]).unsqueeze(2)
        rel = (self.g(torch.cat([ti, tj, (ti - tj) * 5], 2)) * w).sum(1) / 10
        flat = torch.cat([share.flatten(1), cx.flatten(1), cy.flatten(1)], 1)
        return self.f(torch.cat([rel, flat], 1))


class SteerOracle(nn.Module):
    """Steer's head (gray 171), food (>= 200) and body (99) found by level below the HUD (6 rows at 96x64)."""

    def forward(self, x):
        v = (x.float() * 255).round()
        _, _, h, w = v.shape
        ys = torch.linspace(-1, 1, h).view(1, h, 1).expand(1, h, w)
        xs = torch.linspace(-1, 1, w).view(1, 1, w).expand(1, h, w)
        play = torch.zeros(1, h, w)
        play[:, 6:] = 1

        def centre(m):
            m = m.float() * play
            k = m.sum((1, 2))
            return (m * xs).sum((1, 2)) / k.clamp_min(1), (m * ys).sum((1, 2)) / k.clamp_min(1), (k > 0).float()

        prev, cur = v[:, -2], v[:, -1]
        hx, hy, hk = centre((cur - 171).abs() <= 6)
        px, py, _ = centre((prev - 171).abs() <= 6)
        fx, fy, fk = centre(cur >= 200)
        bx, by, _ = centre((cur - 99).abs() <= 8)
        return torch.stack([hx, hy, fx, fy, (fx - hx) * 5, (fy - hy) * 5, (hx - px) * 10, (hy - py) * 10,
                            (bx - hx) * 5, (by - hy) * 5, hk, fk], 1)


def _with_trunk_input(module: nn.Module, c: int, h: int, w: int) -> nn.Module:
    with torch.no_grad():
        n = module(torch.zeros(1, c, h, w)).shape[1]
    return nn.Sequential(module, enc.layer_init(nn.Linear(n, 256)), nn.ReLU())


PROBES = {
    "oracle": lambda c, h, w: _with_trunk_input(SteerOracle(), c, h, w),
    "relations": lambda c, h, w: _with_trunk_input(Relations(c), c, h, w),
    "rn": lambda c, h, w: RelationNet(c),
}


def install() -> None:
    """Add the probes to the encoder table `HakisaNet` builds from."""
    plain = enc.build_encoder

    def build(name: str, in_channels: int, height: int = 90, width: int = 160):
        if name in PROBES:
            return PROBES[name](in_channels, height, width)
        return plain(name, in_channels, height, width)

    net_module.build_encoder = build


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", choices=sorted(PROBES))
    ap.add_argument("data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--game", default=str(ROOT / "benchmarks" / "zoo" / "steer.json"))
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    install()
    import contextlib
    import io

    from hakisa.cli import main as hakisa

    out = {}
    for verb, argv in (("study", ["study", args.data, "--out", args.out, "--encoder", args.probe,
                                  "--eval-episodes", "0", "--no-progress"]),
                       ("play", ["play", "--game", args.game, "--checkpoint", args.out, "--episodes",
                                 str(args.episodes), "--seed", str(args.seed), "--out", args.out + "-play"])):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = hakisa(argv)
        sys.stderr.write(buf.getvalue())
        if rc:
            raise SystemExit(f"perception_probe: hakisa {verb} exited {rc}")
        out[verb] = last_json(buf.getvalue())
    best = out["study"]["best"]
    play = out["play"]
    print(json.dumps({"probe": args.probe, "data": args.data,
                      "balanced_acc_cmd": best["balanced_acc_cmd"], "acc_cmd_on_onsets": best["acc_cmd_on_onsets"],
                      "study_steps": out["study"]["steps"], "study_seconds": out["study"]["seconds"],
                      "mean_score": play["mean_score"], "score_ci95": play["score_ci95"],
                      "command_shares": play.get("command_shares"), "episodes": play.get("episodes")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
