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

The pieces: pool.py (knights and a batch of fights), es_boss.py (the ES boss and the scripted clone),
knights.py (PPO knights), ratings.py (promotion test, Bradley-Terry ratings), folder.py (a league folder and
its generations), page.py (learning from the page's fights), args.py, cli.py.
"""
from hakisa.games.duel.league.args import Args  # noqa: F401
from hakisa.games.duel.league.es_boss import clone_scripted, train_boss  # noqa: F401
from hakisa.games.duel.league.folder import League, train_league  # noqa: F401
from hakisa.games.duel.league.knights import train_knight  # noqa: F401
from hakisa.games.duel.league.page import clone_page_knight, learn_from_fights  # noqa: F401
from hakisa.games.duel.league.pool import EXPERTS, Knight, Policy, boss_fitness, play  # noqa: F401
from hakisa.games.duel.league.ratings import compare, ratings, wilson_lower  # noqa: F401
