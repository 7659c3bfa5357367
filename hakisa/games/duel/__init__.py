"""The Hakisa duel, a game package: its file is hakisa/games/duel.json, which names this package as its
simulator's home (`sim.module`) and its verbs (`verbs`). Importing it registers the simulator's Gymnasium id
(string entry points: nothing heavy is imported).

    rules.json        the rules both twins read             sim.py, sim_*.py   the numpy simulator (N fights)
    web/, web.py      the page (JS twin) and DuelPage        render.py          its pixels in numpy
    env.py            DuelEnv / DuelVecEnv (Gymnasium)       expert.py          the scripted expert
    brain.py, bosses/ learned boss brains                    fightlog.py        the page's fight logs, replayed
    league/           boss self-play (pools, ES, knights, ratings, page learning)
    perception.py     encoder pretraining on the sim         evaluate.py        the sim's win-rate evaluator
    bench.py          sim / vector env speed                 demo.py            train, then play the page
    cli.py            `hakisa duel ...`
"""
import gymnasium

DUEL_ID = "Hakisa/Duel-v0"

if DUEL_ID not in gymnasium.registry:
    gymnasium.register(id=DUEL_ID, entry_point="hakisa.games.duel.env:DuelEnv",
                       vector_entry_point="hakisa.games.duel.env:DuelVecEnv")
