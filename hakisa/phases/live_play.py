"""`hakisa play --duel-page | --window TITLE`: a checkpoint plays a REAL window through the screen.

    hakisa play --checkpoint runs/duel --duel-page --episodes 20            # own Xvfb+server+Chromium if no DISPLAY
    hakisa play --checkpoint runs/duel --window "Hakisa Duel" --episodes 5  # a page you opened (`hakisa duel open`)

The agent sees only pixels (Capture -> preprocess -> FrameStack, the same bytes as in the sim) and
acts only through the safe PynputSink (focus-gated, mouse clamped to the game region, F12 kill
switch, everything released on exit). Rewards and fight ends come from the screen readers
(hakisa/rewards/configs/duel.json). Before the fights, a latency probe measures the action->pixel lag.

Prints JSON as its LAST line: episodes, win_rate, mean_return, step_ms_p50, step_ms_p99, lag_ms
(+ details). step_ms = capture + preprocess + forward + send, the loop's work per step; the screen
readers' time is reported separately (reward_ms_*). A GIF of what the agent saw, with its chosen
command written on each frame, goes into the run folder (live_play.gif), with play_live.json and
TensorBoard scalars (live_tb/: live/episodic_return, live/win_rate, live/step_ms_p50).

`play_live(...)` is the same thing as a function (for notebooks and the whole-chain table).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from hakisa.model import PRETRAINED_DIR
from hakisa.model import find_checkpoint as resolve_checkpoint  # a run dir -> its best/ or checkpoint/

from hakisa.rewards.game import GameJudge


def add_live_args(p: argparse.ArgumentParser) -> None:
    """The live-only options beyond --window/--duel-page (which play.py defines itself): play.py can
    call this to expose them; without it main() uses these defaults."""
    p.add_argument("--reward-config", default="duel", help="screen rules: a shipped name or a .json/.yaml path")
    p.add_argument("--hz", type=float, default=15.0, help="decisions per second (15 = the sim's frame_skip 4)")
    p.add_argument("--probe-trials", type=int, default=5, help="latency probe presses before the fights (0: skip)")
    p.add_argument("--gif-episodes", type=int, default=1, help="episodes recorded into the GIF (0: none)")
    p.add_argument("--max-steps", type=int, default=None, help="truncate an episode after this many steps")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint dir or run dir (runs/<name>)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--tier", default="normal", help="boss tier of the duel page")
    p.add_argument("--deterministic", action="store_true", help="argmax actions instead of sampling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the GIF and play_live.json (default: the checkpoint's run folder)")
    p.add_argument("--window", default=None, help="play the window whose title contains this text")
    p.add_argument("--duel-page", action="store_true", help="bring up the duel page (own Xvfb if no DISPLAY) and play it")
    add_live_args(p)


def pick_policy(net, doc: dict, deterministic: bool, head: str = "auto"):
    """obs uint8 [C,H,W] -> action [3] (or a batch [B,C,H,W] -> [B,3]). head "q": greedy branching Q;
    "policy": the policy heads, sampled or argmax (`deterministic`); "auto": "q" for DQN checkpoints
    (the same rule as play.py's evaluate)."""
    import torch

    greedy_q = head == "q" or (head == "auto" and str(doc.get("algo", {}).get("algo", "")).lower() == "dqn")
    keys_only = int(net.input_map.x_bins) == 1 and int(net.input_map.y_bins) == 1

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(obs))
        single = x.ndim == 3
        x = x.unsqueeze(0) if single else x
        with torch.inference_mode():
            if greedy_q:
                a = net.act_greedy_q(x)
            else:
                # net.act's distribution, sampled by Gumbel-argmax: the same draw law, but without building
                # three torch.distributions objects per step (that alone cost ~0.6 ms of a ~1 ms step)
                if keys_only:  # one x/y bin: those heads always say 0, so skip them (and the value head)
                    heads = [net.pi_cmd(net.features(x))]
                else:
                    heads = net.policy(x)[:3]
                if not deterministic:
                    heads = [lg - torch.empty_like(lg).exponential_().log() for lg in heads]
                a = torch.stack([lg.argmax(1) for lg in heads], 1)
                a = net.canonical(torch.cat([a, torch.zeros(len(a), 2, dtype=a.dtype)], 1) if keys_only else a)
        return a[0].numpy() if single else a.numpy()

    return act


