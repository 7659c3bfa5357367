"""Play a checkpoint and write its replay: the game at its own size with the agent's actions drawn (hakisa.video).

    write_replay("runs/x/best", "clicker", "runs/x/best/replay.mp4")         # a window game: plays its window
    write_replay("runs/duel/best", "duel", "runs/duel/best/replay.gif", episodes=2)   # a simulator: its canvas
    write_replay(ckpt, game, path, live=live_game)                           # a window someone already opened

`hakisa play --replay PATH` films its own episodes the same way (hakisa.play_live, hakisa.phases.play); this
is the call for code that has a checkpoint and wants to see it play, e.g. a trainer at each new best/.
"""
from __future__ import annotations

from pathlib import Path


def write_replay(checkpoint, game, path: str | Path, *, episodes: int = 1, seed: int = 0, opts: dict | None = None,
                 live=None, deterministic: bool | None = None, max_steps: int | None = None) -> dict:
    """Play `episodes` episodes of `checkpoint` (None: an untrained net) on `game` (a Game, or a name / file)
    and write them to `path` (.mp4 or .gif). A game with a simulator plays there unless `live` (an open
    LiveGame) is given; a window-only game plays its window (opened here unless `live`). deterministic: None
    acts as the checkpoint asks (`hakisa play`'s default). Returns {path, frames, dropped, size, summary}."""
    from hakisa.game import Game

    game = game if isinstance(game, Game) else Game.load(game)
    if game.sim and live is None:
        return _sim_replay(checkpoint, game, Path(path), episodes, seed, opts, deterministic)
    from hakisa.play_live import play_live

    s = play_live(checkpoint, game=game, opts=opts, episodes=episodes, deterministic=deterministic, probe_trials=0,
                  gif_episodes=episodes, out=Path(path).parent, seed=seed, max_steps=max_steps, live=live,
                  progress=False, replay=path)
    return {**s["replay"], "summary": s}


def _sim_replay(checkpoint, game, path: Path, episodes: int, seed: int, opts, deterministic) -> dict:
    from hakisa.agent import load_agent
    from hakisa.evaluate import evaluate
    from hakisa.model import checkpoint_obs_spec
    from hakisa.video import RecordingVecEnv, Replay

    spec = checkpoint_obs_spec(checkpoint) if checkpoint not in (None, "untrained") else None
    env = open_filmed_sim(game, 1, seed, opts, spec)
    try:
        net, _, mode, _ = load_agent(checkpoint, _Contract(game, env), deterministic, seed=seed)
        rep = Replay(path, env.input_map, env.metadata.get("render_fps", 15), bgra=False, block=True)
        try:
            summary = evaluate(net, RecordingVecEnv(env, rep, episodes), episodes, mode, seed=seed)
        finally:
            info = rep.close()
    finally:
        env.close()
    return {**info, "summary": {**summary, "mode": mode}}


def open_filmed_sim(game, n: int, seed: int, opts, obs_spec=None):
    """The game's simulator with frames to film (render_mode="rgb_array"); one line when it cannot render."""
    from hakisa.game import GameFileError

    try:
        return game.sim_vec(n, seed=seed, opts=opts, render_mode="rgb_array",
                            **({"obs_spec": obs_spec} if obs_spec else {}))
    except TypeError as e:
        if "render_mode" not in str(e):
            raise
        raise GameFileError(f"{game.name}'s simulator renders no frames to film; play its window "
                            "(hakisa play --live --replay PATH)") from None


class _Contract:
    """A game seen through its simulator's observation and actions (what load_agent builds an untrained net for)."""

    def __init__(self, game, env):
        self.obs_spec, self.input_map, self.name = env.obs_spec, env.input_map, game.name
