"""A checkpoint plays a game's REAL window through the screen: `play_live(...)`, what `hakisa play --live`
runs (hakisa/phases/live_play.py), as a function for `study`, `doctor`, `demo`, notebooks and benchmarks.

The agent sees only pixels (Capture -> preprocess -> FrameStack, the same bytes as in a simulator) and
acts only through the safe live sink. The summary: episodes, win_rate or mean_score with its 95 % interval,
mean_return, step_ms_p50/p99 (capture + preprocess + forward + send), lag_ms from the latency probe, the
screen readers' time (reward_ms_*), a GIF of what the agent saw (live_play.gif) and, with `replay=PATH`, a
video of the window itself with the agent's actions drawn (hakisa.video).
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hakisa.agent import load_agent
from hakisa.algos.common import ci95
from hakisa.model import PRETRAINED_DIR
from hakisa.video import Replay, obs_box, observation_gif


def pct(v, q):
    return round(float(np.percentile(v, q)), 3) if len(v) else None


def play_live(
    checkpoint: str | Path | None,
    *,
    game,
    opts: dict | None = None,
    window: str | None = None,
    episodes: int = 20,
    deterministic: bool | None = False,
    hz: float | None = None,
    probe_trials: int = 5,
    gif_episodes: int = 1,
    out: str | Path | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    live=None,
    progress: bool = True,
    head: str = "auto",
    page=None,
    backend: str | None = None,
    stuck_warn: float = 30.0,
    stuck_stop: float = 120.0,
    replay: str | Path | None = None,
) -> dict:
    """Play `episodes` episodes on a game's live window; returns the summary (also written to out/play_live.json).

    game: a Game, or a shipped name / path of a game file. checkpoint: None plays an untrained net (a
    baseline). live: an already-open `LiveGame` to reuse (benchmarks); otherwise the game is opened (launched
    when its file says how, else found by `window` or its title). page: an already-open BrowserApp (a
    benchmark's own page). backend: the capture and input backend (default $HAKISA_BACKEND, else auto).
    stuck_warn, stuck_stop: seconds the screen may not match the rules before a warning, and before a stop
    (RulesMismatch; hakisa.envs.rules_watch). gif_episodes: how many first episodes go into the observation
    GIF and, with `replay` (an .mp4 or .gif path; at least one episode), into the video of the window with the
    actions drawn.
    """
    import torch

    from hakisa.game import Game

    game = game if isinstance(game, Game) else Game.load(game)
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # one small forward per step: a second thread only adds hand-off latency
    net, _, mode, checkpoint = load_agent(checkpoint, game, deterministic, head, seed)
    hz = hz or game.hz
    out = Path(out) if out is not None else _default_out(game, checkpoint)
    with ExitStack() as stack:
        env = _open_env(stack, game, net.obs_spec, dict(opts or {}), window, live, page, backend, hz, max_steps,
                        stuck_warn, stuck_stop)
        lag = _probe(env, net.input_map, probe_trials)
        rec = _Recorder(env, gif_episodes, replay, hz)
        stack.callback(rec.close)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "live_tb"))  # per-episode curves beside the run's training curves
        stack.callback(writer.close)
        loop = _play_episodes(env, net, mode, episodes, rec, writer, progress, game.name, seed)
    summary = _summary(game, env, loop, lag, rec, opts, hz, mode, checkpoint, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "play_live.json").write_text(json.dumps(summary, indent=1))
    return summary


def _default_out(game, checkpoint: Path | None) -> Path:
    """The run folder; a shipped checkpoint's GIF goes to runs/, never into the package."""
    if checkpoint is None:
        return Path("runs") / f"{game.name}-untrained"
    if checkpoint.parent == PRETRAINED_DIR:
        return Path("runs") / f"pretrained-{checkpoint.name}"
    return checkpoint.parent if checkpoint.name in ("checkpoint", "best") else checkpoint


def _open_env(stack: ExitStack, game, spec, opts, window, live, page, backend, hz, max_steps, stuck_warn,
              stuck_stop):
    """The game's ScreenEnv on its window (opened here unless `live`/`page` is given)."""
    from hakisa.envs.rules_watch import RulesWatch, check_arg

    if live is None and page is not None:
        live = _PageLive(page, backend)
    if live is None:
        if window:
            game.window = {k: v for k, v in game.window.items() if k not in ("launch", "region")} | {"title": window}
            if isinstance(game.window.get("canvas"), str):
                game.window.pop("canvas")
        live = stack.enter_context(game.open(opts=opts, backend=backend))
    watch = RulesWatch(stuck_warn, stuck_stop, game_file=check_arg(game))
    env = game.screen_env(live, obs_spec=spec, hz=hz, max_steps=max_steps, watch=watch)
    stack.callback(env.close)
    return env


def _probe(env, imap, trials: int) -> dict:
    """The rules' latency probe (action -> pixel lag), then a fresh episode; {"lag_ms": None} without one."""
    from hakisa.envs.screen import latency_probe

    probe = env.judge.cfg.get("probe")
    if trials <= 0 or not probe:
        return {"lag_ms": None}
    env.reset()
    cmd = next(i for i, c in enumerate(imap.commands) if c.name == probe["command"])
    lag = latency_probe(env.capture, env.sink, np.array([cmd, 0, 0]), tuple(probe["region"]),
                        canvas=env.judge.canvas, trials=trials, threshold=probe.get("threshold", 3.0))
    env.navigate("restart")  # the probe spent some of that episode: start a fresh one
    return lag


class _Recorder:
    """The first `episodes` episodes: what the agent saw (for the observation GIF) and, with `replay`, the
    window's own frames with the actions drawn (streamed to the video on a thread: hakisa.video.Replay)."""

    def __init__(self, env, episodes: int, replay: str | Path | None, hz: float):
        # a replay asked for is at least one episode long, even with the GIF off (--gif-episodes 0)
        self.env, self.episodes, self.filmed, self.hz = env, episodes, max(1, episodes), hz
        self.frames, self.actions, self.labels, self.gif, self.replay_info = [], [], [], None, None
        self.box = obs_box(env.obs_spec.crop, env.capture.region[2:])
        self.replay = Replay(replay, env.input_map, hz) if replay else None

    def before(self, ep: int) -> np.ndarray | None:
        """The full frame the next action is chosen on (the last grab), while this episode is filmed."""
        return self.env.frame if self.replay is not None and ep < self.filmed else None

    def after(self, ep: int, seen: np.ndarray | None, obs, a, r: float, term: bool, info: dict) -> None:
        if seen is not None:
            self.replay.add(seen, a, r, term)
        if ep >= self.episodes:
            return
        c = self.env.obs_spec.channels
        self.frames.append(obs[-c:].copy())
        self.actions.append(np.asarray(a).copy())
        name = self.env.input_map.commands[int(a[0])].name
        self.labels.append(f"ep{ep} t{info['step']:4d} {name:11s} R{self.env.episode_return:+6.1f}")

    def close(self) -> None:
        if self.replay is not None:
            self.replay_info, self.replay = self.replay.close(), None

    def write_gif(self, out: Path) -> str | None:
        if not self.frames:
            return None
        return str(observation_gif(out / "live_play.gif", self.frames, self.actions, self.labels,
                                   self.env.input_map, self.hz, box=self.box))


class _Watch:
    """What play_live keeps beside evaluate's episode loop (its `observer`): per step the loop's own timings and
    late ticks, the GIF and video frames; per episode the result, TensorBoard's curves and the progress bar."""

    def __init__(self, env, rec: _Recorder, writer, episodes: int, progress: bool, name: str):
        from tqdm import tqdm

        self.env, self.rec, self.writer, self.ep, self.seen, self.last = env, rec, writer, 0, None, {}
        self.results, self.step_ms, self.reward_ms, self.late = [], [], [], 0
        self.commands = np.zeros(len(env.input_map.commands), np.int64)  # how often each command was sent
        self.parts: dict[str, list[float]] = {"capture": [], "preprocess": [], "forward": [], "send": []}
        self.bar = tqdm(total=episodes, desc=f"live {name}", unit="episode", disable=not progress)

    def before(self) -> None:
        self.seen = self.rec.before(self.ep)

    def after(self, obs, a, r: float, term: bool, trunc: bool, info: dict, forward_ms: float) -> None:
        tm = info["timing"]
        # the loop's own work per step; decide_ms also counts this Python loop and GIF bookkeeping
        self.step_ms.append(tm["capture_ms"] + tm["preprocess_ms"] + forward_ms + tm["send_ms"])
        self.reward_ms.append(tm["reward_ms"])
        for k, v in (("capture", tm["capture_ms"]), ("preprocess", tm["preprocess_ms"]), ("forward", forward_ms),
                     ("send", tm["send_ms"])):
            self.parts[k].append(v)
        self.late += info["missed_ticks"] > 0
        self.commands[int(a[0])] += 1
        self.rec.after(self.ep, self.seen, obs, a, r, term, info)
        self.last = info

    def episode(self, ep: dict) -> None:
        info, judge, results = self.last, self.env.judge, self.results
        results.append({"winner": info.get("winner"), "score": info.get("score"), "return": ep["return"],
                        "steps": info["step"], "final": info["readings"]})
        self.writer.add_scalar("live/episodic_return", ep["return"], self.ep)
        post = {}
        if judge.won_or_lost:
            post["win_rate"] = np.mean([e["winner"] == judge.win_winner for e in results])
        if judge.score is not None:
            post["score"] = np.mean([e["score"] or 0 for e in results])
        for k, v in post.items():
            self.writer.add_scalar(f"live/{k}", v, self.ep)
        self.writer.add_scalar("live/step_ms_p50", float(np.percentile(self.step_ms, 50)), self.ep)
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.2f}" for k, v in post.items()})
        self.ep += 1


