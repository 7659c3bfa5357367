"""A boss that learns: boss brains and knights trained against each other in the numpy sim.

    hakisa duel boss-train --league runs/boss --generations 5   # each generation promoted only if it beats the last
    hakisa duel boss-elo --league runs/boss                     # the rating table over every boss and knight
    hakisa duel boss-learn --league runs/boss fights.jsonl      # fine-tune on real page fights; promote or reject
    hakisa duel serve --league runs/boss                        # the page offers the promoted brains

One generation (PufferLib's self-play pool, AlphaStar's league, on a small scale):
  1. boss: OpenAI-ES over the brain's integers (brain.py), from the last promoted brain (generation 1: from a
     clone of the scripted brain), against the knight pool: the scripted expert at several roll margins and
     input lags, and the state knights of past generations. Fitness per fight: the boss's win, plus half the
     knight's HP it took, minus half its own HP lost (a graded signal where wins are rare).
  2. promotion: the candidate and its predecessor fight the same knights on the same seeds (>= 400 pairs); a
     pair is decisive when only one of them wins it. Promoted when the candidate takes >= `promote_rate` of
     the decisive pairs with the 95 % Wilson lower bound above 1/2 (a sign test); else ES goes on (up to
     `tries` rounds) or the league stops.
  3. knight: PPO on the true state (distill.StateNet) from the last knight, against a pool of every promoted
     boss and the scripted one, so neither side overfits one opponent. Before each boss generation, an
     exploiter (AlphaStar's main exploiter): the last knight trained against the boss to beat alone, so the
     pool holds a knight that finds that boss's weaknesses; ES and the promotion test both meet it.
  4. ratings: every boss against every knight at Normal; Bradley-Terry maximum likelihood on the Elo scale
     (order-free, unlike sequential Elo), anchored at scripted boss = 1000.
Pixel knights (a `hakisa train` checkpoint, e.g. pretrained:duel-ppo) join the promotion and the ratings
(`pixel_knights`); they are too slow to sit in the ES loop on 2 cores.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hakisa.envs.duel.brain import (
    FEATURES,
    N_OUT,
    OUT_SLICES,
    SHIFT_DIV,
    W_MAX,
    brain_from_params,
    brain_params,
    features,
    infer,
    load_brain,
    save_brain,
    shipped_brains,
)
from hakisa.envs.duel.sim import KEYS_TO_COMMAND, load_rules

RULES = load_rules()


# ---- knights -------------------------------------------------------------------------------------
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


class _Policy:
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
            from hakisa.envs.duel.expert import expert_keys

            return KEYS_TO_COMMAND[expert_keys(s, roll_margin=self.k.roll_margin, seen_only=self.k.seen_only)]
        with torch.no_grad():
            if self.pixels:
                return self.net.act(torch.from_numpy(fights.obs[sel]), "sample", generator=self.gen)[:, 0].numpy()
            from hakisa.envs.duel.env import state_targets

            x, names = state_targets(s, RULES)
            cmd, *_ = self.net.policy(torch.from_numpy(x[:, [names.index(c) for c in self.net.columns]]))
            return self.net.pick([cmd], True, self.gen)[:, 0].numpy()


def play(knights: list[Knight | _Policy], kidx, brains: list[dict | None], bidx, seeds, tier: str = "normal") -> dict:
    """One fight per slot, all in one batch: slot i's knight is knights[kidx[i]], its boss brains[bidx[i]], its
    seed seeds[i]. Returns int arrays winner (1 knight, 2 boss), knight_hp, boss_hp, ticks."""
    from hakisa.envs.duel.env import _Fights

    pols = [k if isinstance(k, _Policy) else _Policy(k) for k in knights]
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


# ---- the boss learner ----------------------------------------------------------------------------
@dataclass
class Args:
    generations: int = 5
    """boss generations to add (each must be promoted)"""
    es_iters: int = 30
    """ES updates per training round of a boss"""
    tries: int = 3
    """training rounds a candidate gets to pass promotion before the league stops"""
    pop_size: int = 12
    """ES population (antithetic pairs)"""
    fights: int = 16
    """fights per ES member per knight"""
    pfsp: float = 1.0
    """ES weights knights by the fights they still win (below); 0: all alike"""
    pfsp_weighting: str = "variance"
    """variance: by w (1 - w), w the share of fights the knight wins (the knights that win about half);
    hard: by w^pfsp (it favours the knights no boss beats)"""
    sigma: float = 4.0
    """ES perturbation, in weight units (int8); biases move 64x as far"""
    lr: float = 1.0
    """Adam's step on the brain's integers"""
    hidden: int = 24
    """hidden units of a new brain"""
    clone_fights: int = 128
    """fights per expert knight whose scripted-boss decisions the first brain imitates"""
    clone_steps: int = 1500
    """Adam steps of a clone (the scripted brain's, a page knight's)"""
    tier: str = "normal"
    """the tier the boss trains and is judged at"""
    promote_fights: int = 1920
    """paired fights of a promotion test (>= 400). Against a strong boss few pairs are decisive (39 of 480 for
    gen5 against gen4), too few for the sign test to see a 60 % edge; 1920 give it about 150"""
    promote_rate: float = 0.55
    """the share of decisive pairs (one boss wins, the other loses) a candidate must take"""
    knight_seconds: float = 60.0
    """PPO seconds per knight generation (0: no knight training)"""
    knight_envs: int = 64
    """fights a knight trains on at once"""
    exploiter_seconds: float = 180.0
    """PPO seconds of each generation's exploiter: a knight trained against the boss to beat alone (0: none)"""
    pixel_knights: str = "pretrained:duel-ppo"
    """comma-separated pixel checkpoints that join promotion tests and ratings ('' for none)"""
    elo_fights: int = 48
    """fights per boss-knight pair in the ratings"""
    seed: int = 0
    """seeds ES noise, fights and knights"""
    progress: bool = True
    """show progress bars"""


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
    pols = [_Policy(k, seed) for k in knights]
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
        # boss. Knights every member beats add noise and no direction; so do knights no member beats (the
        # seen-only expert wins ~94 %), which "hard" weighting favours most: gen5 stalled under both, and
        # "variance" weighting (the knights that win about half) is the one that moved it
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


