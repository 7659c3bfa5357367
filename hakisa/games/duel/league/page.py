"""Learning from real fights: a knight cloned from the page's logged fights, and a boss fine-tuned against
it that is promoted only if it beats its predecessor (`hakisa duel boss-learn`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hakisa.games.duel.brain import load_brain, shipped_brains
from hakisa.games.duel.league.args import Args
from hakisa.games.duel.league.es_boss import train_boss
from hakisa.games.duel.league.folder import League, say, verdict
from hakisa.games.duel.league.pool import RULES, Knight
from hakisa.games.duel.league.ratings import compare
from hakisa.games.duel.sim import KEYS_TO_COMMAND


def clone_page_knight(fights: list[dict], brains: dict[str, dict | None], out: Path, steps: int = 1500,
                      seed: int = 0) -> dict:
    """A StateNet knight that imitates the knight of real page fights: each logged fight is replayed in the
    sim with its boss (fightlog.replay: bit-exact, so the states are the page's), and the net learns the
    command that was held at every tick from the state before it. Saved in `out` (a state knight)."""
    from hakisa.algos.distill import StateNet
    from hakisa.games.duel.env import state_targets
    from hakisa.games.duel.fightlog import replay_many
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
    from hakisa.games.duel.fightlog import load_fights

    lg = League(root)
    fights = load_fights(paths)
    if not fights:
        raise ValueError(f"no fights in {paths}")
    brains = {**{n: load_brain(n) for n in shipped_brains()}, **lg.bosses()}
    k = len([x for x in lg.doc["knights"] if x["name"].startswith("page")])
    info = clone_page_knight(fights, brains, lg.root / f"knights/page{k}", a.clone_steps, a.seed)
    page = Knight(f"page{k}", "state", str(lg.root / f"knights/page{k}"))
    won = float(np.mean([f["winner"] == 2 for f in fights]))
    say(f"{len(fights)} real fights (the boss won {won:.0%}); their knight cloned from {info['ticks']} ticks "
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
    say(f"gen{gen}: {verdict(test, prev_name)}: "
         f"{'PROMOTED, the page now offers it' if test['promoted'] else 'REJECTED'}")
    return entry
