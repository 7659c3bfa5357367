"""Knights that learn: PPO on the true state against a pool of bosses (the league's knight generations and
its exploiters)."""
from __future__ import annotations

from pathlib import Path


def train_knight(bosses: list[dict | None], out: Path, seconds: float, seed: int, start: str | None = None,
                 num_envs: int = 64, progress: bool = True) -> dict:
    """PPO on the true state (distill.StateNet, distill's teacher settings) against a pool of bosses (fight
    i meets bosses[i % len]), from the knight in `start` if given. Saves the StateNet in `out`."""
    from hakisa.algos import ppo
    from hakisa.algos.distill import Args as DArgs
    from hakisa.algos.distill import StateNet, StateObs
    from hakisa.games.duel.env import DuelVecEnv

    envs = DuelVecEnv(num_envs, tier="normal", seed=seed, boss=[bosses[i % len(bosses)] for i in range(num_envs)])
    envs.state_only = True
    senv = StateObs(envs)
    d = DArgs()
    net = (StateNet.load(start, senv.input_map, senv.names) if start
           else StateNet(senv.names, senv.input_map, d.teacher_hidden))
    targs = ppo.Args(total_steps=10**9, max_minutes=seconds / 60, lr=d.teacher_lr, anneal_lr=False,
                     num_steps=d.teacher_num_steps, update_epochs=d.teacher_epochs, clip_coef=d.teacher_clip,
                     seed=seed, progress=progress, bf16=False)
    m = ppo.train(senv, targs, None, net=net)
    net.save(Path(out))
    return {k: m[k] for k in ("global_step", "win_rate") if k in m}