def clone_scripted(hidden: int = 24, fights: int = 128, steps: int = 1500, seed: int = 0) -> tuple[dict, float]:
    """A learned brain that imitates the scripted one: the start of generation 1, so self-play refines a boss
    that already fights instead of a random one. Records every decision the scripted boss makes against the
    expert knights (the sim's recorder hook), fits the integer network's float twin by cross-entropy, rounds.
    Returns (brain, agreement of the rounded brain with the scripted decisions)."""
    from hakisa.envs.duel.env import _Fights

    data = {0: [], 1: [], 2: []}

    def record(kind, s, sel, scripted, legal):
        f = np.flatnonzero(sel)
        if f.size:
            data[kind].append((features(RULES, {k: v[f] for k, v in s.items()}, kind), scripted[f], legal[f]))

    pols = [_Policy(k, seed) for k in EXPERTS]
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
    torch.manual_seed(seed)
    d = len(FEATURES)
    w1 = torch.empty(hidden, d).uniform_(-24, 24).requires_grad_()
    b1 = torch.zeros(hidden, requires_grad=True)
    w2 = torch.empty(N_OUT, hidden).uniform_(-8, 8).requires_grad_()
    b2 = torch.zeros(N_OUT, requires_grad=True)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=0.3)
    sets = []
    for kind, parts in data.items():
        if parts:
            x, y, legal = (np.concatenate(p) for p in zip(*parts))
            sets.append((kind, torch.from_numpy(x).float(), torch.from_numpy(y), torch.from_numpy(legal)))
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


# ---- promotion and ratings -----------------------------------------------------------------------
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


