"""The built-in duel: rules in rules.json, numpy sim (sim.py), JS twin (web/core.js), scripted expert (expert.py)."""
from hakisa.envs.duel.sim import COMMAND_KEYS, DuelSim, load_rules  # noqa: F401
