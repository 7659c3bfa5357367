"""The boss learns from real fights, end to end: an agent fights the league's latest boss on the real page (its
own Xvfb and Chromium, real XTest keys), the page logs every fight to the league, `boss-learn` fine-tunes
the boss on them and promotes or rejects it, and the page then serves the new boss.

    .venv/bin/python benchmarks/bench_boss_roundtrip.py --league runs/boss --fights 10 \
        --out benchmarks/boss_roundtrip.json

The LAST line printed is one JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from hakisa.games.duel import league


def page_fights(lg: league.League, boss: str, checkpoint: str, fights: int, tier: str, also_play: int = 0) -> dict:
    from hakisa.games.duel.web import DuelPage
    from hakisa.play_live import play_live

    log = lg.root / "fights.jsonl"
    before = log.read_text().splitlines() if log.exists() else []
    before_display = os.environ.get("DISPLAY")
    with DuelPage(tier=tier, boss=boss, league=lg.root) as page:
        os.environ["DISPLAY"] = page.display
        try:
            page.click_to_focus()
            served = page.evaluate("hakisa.boss()")
            live = play_live(checkpoint, game="duel", page=page, episodes=fights, opts={"tier": tier, "boss": boss},
                             out=lg.root / "roundtrip-play", progress=False)
        finally:  # the page's private display dies with it: the next page must not try to open on it
            if before_display is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = before_display
    after = log.read_text().splitlines() if log.exists() else []
    return {"served_boss": served, "win_rate": live["win_rate"], "episodes": live["episodes"],
            "new_lines": after[len(before):], "step_ms_p50": live["step_ms_p50"], "step_ms_p99": live["step_ms_p99"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--league", default="runs/boss")
    p.add_argument("--checkpoint", default="pretrained:duel-ppo", help="the agent that fights on the page")
    p.add_argument("--fights", type=int, default=10)
    p.add_argument("--after-fights", type=int, default=3, help="page fights against the new boss, if promoted")
    p.add_argument("--tier", default="normal")
    p.add_argument("--es-iters", type=int, default=15)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    t0 = time.time()
    lg = league.League(a.league)
    before_name = lg.latest_boss()[0]
    first = page_fights(lg, before_name, a.checkpoint, a.fights, a.tier)
    logs = lg.root / f"roundtrip-{int(t0)}.jsonl"
    logs.write_text("\n".join(first.pop("new_lines")) + "\n")
    n_logged = len(logs.read_text().splitlines())
    print(f"page: {first['episodes']} fights against {first['served_boss']}, agent won {first['win_rate']:.0%}, "
          f"{n_logged} fights logged", flush=True)
    entry = league.learn_from_fights(lg.root, [str(logs)], league.Args(es_iters=a.es_iters, pop_size=12, fights=8,
                                                                         pixel_knights=""))
    lg = league.League(a.league)
    after_name = lg.latest_boss()[0]
    out = {"bench": "boss_roundtrip", "checkpoint": a.checkpoint, "tier": a.tier, "boss_before": before_name,
           "page_before": first, "fights_logged": n_logged, "learn": entry["source"], "test": entry["test"],
           "boss_after": after_name}
    if entry["test"]["promoted"]:
        second = page_fights(lg, after_name, a.checkpoint, a.after_fights, a.tier)
        second.pop("new_lines")
        out["page_after"] = second
        print(f"page now serves {second['served_boss']}: agent won {second['win_rate']:.0%} of "
              f"{second['episodes']}", flush=True)
    out.update(wall_s=round(time.time() - t0, 1), load_avg=os.getloadavg(), date=time.strftime("%Y-%m-%d %H:%M:%S"))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
