"""Rewards from pixels: readers, delta rewards, done/winner/in-play detection, a learned reader.

Torch is imported only by `hakisa.rewards.model` (RewardNet), so the readers stay cheap to import.
"""
from hakisa.rewards.delta import DeltaReward, InfoDeltaReward, info_delta_reward
from hakisa.rewards.game import GameJudge, condition_holds
from hakisa.rewards.readers import BarReader, ChangeDetector, ColorFraction, DigitReader, MeanGray, crop

__all__ = ["BarReader", "ChangeDetector", "ColorFraction", "DeltaReward", "DigitReader", "GameJudge", "InfoDeltaReward",
           "MeanGray", "crop", "condition_holds", "info_delta_reward"]
