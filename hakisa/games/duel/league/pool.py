"""The knights a boss meets, and one batch of fights between knights and boss brains.

A knight is the scripted expert (at a roll margin, seen-only, with input lag), a StateNet on the true state
(a league generation's, an exploiter, a clone of the page's player) or a pixel checkpoint; `play` runs one
fight per slot, every slot its own knight, brain and seed, in one sim batch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hakisa.games.duel.sim import KEYS_TO_COMMAND, load_rules

RULES = load_rules()


@dataclass
class Knight:
    """A knight of the pool. kind: "expert" (expert.py on the true state), "state" (a StateNet directory,
    e.g. a league generation's or a distill run's teacher/), "pixels" (a checkpoint, through rendered frames)."""
    name: str
    kind: str = "expert"
    path: str = ""
    roll_margin: int = 0
    seen_only: bool = False
    delay: int = 0
    """ticks its keys arrive late (a page's input lag)"""


EXPERTS = [Knight("expert"), Knight("expert-m4-lag4", roll_margin=4, delay=4),
           Knight("expert-seen-m2", roll_margin=2, seen_only=True)]



class Policy:
    """A knight as commands for some of a batch's fights (a duel env's _Fights): the expert's keys, a StateNet's
    or a pixel net's sampled command (a fixed generator: the same fights, the same play). Input lag is a queue
    of its commands, `delay // 4` decisions long: keys held for 4 ticks that arrive 4k ticks late are the
    keys chosen k decisions ago."""

    def __init__(self, k: Knight, seed: int = 0):
        from hakisa.input_map import InputMap

        if k.delay % 4:
            raise ValueError(f"knight {k.name}: delay must be a multiple of the 4-tick decision period")
        self.k, self.gen, self.pixels = k, torch.Generator().manual_seed(seed), k.kind == "pixels"
        self.queue: list[np.ndarray] = []
        if k.kind == "state":
            from hakisa.algos.distill import StateNet

            cols = json.loads((Path(k.path) / "config.json").read_text())["columns"]
            self.net = StateNet.load(k.path, InputMap.load("duel"), cols).eval()
        elif self.pixels:
            from hakisa.model import load_checkpoint

            self.net, _ = load_checkpoint(k.path, InputMap.load("duel"))
            self.net.eval()
        elif k.kind != "expert":
            raise ValueError(f"knight {k.name}: kind must be expert, state or pixels, not {k.kind!r}")

    def __call__(self, fights, sel: np.ndarray) -> np.ndarray:
        cmd = self._choose(fights, sel)
        if not self.k.delay:
            return cmd
        self.queue.append(cmd)
        return self.queue.pop(0) if len(self.queue) > self.k.delay // 4 else np.zeros_like(cmd)

    def _choose(self, fights, sel: np.ndarray) -> np.ndarray:
        s = {k: v[sel] for k, v in fights.sim.state.items()}
        if self.k.kind == "expert":
            from hakisa.games.duel.expert import expert_keys

            return KEYS_TO_COMMAND[expert_keys(s, roll_margin=self.k.roll_margin, seen_only=self.k.seen_only)]
        with torch.no_grad():
            if self.pixels:
                return self.net.act(torch.from_numpy(fights.obs[sel]), "sample", generator=self.gen)[:, 0].numpy()
            from hakisa.games.duel.env import state_targets

            x, names = state_targets(s, RULES)
            cmd, *_ = self.net.policy(torch.from_numpy(x[:, [names.index(c) for c in self.net.columns]]))
            return self.net.pick([cmd], True, self.gen)[:, 0].numpy()



def play(knights: list[Knight | Policy], kidx, brains: list[dict | None], bidx, seeds, tier: str = "normal") -> dict:
    """One fight per slot, all in one batch: slot i's knight is knights[kidx[i]], its boss brains[bidx[i]], its
    seed seeds[i]. Returns int arrays winner (1 knight, 2 boss), knight_hp, boss_hp, ticks."""
    from hakisa.games.duel.env import _Fights

    pols = [k if isinstance(k, Policy) else Policy(k) for k in knights]
    kidx = np.asarray(kidx)
    pixels = [p for p in pols if p.pixels]
    if len({p.net.obs_spec for p in pixels}) > 1:
        raise ValueError("pixel knights of one batch must share an obs spec")
    f = _Fights(len(kidx), tier, 0, 4, pixels[0].net.obs_spec if pixels else None, 0.0, 0.0, 0.0, 0.0)
    f.state_only = not pixels
    f.sim.set_brains(brains, bidx)
    f.reset(seed=[int(s) for s in seeds])
    for p in pols:
        p.queue = []
    cmd = np.zeros(len(kidx), np.int64)
    while not f.sim.done.all():
        for i, p in enumerate(pols):
            sel = kidx == i
            if sel.any():
                cmd[sel] = p(f, sel)
        f.step(cmd)
    s = f.sim.state
    return {"winner": s["winner"].copy(), "knight_hp": s["k_hp"].copy(), "boss_hp": s["b_hp"].copy(),
            "ticks": s["tick"].copy()}



def boss_fitness(res: dict) -> np.ndarray:
    """Per fight: 1 for a boss win, + half the knight's HP taken, - half the boss's HP lost (fractions)."""
    k, b = RULES["knight"]["hp"], RULES["boss"]["hp"]
    return ((res["winner"] == 2) + 0.5 * (k - res["knight_hp"]) / k - 0.5 * (b - res["boss_hp"]) / b)
