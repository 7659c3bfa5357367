"""Play a checkpoint and write its replay: the game at its own size with the agent's actions drawn (hakisa.video).

    write_replay("runs/x/best", "clicker", "runs/x/best/replay.mp4")         # a window game: plays its window
    write_replay("runs/duel/best", "duel", "runs/duel/best/replay.gif", episodes=2)   # a simulator: its canvas
    write_replay(ckpt, game, path, live=live_game)                           # a window someone already opened

`hakisa play --replay PATH` films its own episodes the same way (hakisa.play_live, hakisa.phases.play); this
is the call for code that has a checkpoint and wants to see it play, e.g. a trainer at each new best/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
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


class BestFilms:
    """`hakisa train --replay` in a simulator: each new best/ filmed while the run trains, into
    RUN/replays/best-NNN.mp4, listed in RUN/replays/index.json (film, when, the best/'s metrics).

    A film is `hakisa play --replay` on a copy of best/ in a second, niced process: the trainer never waits
    for it, and a copy is filmed because best/ may be replaced mid-read. At most one film runs at a time and
    one starts per `every` seconds (the newest best/ waiting goes next), so on a 2-core machine filming
    takes a sliver of the training's CPU however often best/ improves. `close()` lets the running film end
    (then kills it after `timeout` seconds); train then films the final best/ itself (best/replay.mp4)."""

    def __init__(self, run_dir, game, opts: dict | None, seed: int, every: float = 60.0, poll: float = 2.0,
                 nice: int = 10):
        self.run_dir, self.game, self.opts, self.seed = Path(run_dir), game, dict(opts or {}), seed
        self.every, self.poll, self.nice = every, poll, nice
        self.dir = self.run_dir / "replays"
        self.films: list[dict] = []
        self._proc, self._pending, self._seen, self._last = None, None, None, float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="best-films", daemon=True)

    def start(self) -> "BestFilms":
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            self._tick()

    def _signature(self):
        try:
            return (self.run_dir / "best" / "model.safetensors").stat().st_mtime_ns
        except OSError:
            return None

    def _tick(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                return
            self._finish()
        sig = self._signature()
        if sig is None or sig == self._seen or time.monotonic() - self._last < self.every:
            return
        n = len(self.films) + 1
        self.dir.mkdir(parents=True, exist_ok=True)
        snap = self.dir / f".best-{n:03d}"
        shutil.rmtree(snap, ignore_errors=True)
        try:
            shutil.copytree(self.run_dir / "best", snap)
        except (OSError, shutil.Error):  # best/ was being replaced: the next poll copies the new one
            shutil.rmtree(snap, ignore_errors=True)
            return
        film = self.dir / f"best-{n:03d}.mp4"
        cmd = [sys.executable, "-m", "hakisa.cli", "play", "--game", str(self.game.path), "--checkpoint", str(snap),
               "--episodes", "1", "--num-envs", "1", "--seed", str(self.seed), "--replay", str(film)]
        for k, v in self.opts.items():
            cmd += ["--opt", f"{k}={v}"]
        log = open(self.dir / f"best-{n:03d}.log", "w")
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      preexec_fn=lambda: os.nice(self.nice))
        log.close()
        self._seen, self._last, self._pending = sig, time.monotonic(), (n, snap, film)

    def _finish(self) -> None:
        n, snap, film = self._pending
        rc, self._proc, self._pending = self._proc.returncode, None, None
        try:
            metrics = json.loads((snap / "config.json").read_text()).get("metrics", {})
        except (OSError, ValueError):
            metrics = {}
        shutil.rmtree(snap, ignore_errors=True)
        if rc == 0 and film.exists():
            film.with_suffix(".log").unlink(missing_ok=True)  # kept only to say why a film failed
            self.films.append({"film": film.name, "metrics": metrics})
            (self.dir / "index.json").write_text(json.dumps(self.films, indent=1))
        else:
            print(f"train: filming best/ failed (exit {rc}); see {film.with_suffix('.log')}", flush=True)

    def close(self, timeout: float = 120.0) -> list[dict]:
        self._stop.set()
        self._thread.join()
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._finish()
        return self.films
