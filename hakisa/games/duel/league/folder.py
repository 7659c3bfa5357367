"""A league folder and its generations: the boss promoted generation by generation, a knight generation and an
exploiter beside each."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from hakisa.games.duel.brain import load_brain, save_brain
from hakisa.games.duel.league.args import Args
from hakisa.games.duel.league.es_boss import clone_scripted, train_boss
from hakisa.games.duel.league.knights import train_knight
from hakisa.games.duel.league.pool import EXPERTS, Knight
from hakisa.games.duel.league.ratings import compare, ratings


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
            say("cloning the scripted brain into an integer network (the start of generation 1)")
            brain, agree = clone_scripted(a.hidden, a.clone_fights, a.clone_steps, a.seed)
            save_brain(brain, self.root / "clone.json")
            self.doc["clone"] = {"path": "clone.json", "agreement": round(agree, 4)}
            self.save()
            say(f"the clone takes the scripted brain's decision in {agree:.1%} of cases")
        return load_brain(self.root / self.doc["clone"]["path"])

    def add_boss(self, brain: dict, info: dict) -> None:
        path = f"bosses/{brain['name']}.json"
        save_brain(brain, self.root / path)
        self.doc["bosses"].append({"name": brain["name"], "path": path, **info})
        self.save()


def say(msg: str) -> None:
    tqdm.write(f"[boss] {msg}")



def verdict(test: dict, prev_name: str) -> str:
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
        say(f"knight gen0: PPO on the true state against the scripted boss for {a.knight_seconds:.0f} s")
        m = train_knight([None], lg.root / "knights/gen0", a.knight_seconds, a.seed, None, a.knight_envs, a.progress)
        lg.doc["knights"].append({"name": "knight-gen0", "path": "knights/gen0", "vs": ["scripted"], **m})
        lg.save()
    bar = tqdm(range(a.generations), desc="boss generations", disable=not a.progress)
    for _ in bar:
        prev_name, prev = lg.latest_boss()
        gen = len(lg.doc["bosses"]) + 1
        brain = lg.start_brain(a)
        if a.exploiter_seconds > 0 and f"exploiter-gen{gen}" in {k["name"] for k in lg.doc["knights"]}:
            say(f"exploiter gen{gen}: kept from an earlier run")  # a rerun after a failed generation
        elif a.exploiter_seconds > 0:
            # a knight that beats the boss to beat: the 60 s pool knights fall behind it (measured:
            # benchmarks/README.md), so without one ES had few fights left to learn from
            say(f"exploiter gen{gen}: PPO against {prev_name} alone for {a.exploiter_seconds:.0f} s")
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
            say(f"gen{gen} try {attempt + 1}: {verdict(test, prev_name)}: "
                 f"{'PROMOTED' if test['promoted'] else 'not yet'}")
            if test["promoted"]:
                break
        lg.doc["log"].append({"gen": gen, "vs": prev_name, "test": test, "es_fitness": curve,
                              "minutes": round((time.time() - t0) / 60, 2)})
        if not test["promoted"]:
            lg.save()
            say(f"gen{gen} did not beat {prev_name} in {a.tries} rounds: the league stops here")
            break
        lg.add_boss(brain, {"gen": gen, "parent": prev_name, "promotion": test})
        if a.knight_seconds > 0:
            names = list(lg.bosses())
            say(f"knight gen{gen}: PPO against {names} for {a.knight_seconds:.0f} s")
            last = lg.main_knights()[-1]["path"] if lg.main_knights() else None
            m = train_knight(list(lg.bosses().values()), lg.root / f"knights/gen{gen}", a.knight_seconds,
                             a.seed + gen, str(lg.root / last) if last else None, a.knight_envs, a.progress)
            lg.doc["knights"].append({"name": f"knight-gen{gen}", "path": f"knights/gen{gen}", "vs": names, **m})
        lg.doc["elo"] = ratings(lg.bosses(), lg.knights(a.pixel_knights), a.elo_fights, a.seed, a.tier)
        lg.save()
        say("Elo: " + ", ".join(f"{k} {v:.0f}" for k, v in lg.doc["elo"]["elo"].items()))
    lg.doc["minutes"] = round((time.time() - t0) / 60, 2)
    lg.save()
    return lg.doc
