"""Hakisa: agents that play real games from the screen."""
__version__ = "0.1.0"

from hakisa import envs as _envs  # noqa: E402,F401  registers Hakisa/Duel-v0 with gymnasium (string entry points, cheap)