# ---- knights that learn --------------------------------------------------------------------------
def train_knight(bosses: list[dict | None], out: Path, seconds: float, seed: int, start: str | None = None,
                 num_envs: int = 64, progress: bool = True) -> dict:
    """PPO on the true state (distill.StateNet, distill's teacher settings) against a pool of bosses (fight
    i meets bosses[i % len]), from the knight in `start` if given. Saves the StateNet in `out`."""
    from hakisa.algos import ppo
    from hakisa.algos.distill import Args as DArgs
    from hakisa.algos.distill import StateNet, StateObs
    from hakisa.envs.duel.env import DuelVecEnv

    envs = DuelVecEnv(num_envs, tier="normal", seed=seed, boss=[bosses[i % len(bosses)] for i in range(num_envs)])
    envs.state_only = True
    senv = StateObs(envs)
    d = DArgs()
    net = (StateNet.load(start, senv.input_map, senv.names) if start
           else StateNet(senv.names, senv.input_map, d.teacher_hidden))
    targs = ppo.Args(total_steps=10**9, max_minutes=seconds / 60, lr=d.teacher_lr, anneal_lr=False,
                     num_steps=d.teacher_num_steps, update_epochs=d.teacher_epochs, clip_coef=d.teacher_clip,
                     seed=seed, progress=progress, bf16=False)
    m = ppo.train(senv, targs, None, net=net)
    net.save(Path(out))
    return {k: m[k] for k in ("global_step", "win_rate") if k in m}


# ---- the league ----------------------------------------------------------------------------------
class League:
    """A league folder: league.json (generations, promotion tests, ratings), bosses/genN.json (promoted
    brains: `hakisa duel serve --league DIR` offers them on the page), knights/genN/ and knights/exploiterN/
    (StateNet knights)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        p = self.root / "league.json"
        self.doc = json.loads(p.read_text()) if p.exists() else {"format": "hakisa-duel-league", "bosses": [],
                                                                  "knights": [], "log": []}

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "league.json").write_text(json.dumps(self.doc, indent=1))

    def bosses(self) -> dict[str, dict | None]:
        """scripted, then every promoted generation, by name."""
        out: dict[str, dict | None] = {"scripted": None}
        for b in self.doc["bosses"]:
            out[b["name"]] = load_brain(self.root / b["path"])
        return out

    def latest_boss(self) -> tuple[str, dict | None]:
        return list(self.bosses().items())[-1]

    def knights(self, pixel_knights: str = "") -> list[Knight]:
        ks = list(EXPERTS) + [Knight(k["name"], "state", str(self.root / k["path"])) for k in self.doc["knights"]]
        return ks + [Knight(p.split(":")[-1], "pixels", p) for p in pixel_knights.split(",") if p.strip()]

    def main_knights(self) -> list[dict]:
        """The pool's knight generations (knight-genN), without exploiters and page clones."""
        return [k for k in self.doc["knights"] if k["name"].startswith("knight-gen")]

    def start_brain(self, a: Args) -> dict:
        """The brain the next generation trains from: the latest promoted one, else a clone of the scripted
        brain (made once, kept in clone.json; not in bosses/: the page offers promoted brains only)."""
        latest = self.latest_boss()[1]
        if latest is not None:
            return latest
        if "clone" not in self.doc:
            _say("cloning the scripted brain into an integer network (the start of generation 1)")
            brain, agree = clone_scripted(a.hidden, a.clone_fights, a.clone_steps, a.seed)
            save_brain(brain, self.root / "clone.json")
            self.doc["clone"] = {"path": "clone.json", "agreement": round(agree, 4)}
            self.save()
            _say(f"the clone takes the scripted brain's decision in {agree:.1%} of cases")
        return load_brain(self.root / self.doc["clone"]["path"])

    def add_boss(self, brain: dict, info: dict) -> None:
        path = f"bosses/{brain['name']}.json"
        save_brain(brain, self.root / path)
        self.doc["bosses"].append({"name": brain["name"], "path": path, **info})
        self.save()


