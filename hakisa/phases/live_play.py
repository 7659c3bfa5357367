"""`hakisa play --game G --live`: a checkpoint plays a game's REAL window through the screen.

    hakisa play --game pop --checkpoint runs/pop-bc --episodes 20      # launches the page (own Xvfb if no DISPLAY)
    hakisa play --game duel --live --checkpoint runs/duel --opt tier=hard
    hakisa play --game mygame.json --checkpoint runs/mine --window "My Game"  # a window you opened

The agent sees only pixels (Capture -> preprocess -> FrameStack, the same bytes as in a simulator) and
acts only through the safe live sink (focus-gated, mouse clamped to the game region, kill switch,
everything released on exit), on the x11 or portable backend (--backend, hakisa.backends). Rewards,
episode ends and outcomes come from the game file's screen rules.
Before the episodes, a latency probe (the rules' `probe`) measures the action->pixel lag.

Prints JSON as its LAST line: episodes, win_rate (games that are won or lost) or mean_score with its 95 %
interval (score games), mean_return, step_ms_p50/p99, lag_ms (+ details). step_ms = capture + preprocess +
forward + send, the loop's work per step; the screen readers' time is reported separately (reward_ms_*).
A GIF of what the agent saw, with its chosen command written on each frame, goes into the output folder
(live_play.gif), with play_live.json and TensorBoard scalars (live_tb/).

`play_live(...)` is the same thing as a function (for notebooks and benchmarks).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hakisa.algos.common import ci95
from hakisa.model import PRETRAINED_DIR, find_checkpoint


def add_live_args(p: argparse.ArgumentParser) -> None:
    """The live-only options; play.py exposes them."""
    p.add_argument("--probe-trials", type=int, default=5, help="latency probe presses before the episodes (0: skip)")
    p.add_argument("--gif-episodes", type=int, default=1, help="episodes recorded into the GIF (0: none)")
    p.add_argument("--max-steps", type=int, default=None, help="truncate an episode after this many steps")
    p.add_argument("--hz", type=float, default=None, help="decisions per second (default: the game file's hz)")
    p.add_argument("--stuck-warn", type=float, default=30.0, metavar="S",
                   help="warn when the screen stops matching the rules for S seconds (no in_play, readings that "
                        "never change, an episode far longer than any before)")
    p.add_argument("--stuck-stop", type=float, default=120.0, metavar="S",
                   help="stop (one hakisa: line, exit 2) when it still does not after S seconds")


def numpy_policy(net, mode: str):
    """`net.act(obs, mode)` for numpy frames: uint8 [C,H,W] -> action [3], or a batch [B,C,H,W] -> [B,3]."""
    import torch

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(obs))
        single = x.ndim == 3
        with torch.inference_mode():
            a = net.act(x.unsqueeze(0) if single else x, mode).numpy()
        return a[0] if single else a

    return act


def write_gif(
    path: Path, frames: list[np.ndarray], labels: list[str], fps: float, scale: int = 2, every: int = 2
) -> Path:
    """What the agent saw (the newest preprocessed frame), enlarged, with its chosen command written on it."""
    import cv2
    import imageio.v2 as imageio

    out = []
    for f, text in zip(frames[::every], labels[::every]):
        img = f[0] if f.shape[0] == 1 else f.transpose(1, 2, 0)
        img = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else np.ascontiguousarray(img)
        cv2.rectangle(img, (0, img.shape[0] - 18), (img.shape[1], img.shape[0]), (0, 0, 0), -1)
        cv2.putText(img, text, (4, img.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        out.append(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, out, duration=1000 * every / fps, loop=0)
    return path


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
) -> dict:
    """Play `episodes` episodes on a game's live window; returns the summary (also written to out/play_live.json).

    game: a Game, or a shipped name / path of a game file. checkpoint: None plays an untrained net (a
    baseline). live: an already-open `LiveGame` to reuse (benchmarks); otherwise the game is opened (launched
    when its file says how, else found by `window` or its title). page: an already-open BrowserApp (a
    benchmark's own page). backend: the capture and input backend (default $HAKISA_BACKEND, else auto).
    stuck_warn, stuck_stop: seconds the screen may not match the rules before a warning, and before a stop
    (RulesMismatch; hakisa.envs.rules_watch).
    """
    import torch

    from hakisa.envs.rules_watch import RulesWatch, check_arg
    from hakisa.envs.screen import latency_probe
    from hakisa.game import Game
    from hakisa.sink import KillSwitch

    game = game if isinstance(game, Game) else Game.load(game)
    opts = dict(opts or {})
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # one small forward per step: a second thread only adds hand-off latency
    net, act, mode, checkpoint = load_agent(checkpoint, game, deterministic, head, seed)
    imap, spec = net.input_map, net.obs_spec
    hz = hz or game.hz
    if out is None:  # the run folder; a shipped checkpoint's GIF goes to runs/, never into the package
        out = (
            Path("runs") / f"{game.name}-untrained"
            if checkpoint is None
            else Path("runs") / f"pretrained-{checkpoint.name}"
            if checkpoint.parent == PRETRAINED_DIR
            else checkpoint.parent
            if checkpoint.name in ("checkpoint", "best")
            else checkpoint
        )
    out = Path(out)

    with ExitStack() as stack:
        if live is None and page is not None:
            live = _PageLive(page, backend)
        if live is None:
            if window:
                game.window = {k: v for k, v in game.window.items() if k not in ("launch", "region")} | {
                    "title": window
                }
                if isinstance(game.window.get("canvas"), str):
                    game.window.pop("canvas")
            live = stack.enter_context(game.open(opts=opts, backend=backend))
        old_display = os.environ.get("DISPLAY")
        stack.callback(
            lambda: os.environ.__setitem__("DISPLAY", old_display) if old_display else os.environ.pop("DISPLAY", None)
        )
        os.environ["DISPLAY"] = live.display
        watch = RulesWatch(stuck_warn, stuck_stop, game_file=check_arg(game))
        env = game.screen_env(live, obs_spec=spec, hz=hz, max_steps=max_steps, watch=watch)
        stack.callback(env.close)
        judge, capture = env.judge, env.capture

        lag = {"lag_ms": None}
        probe = judge.cfg.get("probe")
        if probe_trials > 0 and probe:
            env.reset()
            cmd = next(i for i, c in enumerate(imap.commands) if c.name == probe["command"])
            lag = latency_probe(
                capture,
                env.sink,
                np.array([cmd, 0, 0]),
                tuple(probe["region"]),
                canvas=judge.canvas,
                trials=probe_trials,
                threshold=probe.get("threshold", 3.0),
            )
            env.navigate("restart")  # the probe spent some of that episode: start a fresh one

        from tqdm import tqdm

        results, step_ms, reward_ms, late, frames, labels = [], [], [], 0, [], []
        parts: dict[str, list[float]] = {"capture": [], "preprocess": [], "forward": [], "send": []}
        stopped, stopped_at = "episodes", None
        bar = tqdm(total=episodes, desc=f"live {game.name}", unit="episode", disable=not progress)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "live_tb"))  # per-episode curves beside the run's training curves
        stack.callback(writer.close)
        try:
            for ep in range(episodes):
                obs, info = env.reset()
                t_fwd = 0.0
                while True:
                    t0 = time.perf_counter()
                    a = act(obs)
                    t_fwd = (time.perf_counter() - t0) * 1e3
                    obs, r, term, trunc, info = env.step(a)
                    tm = info["timing"]
                    # the loop's own work per step; decide_ms also counts this Python loop and GIF bookkeeping
                    step_ms.append(tm["capture_ms"] + tm["preprocess_ms"] + t_fwd + tm["send_ms"])
                    reward_ms.append(tm["reward_ms"])
                    for k, v in (
                        ("capture", tm["capture_ms"]),
                        ("preprocess", tm["preprocess_ms"]),
                        ("forward", t_fwd),
                        ("send", tm["send_ms"]),
                    ):
                        parts[k].append(v)
                    late += info["missed_ticks"] > 0
                    if ep < gif_episodes:
                        frames.append(obs[-spec.channels :].copy())
                        labels.append(
                            f"ep{ep} t{info['step']:4d} {imap.commands[int(a[0])].name:11s} R{env.episode_return:+6.1f}"
                        )
                    if term or trunc:
                        break
                results.append(
                    {
                        "winner": info.get("winner"),
                        "score": info.get("score"),
                        "return": env.episode_return,
                        "steps": info["step"],
                        "final": info["readings"],
                    }
                )
                writer.add_scalar("live/episodic_return", env.episode_return, ep)
                post = {}
                if judge.won_or_lost:
                    post["win_rate"] = np.mean([e["winner"] == judge.win_winner for e in results])
                if judge.score is not None:
                    post["score"] = np.mean([e["score"] or 0 for e in results])
                for k, v in post.items():
                    writer.add_scalar(f"live/{k}", v, ep)
                writer.add_scalar("live/step_ms_p50", float(np.percentile(step_ms, 50)), ep)
                bar.update(1)
                bar.set_postfix({k: f"{v:.2f}" for k, v in post.items()})
        except KillSwitch:
            stopped = "kill_switch"
            stopped_at = time.perf_counter()  # the loop has ended here (benchmarks time the kill switch by it)
        finally:
            bar.close()

    gif = None
    if frames:
        gif = str(write_gif(out / "live_play.gif", frames, labels, fps=hz))
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
    summary.update(
        {
            "mean_return": round(float(np.mean([e["return"] for e in results])), 3) if n else None,
            "step_ms_p50": pct(step_ms, 50),
            "step_ms_p99": pct(step_ms, 99),
            "lag_ms": None if lag["lag_ms"] is None or not np.isfinite(lag["lag_ms"]) else round(lag["lag_ms"], 2),
            "reward_ms_p50": pct(reward_ms, 50),
            "reward_ms_p99": pct(reward_ms, 99),
            "parts_ms_p50": {k: pct(v, 50) for k, v in parts.items()},
            "parts_ms_p99": {k: pct(v, 99) for k, v in parts.items()},
            "late_steps": late,
            "steps": len(step_ms),
            "lag_probe": lag,
            "options": game.resolve_options(opts),
            "hz": hz,
            "backend": capture.backend,
            "stopped": stopped,
            "stopped_at": stopped_at,
            "gif": gif,
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "play_live.json").write_text(json.dumps(summary, indent=1))
    return summary


class _PageLive:
    """An open BrowserApp seen as a LiveGame, for callers that opened the page themselves."""

    def __init__(self, page, backend: str | None = None):
        from hakisa.backends import select_backend
        from hakisa.capture import find_window

        os.environ["DISPLAY"] = page.display
        if page.evaluate("hakisa.mode()") == "start" and hasattr(page, "click_to_focus"):
            page.click_to_focus()  # a real X click: the window gets focus and the first fight starts
        self.app, self.display, self.region = page, page.display, page.canvas_region
        self.backend = select_backend(backend)
        win = find_window(page.window_title, backend=self.backend)
        self.window_id, self.title = win.id, win.title


def load_agent(checkpoint, game, deterministic: bool | None, head: str = "auto", seed: int = 0):
    """(net, act, its act mode, checkpoint path or None) for a checkpoint, or for a fresh untrained net (checkpoint None
    or "untrained") built for the game's observation and input map: the baseline every agent should beat."""
    from hakisa.model import HakisaNet, act_mode, load_checkpoint

    if checkpoint in (None, "untrained"):
        import torch

        torch.manual_seed(seed)
        net, doc, checkpoint = HakisaNet(game.obs_spec, game.input_map), {}, None
    else:
        checkpoint = find_checkpoint(checkpoint)
        net, doc = load_checkpoint(checkpoint, input_map=game.input_map)  # refuses another game's actions
    net.eval()
    mode = act_mode(doc, head, deterministic)
    return net, numpy_policy(net, mode), mode, checkpoint


def main(args) -> int:
    from hakisa.game import parse_opts

    g = lambda k, d=None: getattr(args, k, d)  # noqa: E731  (play.py may not define every live option)
    from hakisa.phases.play import chosen_mode

    # play.py's flags: --sample / --argmax (default: the checkpoint's preference); ours: --deterministic
    deterministic = chosen_mode(args) if hasattr(args, "sample") else g("deterministic", False)
    game = g("game")
    if not 0 < g("stuck_warn", 30.0) <= g("stuck_stop", 120.0):
        raise SystemExit("hakisa play: --stuck-warn must be over 0 and at most --stuck-stop")
    if not game:
        raise SystemExit("hakisa play: give --game NAME|PATH (the screen rules of the window it plays)")
    summary = play_live(
        g("checkpoint"),
        game=game,
        opts=parse_opts(g("opt")),
        window=g("window"),
        episodes=g("episodes", 20),
        deterministic=deterministic,
        head=g("head", "auto"),
        hz=g("hz"),
        probe_trials=g("probe_trials", 5),
        gif_episodes=g("gif_episodes", 1),
        out=g("out"),
        seed=g("seed", 0) or 0,
        max_steps=g("max_steps"),
        stuck_warn=g("stuck_warn", 30.0),
        stuck_stop=g("stuck_stop", 120.0),
    )
    print(json.dumps(summary))
    return 0
