"""The league's settings: one dataclass, exposed as `hakisa duel boss-train` flags (field docstrings)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Args:
    """The boss league's settings: ES bosses against a knight pool, promotion tests, PPO knights, ratings.

    One flag per field of `hakisa duel boss-train` (and of `boss-learn`, less the generation, knight and rating
    fields); each field's docstring below is its flag's help."""

    generations: int = 5
    """boss generations to add (each must be promoted)"""
    es_iters: int = 30
    """ES updates per training round of a boss"""
    tries: int = 3
    """training rounds a candidate gets to pass promotion before the league stops"""
    pop_size: int = 12
    """ES population (antithetic pairs)"""
    fights: int = 16
    """fights per ES member per knight"""
    pfsp: float = 1.0
    """ES weights knights by the fights they still win (below); 0: all alike"""
    pfsp_weighting: str = "variance"
    """variance: by w (1 - w), w the share of fights the knight wins (the knights that win about half);
    hard: by w^pfsp (it favours the knights no boss beats)"""
    sigma: float = 4.0
    """ES perturbation, in weight units (int8); biases move 64x as far"""
    lr: float = 1.0
    """Adam's step on the brain's integers"""
    hidden: int = 24
    """hidden units of a new brain"""
    clone_fights: int = 128
    """fights per expert knight whose scripted-boss decisions the first brain imitates"""
    clone_steps: int = 1500
    """Adam steps of a clone (the scripted brain's, a page knight's)"""
    tier: str = "normal"
    """the tier the boss trains and is judged at"""
    promote_fights: int = 1920
    """paired fights of a promotion test (>= 400). Against a strong boss few pairs are decisive (39 of 480 for
    gen5 against gen4), too few for the sign test to see a 60 % edge; 1920 give it about 150"""
    promote_rate: float = 0.55
    """the share of decisive pairs (one boss wins, the other loses) a candidate must take"""
    knight_seconds: float = 60.0
    """PPO seconds per knight generation (0: no knight training)"""
    knight_envs: int = 64
    """fights a knight trains on at once"""
    exploiter_seconds: float = 180.0
    """PPO seconds of each generation's exploiter: a knight trained against the boss to beat alone (0: none)"""
    pixel_knights: str = "pretrained:duel-ppo"
    """comma-separated pixel checkpoints that join promotion tests and ratings ('' for none)"""
    elo_fights: int = 48
    """fights per boss-knight pair in the ratings"""
    seed: int = 0
    """seeds ES noise, fights and knights"""
    progress: bool = True
    """show progress bars"""