def _play_episodes(env, net, mode: str, episodes: int, rec: _Recorder, writer, progress: bool, name: str,
                   seed: int) -> dict:
    """The episodes, through evaluate's loop: results per episode and the loop's own timings; the kill switch
    ends it early."""
    from hakisa.evaluate import evaluate
    from hakisa.sink import KillSwitch

    watch = _Watch(env, rec, writer, episodes, progress, name)
    stopped, stopped_at = "episodes", None
    try:
        evaluate(net, env, episodes, mode, seed=seed, observer=watch)
    except KillSwitch:
        stopped = "kill_switch"
        stopped_at = time.perf_counter()  # the loop has ended here (benchmarks time the kill switch by it)
    finally:
        watch.bar.close()
    return {"results": watch.results, "step_ms": watch.step_ms, "reward_ms": watch.reward_ms, "parts": watch.parts,
            "late": watch.late, "commands": watch.commands, "stopped": stopped, "stopped_at": stopped_at}


def _summary(game, env, loop: dict, lag: dict, rec: _Recorder, opts, hz, mode, checkpoint, out: Path) -> dict:
    judge, results, step_ms = env.judge, loop["results"], loop["step_ms"]
    n = len(results)
    summary = {"game": game.name, "episodes": n}
    if judge.won_or_lost:
        summary["win_rate"] = (
            round(float(np.mean([e["winner"] == judge.win_winner for e in results])), 4) if n else None
        )
        summary["outcomes"] = [e["winner"] for e in results]
    if judge.score is not None:
        scores = [float(e["score"] or 0) for e in results]
        summary.update(
            mean_score=round(float(np.mean(scores)), 3) if n else None, score_ci95=round(ci95(scores), 3), scores=scores
        )
    parts = loop["parts"]
    summary.update(
        {
            "mean_return": round(float(np.mean([e["return"] for e in results])), 3) if n else None,
            "step_ms_p50": pct(step_ms, 50),
            "step_ms_p99": pct(step_ms, 99),
            "lag_ms": None if lag["lag_ms"] is None or not np.isfinite(lag["lag_ms"]) else round(lag["lag_ms"], 2),
            "reward_ms_p50": pct(loop["reward_ms"], 50),
            "reward_ms_p99": pct(loop["reward_ms"], 99),
            "parts_ms_p50": {k: pct(v, 50) for k, v in parts.items()},
            "parts_ms_p99": {k: pct(v, 99) for k, v in parts.items()},
            "late_steps": loop["late"],
            "steps": len(step_ms),
            # what the agent did: each command's share of the steps (an agent stuck on one key shows here)
            "command_shares": {c.name: round(float(k) / max(1, len(step_ms)), 4)
                               for c, k in zip(env.input_map.commands, loop["commands"])},
            "lag_probe": lag,
            "options": game.resolve_options(dict(opts or {})),
            "hz": hz,
            "backend": env.capture.backend,
            "stopped": loop["stopped"],
            "stopped_at": loop["stopped_at"],
            "gif": rec.write_gif(out),
            "replay": rec.replay_info,
            "mode": mode,
            "checkpoint": str(checkpoint) if checkpoint else "untrained",
            # what the screen showed at each episode's end (e.g. boss HP left): comparable with a simulator's info
            "mean_final_readings": {
                k: round(float(np.mean([e["final"][k] for e in results])), 3)
                for k in (results[0]["final"] if results else {})
                if isinstance(results[0]["final"][k], (int, float))
            },
        }
    )
    return summary


class _PageLive:
    """An open BrowserApp seen as a LiveGame, for callers that opened the page themselves."""

    def __init__(self, page, backend: str | None = None):
        from hakisa.backends import select_backend
        from hakisa.capture import find_window

        if page.evaluate("hakisa.mode()") == "start" and hasattr(page, "click_to_focus"):
            page.click_to_focus()  # a real X click: the window gets focus and the first fight starts
        self.app, self.display, self.region = page, page.display, page.canvas_region
        self.backend = select_backend(backend)
        win = find_window(page.window_title, backend=self.backend, display=page.display)
        self.window_id, self.title = win.id, win.title