def write_gif(path: Path, frames: list[np.ndarray], labels: list[str], fps: float, scale: int = 2, every: int = 2) -> Path:
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


def play_live(checkpoint: str | Path, *, duel_page: bool = False, window: str | None = None, episodes: int = 20,
              tier: str = "normal", deterministic: bool = False, hz: float = 15.0, reward_config: str = "duel",
              probe_trials: int = 5, gif_episodes: int = 1, out: str | Path | None = None, seed: int = 0,
              max_steps: int | None = None, page=None, progress: bool = True, head: str = "auto") -> dict:
    """Play `episodes` fights on a live window; returns the summary dict (also written to out/play_live.json).

    page: an already-open `DuelPage` to reuse (benchmarks); otherwise `duel_page=True` opens one.
    """
    import torch

    from hakisa.capture import Capture, find_window
    from hakisa.envs.screen import ScreenEnv, latency_probe
    from hakisa.model import load_checkpoint
    from hakisa.sink import KillSwitch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # one small forward per step: a second thread only adds hand-off latency
    checkpoint = resolve_checkpoint(checkpoint)
    net, doc = load_checkpoint(checkpoint)
    net.eval()
    act = pick_policy(net, doc, deterministic, head)
    imap, spec = net.input_map, net.obs_spec
    judge = GameJudge.load(reward_config)
    if out is None:  # the run folder; a shipped checkpoint's GIF goes to runs/, never into the package
        out = (Path("runs") / f"pretrained-{checkpoint.name}" if checkpoint.parent == PRETRAINED_DIR
               else checkpoint.parent if checkpoint.name in ("checkpoint", "best") else checkpoint)
    out = Path(out)

    with ExitStack() as stack:
        old_display = os.environ.get("DISPLAY")
        stack.callback(lambda: os.environ.__setitem__("DISPLAY", old_display) if old_display else os.environ.pop("DISPLAY", None))
        if page is None and duel_page:
            from hakisa.envs.duel.web import DuelPage

            page = stack.enter_context(DuelPage(tier=tier))
        if page is not None:
            os.environ["DISPLAY"] = page.display  # pynput and mss talk to $DISPLAY: the page's, maybe our own Xvfb
            if page.evaluate("hakisa.mode()") == "start":
                page.click_to_focus()  # a real X click: the window gets focus and the first fight starts
            region, title = page.canvas_region, page.window_title
        elif window:
            title, region = window, None
        else:
            raise ValueError("play_live needs duel_page=True, a page, or a window title")
        win = find_window(title)
        if region is None:  # a window: the game's canvas sits at `window_canvas` inside it (the duel page's layout)
            wl, wt, ww, wh = win.region
            box = judge.cfg.get("window_canvas", [0, 0, ww, wh])
            region = (wl + box[0], wt + box[1], box[2], box[3])
        capture = stack.enter_context(Capture(region=region, spec=spec))
        env = ScreenEnv(imap, judge, capture=capture, focus_window=win.id, obs_spec=spec, hz=hz, max_steps=max_steps)
        stack.callback(env.close)

        lag = {"lag_ms": None}
        probe = judge.cfg.get("probe")
        if probe_trials > 0 and probe:
            env.reset()
            cmd = next(i for i, c in enumerate(imap.commands) if c.name == probe["command"])
            lag = latency_probe(capture, env.sink, np.array([cmd, 0, 0]), tuple(probe["region"]), canvas=judge.canvas,
                                trials=probe_trials, threshold=probe.get("threshold", 3.0))
            env.navigate("restart")  # the probe spent some of that fight: start a fresh one

        from tqdm import tqdm

        results, step_ms, reward_ms, late, frames, labels = [], [], [], 0, [], []
        parts: dict[str, list[float]] = {"capture": [], "preprocess": [], "forward": [], "send": []}
        stopped, stopped_at = "episodes", None
        bar = tqdm(total=episodes, desc="live fights", unit="fight", disable=not progress)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "live_tb"))  # per-fight curves beside the run's training curves
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
                    for k, v in (("capture", tm["capture_ms"]), ("preprocess", tm["preprocess_ms"]), ("forward", t_fwd),
                                 ("send", tm["send_ms"])):
                        parts[k].append(v)
                    late += info["missed_ticks"] > 0
                    if ep < gif_episodes:
                        frames.append(obs[-spec.channels:].copy())
                        labels.append(f"ep{ep} t{info['step']:4d} {imap.commands[int(a[0])].name:11s} R{env.episode_return:+6.1f}")
                    if term or trunc:
                        break
                results.append({"winner": info["winner"], "return": env.episode_return, "steps": info["step"],
                                "final": info["readings"]})
                writer.add_scalar("live/episodic_return", env.episode_return, ep)
                writer.add_scalar("live/win_rate", np.mean([e["winner"] == 1 for e in results]), ep)
                writer.add_scalar("live/step_ms_p50", float(np.percentile(step_ms, 50)), ep)
                bar.update(1)
                bar.set_postfix(win_rate=f"{np.mean([e['winner'] == 1 for e in results]):.2f}")
        except KillSwitch:
            stopped = "kill_switch"
            stopped_at = time.perf_counter()  # the loop has ended here (benchmarks time the kill switch by it)
        finally:
            bar.close()

    gif = None
    if frames:
        gif = str(write_gif(out / "live_play.gif", frames, labels, fps=hz))
    n = len(results)
    summary = {
        "episodes": n,
        "win_rate": round(float(np.mean([e["winner"] == 1 for e in results])), 4) if n else None,
        "mean_return": round(float(np.mean([e["return"] for e in results])), 3) if n else None,
        "step_ms_p50": pct(step_ms, 50), "step_ms_p99": pct(step_ms, 99),
        "lag_ms": None if lag["lag_ms"] is None or not np.isfinite(lag["lag_ms"]) else round(lag["lag_ms"], 2),
        "reward_ms_p50": pct(reward_ms, 50), "reward_ms_p99": pct(reward_ms, 99),
        "parts_ms_p50": {k: pct(v, 50) for k, v in parts.items()}, "parts_ms_p99": {k: pct(v, 99) for k, v in parts.items()},
        "late_steps": late, "steps": len(step_ms), "lag_probe": lag, "tier": tier, "hz": hz,
        "stopped": stopped, "stopped_at": stopped_at, "gif": gif, "deterministic": deterministic, "head": head, "checkpoint": str(checkpoint),
        "outcomes": [e["winner"] for e in results],
        # what the screen showed at each fight's end (e.g. boss HP left): comparable with the sim's info
        "mean_final_readings": {k: round(float(np.mean([e["final"][k] for e in results])), 3)
                                for k in (results[0]["final"] if results else {}) if isinstance(results[0]["final"][k], (int, float))},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "play_live.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(args) -> int:
    if not (getattr(args, "duel_page", False) or getattr(args, "window", None)):
        raise SystemExit("live play needs --duel-page or --window TITLE")
    g = lambda k, d=None: getattr(args, k, d)  # noqa: E731  (play.py may not define every live option)
    # play.py's flags: --sample (default argmax, as its sim evaluate) and --head; ours: --deterministic
    deterministic = (not args.sample) if hasattr(args, "sample") else g("deterministic", False)
    summary = play_live(args.checkpoint, duel_page=g("duel_page", False), window=g("window"), episodes=g("episodes", 20),
                        tier=g("tier", "normal"), deterministic=deterministic, head=g("head", "auto"), hz=g("hz", 15.0),
                        reward_config=g("reward_config", "duel"), probe_trials=g("probe_trials", 5),
                        gif_episodes=g("gif_episodes", 1), out=g("out"), seed=g("seed", 0) or 0, max_steps=g("max_steps"))
    print(json.dumps(summary))
    return 0
