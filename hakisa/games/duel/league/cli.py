"""`hakisa duel boss-train | boss-elo | boss-learn`: the league from the command line."""
from __future__ import annotations

import json

from hakisa.games.duel.league.args import Args


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
    from hakisa.games.duel.league.folder import League, train_league
    from hakisa.games.duel.league.page import learn_from_fights
    from hakisa.games.duel.league.ratings import ratings

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
