"""Augmentation of stacked frames (DrQ's random shift), with the click labels moved along: study and srdqn use it."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def random_shift(obs: torch.Tensor, pad: int, rng: np.random.Generator, with_offsets: bool = False):
    """DrQ's augmentation: pad each stack by `pad` edge pixels and crop it back at a random offset, the same
    offset for every frame of a stack. A few dozen recorded games are few frames; shifted copies teach the
    encoder that a thing a few pixels away is the same thing, without any label beyond the actions.
    with_offsets: also return how far each stack's content moved ([n] x and y pixels, + is right/down)."""
    n, c, h, w = obs.shape
    padded = F.pad(obs.float(), (pad, pad, pad, pad), mode="replicate")
    dx, dy = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)]).to(obs.dtype)
    return (out, pad - dx, pad - dy) if with_offsets else out


def shift_clicks(actions: torch.Tensor, uses_xy: torch.Tensor, moved_x, moved_y, size: tuple[int, int],
                 bins: tuple[int, int]) -> torch.Tensor:
    """The x/y labels of shifted frames, moved with their content: a click on a target that the shift moved 3
    pixels right lands 3 pixels right, in whichever cell that is. Keeps the shift honest on a mouse game, where
    a fixed label on a moved frame would teach the pointer to miss by up to the shift."""
    a = actions.clone()
    m = uses_xy[a[:, 0]]
    for col, moved, length, nb in ((1, moved_x, size[0], bins[0]), (2, moved_y, size[1], bins[1])):
        if nb <= 1:
            continue
        cell = length / nb
        centre = (a[:, col].double() + 0.5) * cell + torch.as_tensor(moved, dtype=torch.float64)
        new = (centre / cell).floor().clamp(0, nb - 1).long()
        a[:, col] = torch.where(m, new, a[:, col])
    return a


def shift_batch(obs: torch.Tensor, actions: torch.Tensor, alt: torch.Tensor | None, pad: int,
                rng: np.random.Generator, uses_xy: torch.Tensor, bins: tuple[int, int]):
    """A study minibatch shifted (`random_shift`) with its click labels moved along (`shift_clicks`), and the
    second labels too where a frame has one (alt: -1 rows where none)."""
    obs, mx, my = random_shift(obs, pad, rng, with_offsets=True)
    size = (obs.shape[-1], obs.shape[-2])
    actions = shift_clicks(actions, uses_xy, mx, my, size, bins)
    if alt is not None:
        has = alt[:, 0] >= 0
        alt[has] = shift_clicks(alt[has], uses_xy, mx[has.numpy()], my[has.numpy()], size, bins)
    return obs, actions, alt
