"""The settings one sweep keeps for its whole life, and the game it searches."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hakisa.sweep.space import Param


@dataclass
class SweepConfig:
    """Plain data (JSON), so a worker process or a Ray task gets the same settings as the command."""

    game: str | None = None
    env: str | None = None
    algo: str = "ppo"
    params: list[str] = field(default_factory=list)
    space_file: str | None = None
    trials: int = 20
    steps: int | None = None
    minutes: float | None = None
    evals: int = 3
    eval_episodes: int = 100
    eval_seed: int = 777
    eval_envs: int = 16
    pruner: str = "median"
    storage: str | None = None
    name: str | None = None
    seed: int = 0
    num_envs: int | None = None
    opt: list[str] = field(default_factory=list)
    obs: str | None = None
    encoder: str = "small"
    init: str | None = None
    set: list[str] = field(default_factory=list)
    runs_dir: str = "runs"
    jobs: int = 1
    ray: bool = False
    ray_address: str | None = None
    progress: bool = True

    @property
    def dir(self) -> Path:
        return Path(self.runs_dir) / "sweeps" / self.name

    def fingerprint(self, space: list[Param]) -> dict:
        """What makes two runs the same sweep: resuming with other values would mix incomparable trials."""
        keep = ("game", "env", "algo", "steps", "minutes", "evals", "eval_episodes", "eval_seed", "eval_envs",
                "seed", "num_envs", "opt", "obs", "encoder", "init", "set")
        return {**{k: getattr(self, k) for k in keep}, "space": {p.name: repr(p.dist) for p in space}}


def load_game(cfg: SweepConfig):
    from hakisa.game import Game

    game = Game.load(cfg.game) if cfg.game else Game.for_env(cfg.env) if cfg.env else None
    if game is None and not cfg.env:
        raise SystemExit("hakisa sweep: give --game NAME|PATH (or --env ID)")
    if game is not None and not game.sim:
        raise SystemExit(f"hakisa sweep: game {game.name!r} has no simulator; sweeps train in a simulator")
    return game
