"""The learners: one CleanRL-style file each (ppo, dqn, ga, es) plus the few helpers they share."""