def _say(msg: str) -> None:
    tqdm.write(f"[boss] {msg}")


def _verdict(test: dict, prev_name: str) -> str:
    """A promotion test (compare's dict) in one line."""
    return (f"takes {test['new_takes']:.1%} of {test['decisive']} decisive pairs of {test['pairs']} against "
            f"{prev_name} (Wilson lower {test['wilson_lower']:.1%}); boss win rate {test['new_win_rate']:.1%} vs "
            f"{test['old_win_rate']:.1%}")


def train_league(root: str | Path, a: Args) -> dict:
    """Add `a.generations` promoted boss generations (and a knight generation after each) to the league."""
    lg = League(root)
    lg.doc.setdefault("args", []).append(asdict(a))
    t0 = time.time()
    if not lg.doc["knights"] and a.knight_seconds > 0:
        _say(f"knight gen0: PPO on the true state against the scripted boss for {a.knight_seconds:.0f} s")
        m = train_knight([None], lg.root / "knights/gen0", a.knight_seconds, a.seed, None, a.knight_envs, a.progress)
        lg.doc["knights"].append({"name": "knight-gen0", "path": "knights/gen0", "vs": ["scripted"], **m})
        lg.save()
    bar = tqdm(range(a.generations), desc="boss generations", disable=not a.progress)
    for _ in bar:
        prev_name, prev = lg.latest_boss()
        gen = len(lg.doc["bosses"]) + 1
        brain = lg.start_brain(a)
        if a.exploiter_seconds > 0 and f"exploiter-gen{gen}" in {k["name"] for k in lg.doc["knights"]}:
            _say(f"exploiter gen{gen}: kept from an earlier run")  # a rerun after a failed generation
        elif a.exploiter_seconds > 0:
            # a knight that beats the boss to beat: the 60 s pool knights fall behind (knight-gen4 won 14 % of
            # 200 fights against gen4), so without one ES had few fights left to learn from
            _say(f"exploiter gen{gen}: PPO against {prev_name} alone for {a.exploiter_seconds:.0f} s")
            start = lg.main_knights()[-1]["path"] if lg.main_knights() else None
            m = train_knight([prev], lg.root / f"knights/exploiter{gen}", a.exploiter_seconds, a.seed + 500 + gen,
                             str(lg.root / start) if start else None, a.knight_envs, a.progress)
            lg.doc["knights"].append({"name": f"exploiter-gen{gen}", "path": f"knights/exploiter{gen}",
                                      "vs": [prev_name], "role": "exploiter", **m})
            lg.save()
        # ES meets the experts, the two latest pool knights and the latest exploiter (every knight is in the
        # promotion test and the ratings)
        exploiters = [k["name"] for k in lg.doc["knights"] if k.get("role") == "exploiter"]
        picked = {k["name"] for k in lg.main_knights()[-2:]} | set(exploiters[-1:])
        fast = [k for k in lg.knights() if k.kind == "expert" or k.name in picked]
        pool = lg.knights(a.pixel_knights)
        curve, test = [], None
        for attempt in range(a.tries):
            brain, c = train_boss(brain, fast, a, f"gen{gen}", a.seed * 1000 + gen * 10 + attempt, bar)
            curve += c
            test = compare(brain, prev, pool, a.promote_fights, seed=a.seed * 1000 + gen * 10 + attempt,
                           tier=a.tier, rate=a.promote_rate)
            _say(f"gen{gen} try {attempt + 1}: {_verdict(test, prev_name)}: "
                 f"{'PROMOTED' if test['promoted'] else 'not yet'}")
            if test["promoted"]:
                break
        lg.doc["log"].append({"gen": gen, "vs": prev_name, "test": test, "es_fitness": curve,
                              "minutes": round((time.time() - t0) / 60, 2)})
        if not test["promoted"]:
            lg.save()
            _say(f"gen{gen} did not beat {prev_name} in {a.tries} rounds: the league stops here")
            break
        lg.add_boss(brain, {"gen": gen, "parent": prev_name, "promotion": test})
        if a.knight_seconds > 0:
            names = list(lg.bosses())
            _say(f"knight gen{gen}: PPO against {names} for {a.knight_seconds:.0f} s")
            last = lg.main_knights()[-1]["path"] if lg.main_knights() else None
            m = train_knight(list(lg.bosses().values()), lg.root / f"knights/gen{gen}", a.knight_seconds,
                             a.seed + gen, str(lg.root / last) if last else None, a.knight_envs, a.progress)
            lg.doc["knights"].append({"name": f"knight-gen{gen}", "path": f"knights/gen{gen}", "vs": names, **m})
        lg.doc["elo"] = ratings(lg.bosses(), lg.knights(a.pixel_knights), a.elo_fights, a.seed, a.tier)
        lg.save()
        _say("Elo: " + ", ".join(f"{k} {v:.0f}" for k, v in lg.doc["elo"]["elo"].items()))
    lg.doc["minutes"] = round((time.time() - t0) / 60, 2)
    lg.save()
    return lg.doc


