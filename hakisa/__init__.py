"""Hakisa: agents that play real games from the screen."""
__version__ = "0.1.0"
