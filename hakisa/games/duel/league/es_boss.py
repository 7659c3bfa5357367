"""The boss learner: OpenAI-ES over a brain's integers against a knight pool, and the clone of the scripted
boss that generation 1 starts from."""
from __future__ import annotations

import numpy as np
import torch

from hakisa.games.duel.brain import (
    FEATURES,
    N_OUT,
    OUT_SLICES,
    SHIFT_DIV,
    W_MAX,
    brain_from_params,
    brain_params,
    features,
    infer,
)
from hakisa.games.duel.league.args import Args
from hakisa.games.duel.league.pool import EXPERTS, RULES, Knight, Policy, boss_fitness, play


def _param_scale(hidden: int) -> np.ndarray:
    """ES moves weights by sigma and biases by 64 sigma: a bias adds to sums of ~64-sized features."""
    d = len(FEATURES)
    return np.concatenate([np.ones(hidden * d), np.full(hidden, SHIFT_DIV), np.ones(N_OUT * hidden),
                           np.full(N_OUT, SHIFT_DIV)])


def train_boss(start: dict, knights: list[Knight], a: Args, name: str, seed: int, bar=None) -> tuple[dict, list]:
    """OpenAI-ES (antithetic, centred ranks, Adam; hakisa.algos.es) on the brain's integers against `knights`,
    every member on the same fights per iteration (common random numbers). Returns (brain, curve)."""
    from hakisa.algos.es import centered_ranks

    if a.pfsp_weighting not in ("variance", "hard"):
        raise ValueError(f"pfsp_weighting must be variance or hard, not {a.pfsp_weighting!r}")
    hidden = len(start["b1"])
    scale = _param_scale(hidden)
    theta = torch.tensor(brain_params(start) / scale, dtype=torch.float64)
    opt = torch.optim.Adam([theta], lr=a.lr)
    pols = [Policy(k, seed) for k in knights]
    rng = np.random.default_rng(seed)
    curve = []
    half = a.pop_size // 2
    for it in range(a.es_iters):
        eps = rng.standard_normal((half, theta.numel()))
        members = np.concatenate([theta.numpy() + a.sigma * eps, theta.numpy() - a.sigma * eps])
        cands = [brain_from_params(m * scale, hidden, name) for m in members]
        seeds = rng.integers(0, 2**32, a.fights, dtype=np.uint64)
        # one batch: every knight meets every member on the same seeds
        nk, p, f = len(pols), a.pop_size, a.fights
        res = play(pols, np.repeat(np.arange(nk), p * f), cands, np.tile(np.repeat(np.arange(p), f), nk),
                   np.tile(seeds, nk * p), a.tier)
        per = boss_fitness(res).reshape(nk, p, f).mean(2)  # knight x member
        # prioritised fictitious self-play (AlphaStar): weight each knight by how often it still beats the
        # boss. Knights every member beats add noise and no direction; so do knights no member beats, which
        # "hard" weighting favours most. "variance" weighting (the knights that win about half) is the one that
        # moved a stalled league (measured on gen5: benchmarks/README.md, "Notes moved out of code comments")
        lost = 1 - (res["winner"] == 2).reshape(nk, p * f).mean(1)
        if not a.pfsp:
            w = np.ones(nk)
        elif a.pfsp_weighting == "variance":
            w = lost * (1 - lost)
        else:
            w = lost**a.pfsp
        fit = (w / w.sum()) @ per if w.sum() > 0 else per.mean(0)
        r = centered_ranks(fit)
        grad = (r[:half] - r[half:]) @ eps / (a.pop_size * a.sigma)
        theta.grad = torch.from_numpy(-grad)
        opt.step()
        curve.append(float(fit.mean()))
        if bar is not None:
            bar.set_postfix(es=f"{it + 1}/{a.es_iters}", fitness=f"{fit.mean():.3f}")
    return brain_from_params(theta.numpy() * scale, hidden, name), curve



def _scripted_decisions(fights: int, seed: int) -> list[tuple]:
    """Every decision the scripted boss makes against the expert knights (the sim's recorder hook), per
    decision kind: [(kind, features, the scripted choice, the legal choices)] as tensors."""
    from hakisa.games.duel.env import _Fights

    data = {0: [], 1: [], 2: []}

    def record(kind, s, sel, scripted, legal):
        f = np.flatnonzero(sel)
        if f.size:
            data[kind].append((features(RULES, {k: v[f] for k, v in s.items()}, kind), scripted[f], legal[f]))

    pols = [Policy(k, seed) for k in EXPERTS]
    fts = _Fights(fights * len(pols), "normal", seed, 4, None, 0, 0, 0, 0)
    fts.state_only = True
    fts.sim.brains.recorder = record
    fts.reset(seed=seed)
    kidx = np.repeat(np.arange(len(pols)), fights)
    cmd = np.zeros(len(kidx), np.int64)
    while not fts.sim.done.all():
        for i, p in enumerate(pols):
            cmd[kidx == i] = p(fts, kidx == i)
        fts.step(cmd)
    sets = []
    for kind, parts in data.items():
        if parts:
            x, y, legal = (np.concatenate(p) for p in zip(*parts))
            sets.append((kind, torch.from_numpy(x).float(), torch.from_numpy(y), torch.from_numpy(legal)))
    return sets


def clone_scripted(hidden: int = 24, fights: int = 128, steps: int = 1500, seed: int = 0) -> tuple[dict, float]:
    """A learned brain that imitates the scripted one: the start of generation 1, so self-play refines a boss
    that already fights instead of a random one. Records every decision the scripted boss makes against the
    expert knights (the sim's recorder hook), fits the integer network's float twin by cross-entropy, rounds.
    Returns (brain, agreement of the rounded brain with the scripted decisions)."""
    sets = _scripted_decisions(fights, seed)
    torch.manual_seed(seed)
    d = len(FEATURES)
    w1 = torch.empty(hidden, d).uniform_(-24, 24).requires_grad_()
    b1 = torch.zeros(hidden, requires_grad=True)
    w2 = torch.empty(N_OUT, hidden).uniform_(-8, 8).requires_grad_()
    b2 = torch.zeros(N_OUT, requires_grad=True)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=0.3)
    for _ in range(steps):
        loss = 0.0
        for kind, x, y, legal in sets:
            h = torch.relu((x @ w1.T + b1 * SHIFT_DIV) / SHIFT_DIV)
            lo, hi = OUT_SLICES[kind]
            logits = (h @ w2[lo:hi].T + b2[lo:hi] * SHIFT_DIV) / 256.0  # a temperature: argmax ignores it
            logits = logits.masked_fill(~legal, -1e9)
            loss = loss + torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            w1.clamp_(-W_MAX, W_MAX)
            w2.clamp_(-W_MAX, W_MAX)
    theta = np.concatenate([w1.detach().numpy().ravel(), (b1.detach() * SHIFT_DIV).numpy(),
                            w2.detach().numpy().ravel(), (b2.detach() * SHIFT_DIV).numpy()])
    brain = brain_from_params(theta, hidden, "scripted-clone")
    agree = sum(int((infer(brain["w1"], brain["b1"], brain["w2"], brain["b2"], x.numpy().astype(np.int64), kind,
                           legal.numpy()) == y.numpy()).sum()) for kind, x, y, legal in sets)
    return brain, agree / max(sum(len(y) for _, _, y, _ in sets), 1)