# ---- learning from real fights -------------------------------------------------------------------
def clone_page_knight(fights: list[dict], brains: dict[str, dict | None], out: Path, steps: int = 1500,
                      seed: int = 0) -> dict:
    """A StateNet knight that imitates the knight of real page fights: each logged fight is replayed in the
    sim with its boss (fightlog.replay: bit-exact, so the states are the page's), and the net learns the
    command that was held at every tick from the state before it. Saved in `out` (a state knight)."""
    from hakisa.algos.distill import StateNet
    from hakisa.envs.duel.env import state_targets
    from hakisa.envs.duel.fightlog import replay_many
    from hakisa.input_map import InputMap

    missing = sorted({f["boss"] for f in fights} - set(brains))
    if missing:
        raise ValueError(f"logged fights were played against boss {missing}, which this league does not have "
                         f"({sorted(brains)}): they cannot be replayed")
    xs, ys = [], []
    for f, r in zip(fights, replay_many(fights, [brains[f["boss"]] for f in fights])):
        keys = r["keys"]
        x, names = state_targets({k: v[:-1] for k, v in r["states"].items()}, RULES)
        cmd = KEYS_TO_COMMAND[np.clip(keys, 0, len(KEYS_TO_COMMAND) - 1)]
        ok = (keys < len(KEYS_TO_COMMAND)) & (cmd >= 0)  # a chord no command presses is not imitable
        xs.append(x[ok])
        ys.append(cmd[ok])
    x, y = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    torch.manual_seed(seed)
    net = StateNet(names, InputMap.load("duel"))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        b = torch.randint(0, len(y), (min(1024, len(y)),))
        cmd, *_ = net.policy(x[b])
        loss = torch.nn.functional.cross_entropy(cmd, y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.save(Path(out))
    with torch.no_grad():
        acc = float((net.policy(x)[0].argmax(1) == y).float().mean())
    return {"ticks": int(len(y)), "fights": len(fights), "train_accuracy": round(acc, 4)}


def learn_from_fights(root: str | Path, paths: list[str], a: Args) -> dict:
    """`hakisa duel boss-learn`: fine-tune the league's latest boss on real fights and promote it only if it
    beats its predecessor in the sim against the knight pool plus a clone of the page's knight."""
    from hakisa.envs.duel.fightlog import load_fights

    lg = League(root)
    fights = load_fights(paths)
    if not fights:
        raise ValueError(f"no fights in {paths}")
    brains = {**{n: load_brain(n) for n in shipped_brains()}, **lg.bosses()}
    k = len([x for x in lg.doc["knights"] if x["name"].startswith("page")])
    info = clone_page_knight(fights, brains, lg.root / f"knights/page{k}", a.clone_steps, a.seed)
    page = Knight(f"page{k}", "state", str(lg.root / f"knights/page{k}"))
    won = float(np.mean([f["winner"] == 2 for f in fights]))
    _say(f"{len(fights)} real fights (the boss won {won:.0%}); their knight cloned from {info['ticks']} ticks "
         f"({info['train_accuracy']:.0%} of its commands)")
    prev_name, prev = lg.latest_boss()
    gen = len(lg.doc["bosses"]) + 1
    fast = [x for x in lg.knights() if x.kind != "pixels"] + [page, page]  # the real fights' knight counts twice
    brain, curve = train_boss(lg.start_brain(a), fast, a, f"gen{gen}", a.seed * 1000 + gen, None)
    test = compare(brain, prev, lg.knights(a.pixel_knights) + [page], a.promote_fights, a.seed + gen, a.tier,
                   a.promote_rate)
    entry = {"gen": gen, "vs": prev_name, "source": {"fights": len(fights), "boss_won": won, **info},
             "test": test, "es_fitness": curve}
    lg.doc["knights"].append({"name": page.name, "path": f"knights/page{k}", "from_fights": len(fights)})
    lg.doc["log"].append(entry)
    if test["promoted"]:
        lg.add_boss(brain, {"gen": gen, "parent": prev_name, "promotion": test, "from_fights": len(fights)})
    lg.save()
    _say(f"gen{gen}: {_verdict(test, prev_name)}: "
         f"{'PROMOTED, the page now offers it' if test['promoted'] else 'REJECTED'}")
    return entry


# ---- the CLI (hakisa duel boss-train | boss-elo | boss-learn) -------------------------------------
def add_args(sub) -> None:
    from hakisa.dcargs import add_dataclass_args

    t = sub.add_parser("boss-train", help="train boss brains by self-play against a knight pool (a league)")
    t.add_argument("--league", default="runs/boss", help="the league folder (created or continued)")
    add_dataclass_args(t, Args)
    e = sub.add_parser("boss-elo", help="the rating table of a league's bosses and knights")
    e.add_argument("--league", default="runs/boss")
    e.add_argument("--fights", type=int, default=64, help="fights per boss-knight pair")
    e.add_argument("--pixel-knights", default="pretrained:duel-ppo")
    e.add_argument("--json", action="store_true", help="print JSON only")
    learn = sub.add_parser("boss-learn", help="fine-tune the latest boss on fights the page logged; promote or reject")
    learn.add_argument("logs", nargs="+", help="fights.jsonl files (or folders) the page wrote")
    learn.add_argument("--league", default="runs/boss")
    add_dataclass_args(learn, Args, skip=("generations", "tries", "knight_seconds", "knight_envs",
                                          "exploiter_seconds", "elo_fights"))


def main(args) -> int:
    from hakisa.dcargs import from_args

    if args.duel_cmd == "boss-elo":
        lg = League(args.league)
        if not lg.doc["bosses"] and not lg.doc["knights"]:
            raise SystemExit(f"{args.league}: no league here yet (run `hakisa duel boss-train --league {args.league}`)")
        table = ratings(lg.bosses(), lg.knights(args.pixel_knights), args.fights, 0)
        if not args.json:
            for name, r in sorted(table["elo"].items(), key=lambda kv: -kv[1]):
                print(f"{r:8.1f}  {name}")
        print(json.dumps(table))
        return 0
    if args.duel_cmd == "boss-learn":
        a = Args(**{f: getattr(args, f) for f in Args.__dataclass_fields__ if hasattr(args, f)})
        print(json.dumps(learn_from_fights(args.league, args.logs, a)["test"]))
        return 0
    doc = train_league(args.league, from_args(Args, args))
    print(json.dumps({"bosses": [b["name"] for b in doc["bosses"]], "elo": doc.get("elo", {}).get("elo"),
                      "minutes": doc.get("minutes")}))
    return 0
