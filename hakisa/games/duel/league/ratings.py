"""Which boss is stronger: the paired promotion test (a sign test on decisive pairs) and the Bradley-Terry
ratings of every boss and knight."""
from __future__ import annotations

import math

import numpy as np

from hakisa.games.duel.league.pool import Knight, play


def _batches(knights: list[Knight]) -> list[list[Knight]]:
    """The knights as play() batches: the fast ones together, the pixel ones (which render) apart."""
    groups = [[k for k in knights if k.kind != "pixels"], [k for k in knights if k.kind == "pixels"]]
    return [g for g in groups if g]


def wilson_lower(p: float, n: int, z: float = 1.96) -> float:
    """The 95 % Wilson score interval's lower bound of a share p of n."""
    if n == 0:
        return 0.0
    d = 1 + z * z / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / d



def compare(new: dict | None, old: dict | None, knights: list[Knight], fights: int, seed: int,
            tier: str = "normal", rate: float = 0.55) -> dict:
    """Paired test of boss `new` against boss `old`: both fight each knight on the same seeds. A pair is
    decisive when exactly one of the two bosses wins it; `new` is promoted when it takes >= `rate` of the
    decisive pairs with the 95 % Wilson lower bound above 1/2, over >= 400 pairs played (a sign test,
    McNemar's). Pairs both bosses win, or both lose, say nothing about which boss is stronger; scoring them
    by HP margins (as the first league did) promoted a boss that won less and refused one that won more, and
    the Elo table, which counts wins, disagreed with it. Also reports each boss's plain win rate."""
    per = -(-fights // len(knights))
    seeds = np.random.default_rng(seed).integers(0, 2**32, per, dtype=np.uint64)
    won = [[], []]
    for group in _batches(knights):
        nk = len(group)
        res = play(group, np.repeat(np.arange(nk), 2 * per), [new, old], np.tile(np.repeat([0, 1], per), nk),
                   np.tile(seeds, 2 * nk), tier)
        w = (res["winner"] == 2).reshape(nk, 2, per)
        for j in (0, 1):
            won[j].append(w[:, j].ravel())
    wn, wo = np.concatenate(won[0]), np.concatenate(won[1])
    n, takes, gives = len(wn), int((wn & ~wo).sum()), int((wo & ~wn).sum())
    d = takes + gives
    p = takes / d if d else 0.5
    lb = wilson_lower(p, d)
    return {"pairs": n, "decisive": d, "new_takes": round(p, 4), "wilson_lower": round(lb, 4),
            "new_win_rate": round(float(wn.mean()), 4), "old_win_rate": round(float(wo.mean()), 4),
            "promoted": bool(p >= rate and lb > 0.5 and n >= 400), "rate_needed": rate}



def ratings(bosses: dict[str, dict | None], knights: list[Knight], fights: int, seed: int,
            tier: str = "normal") -> dict:
    """Every boss against every knight (`fights` each, the same seeds), then Bradley-Terry strengths by
    minorisation-maximisation (Hunter 2004), on the Elo scale (400 log10), scripted boss = 1000. A half win
    each way against every opponent is added as a prior, so an unbeaten player's rating stays finite."""
    names = list(bosses)
    seeds = np.random.default_rng(seed).integers(0, 2**32, fights, dtype=np.uint64)
    wins = {}  # (boss, knight) -> boss wins
    for group in _batches(knights):
        nk, nb = len(group), len(names)
        res = play(group, np.repeat(np.arange(nk), nb * fights), [bosses[b] for b in names],
                   np.tile(np.repeat(np.arange(nb), fights), nk), np.tile(seeds, nk * nb), tier)
        w = (res["winner"] == 2).reshape(nk, nb, fights).sum(2)
        for i, k in enumerate(group):
            for j, b in enumerate(names):
                wins[(b, k.name)] = int(w[i, j])
    players = names + [k.name for k in knights]
    ix = {p: i for i, p in enumerate(players)}
    W = np.zeros((len(players), len(players)))
    for (b, k), w in wins.items():
        W[ix[b], ix[k]] += w + 0.5
        W[ix[k], ix[b]] += fights - w + 0.5
    N = W + W.T
    r = np.ones(len(players))
    for _ in range(2000):
        denom = (N / (r[:, None] + r[None, :])).sum(1)
        new = W.sum(1) / denom
        new /= np.exp(np.log(new).mean())
        if np.abs(new - r).max() < 1e-10:
            r = new
            break
        r = new
    elo = 400 * np.log10(r)
    anchor = elo[ix["scripted"]] if "scripted" in ix else 0.0
    table = {p: round(float(elo[ix[p]] - anchor + 1000), 1) for p in players}
    return {"elo": table, "boss_wins": {f"{b} vs {k}": w for (b, k), w in wins.items()}, "fights_each": fights,
            "tier": tier}
