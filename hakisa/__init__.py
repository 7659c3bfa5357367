"""Hakisa: agents that play real games from the screen."""
__version__ = "0.1.0"

from hakisa import envs as _envs  # noqa: E402,F401  registers Hakisa/Airstriker-v0 (string entry points, cheap)
