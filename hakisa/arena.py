"""`hakisa arena CHECKPOINT... --episodes N`: a leaderboard of agents.

Every agent plays every duel tier (easy, normal, hard) for N fights on fixed seeds; agents for other
envs (stable-retro games, which have scores, not winners) play N episodes of their own env on fixed
seeds. The play loop is `hakisa.phases.play.evaluate`, the same one `hakisa play` uses.

The table ranks agents per env by mean win rate over the tiers (duel) or by mean return, and shows
the win rate's 95% Wilson interval per tier, the mean return, env steps per second and the number
of parameters. It is saved as leaderboard.json and leaderboard.csv. A "champion" is just a
checkpoint directory: the board links to each one, and `hakisa play --checkpoint <dir>` loads it.

Baselines (duel): `random` (uniform random commands, through the same evaluate loop) and `expert`
(the scripted expert reading the true sim state), so a learned agent's numbers have a scale.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np

TIERS = ("easy", "normal", "hard")
BASELINES = ("random", "expert")


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: honest at 0% and 100% (unlike p ± z·se)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _cell(agent: str, env_id: str, tier: str | None, summary: dict, seconds: float, params: int,
          checkpoint: str | None, head: str, seed: int) -> dict:
    n = int(summary.get("episodes", 0))
    steps = summary.get("mean_length", 0.0) * n  # agent decisions over the finished episodes
    cell = {"agent": agent, "env": env_id, "tier": tier, "seed": seed, "episodes": n,
            "mean_return": summary.get("mean_return"), "std_return": summary.get("std_return"),
            "mean_length": summary.get("mean_length"), "steps_per_s": steps / max(seconds, 1e-9),
            "params": params, "head": head, "checkpoint": checkpoint}
    if "win_rate" in summary:
        wins = int(round(summary["win_rate"] * n))
        lo, hi = wilson(wins, n)
        cell.update(wins=wins, win_rate=summary["win_rate"], ci_low=lo, ci_high=hi)
    elif n > 1 and summary.get("std_return") is not None:  # scores: a normal-approximation interval
        half = 1.96 * summary["std_return"] / math.sqrt(n)
        cell.update(ci_low=summary["mean_return"] - half, ci_high=summary["mean_return"] + half)
    return cell


def play_checkpoint(checkpoint: str | Path, episodes: int, tiers=TIERS, seed: int = 12345, num_envs: int = 16,
                    deterministic: bool = True, env: str | None = None, progress: bool = False,
                    env_kwargs: dict | None = None, name: str | None = None) -> list[dict]:
    """One agent: a cell per duel tier (or one cell for a score env), via play.evaluate.
    env_kwargs go to the env constructor (e.g. {"max_episode_steps": 500} for a retro game)."""
    from dataclasses import replace

    from hakisa.diagnose import env_id_for, make_env
    from hakisa.envs.make import DUEL_ID
    from hakisa.model import load_checkpoint, read_checkpoint_config
    from hakisa.phases.play import evaluate
    from hakisa.plot import find_checkpoint

    ckpt = find_checkpoint(checkpoint)
    if ckpt is None:
        raise FileNotFoundError(f"{checkpoint}: no model.safetensors here or in best/ or checkpoint/")
    doc = read_checkpoint_config(ckpt)
    env_id = env_id_for(doc, env)
    name = name or _agent_name(Path(checkpoint))
    cells = []
    for tier in (tiers if env_id == DUEL_ID else (None,)):
        envs = make_env(env_id, max(1, min(num_envs, episodes)), seed, tier, doc["obs_spec"], **(env_kwargs or {}))
        try:
            net, cfg = load_checkpoint(ckpt, input_map=envs.input_map)  # refuses another action vocabulary
            if replace(net.obs_spec, crop=None) != replace(envs.obs_spec, crop=None):  # a crop only applies to windows
                raise ValueError(f"{ckpt} expects observations {net.obs_spec} but {env_id} gives {envs.obs_spec}")
            head = "q" if cfg.get("algo", {}).get("algo") == "dqn" else "policy"  # as `hakisa play`
            t0 = time.perf_counter()
            summary = evaluate(net, envs, episodes, deterministic=deterministic, head=head, seed=seed, progress=progress)
            dt = time.perf_counter() - t0
        finally:
            envs.close()
        cells.append(_cell(name, env_id, tier, summary, dt, sum(p.numel() for p in net.parameters()),
                           str(ckpt.resolve()), head, seed))
    return cells


def play_random(episodes: int, tiers=TIERS, seed: int = 12345, num_envs: int = 16) -> list[dict]:
    """Uniform random commands through the same evaluate loop (epsilon=1: every action is random)."""
    from hakisa.diagnose import make_env
    from hakisa.envs.make import DUEL_ID
    from hakisa.model import HakisaNet
    from hakisa.phases.play import evaluate

    cells = []
    for tier in tiers:
        envs = make_env(DUEL_ID, max(1, min(num_envs, episodes)), seed, tier)
        try:
            net = HakisaNet(envs.obs_spec, envs.input_map)  # never decides: epsilon=1 overrides it
            t0 = time.perf_counter()
            summary = evaluate(net, envs, episodes, seed=seed, epsilon=1.0)
            dt = time.perf_counter() - t0
        finally:
            envs.close()
        cells.append(_cell("random", DUEL_ID, tier, summary, dt, 0, None, "random", seed))
    return cells


def play_expert(episodes: int, tiers=TIERS, seed: int = 12345, num_envs: int = 16, collect=None,
                obs_spec=None) -> list[dict]:
    """The scripted expert (true sim state, no pixels) in the same vector env and episode bookkeeping.

    collect: an `hakisa.data.EpisodeWriter`; each counted fight is written to it (what the expert saw
    before each decision, the command it chose, reward, done), as `evaluate(collect=...)` does for an
    agent. This is how notebooks and tests make a teacher dataset without a display.
    obs_spec: render at this spec (e.g. a smaller one for a fast study run); default the env's."""
    from hakisa.algos.common import EpisodeStats, summarize
    from hakisa.diagnose import make_env
    from hakisa.envs.duel.expert import expert_keys
    from hakisa.envs.duel.sim import KEYS_TO_COMMAND
    from hakisa.envs.make import DUEL_ID

    cells = []
    for tier in tiers:
        n = max(1, min(num_envs, episodes))
        envs = make_env(DUEL_ID, n, seed, tier, obs_spec)
        c = envs.obs_spec.channels
        quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])  # as evaluate: no short-episode bias
        count, stats, eps, buf = np.zeros(n, int), EpisodeStats(n), [], [[] for _ in range(n)]
        t0 = time.perf_counter()
        try:
            obs, _ = envs.reset(seed=seed)
            while np.minimum(count, quota).sum() < quota.sum():
                cmd = KEYS_TO_COMMAND[expert_keys(envs.fights.sim.state)]
                a = np.stack([cmd, 0 * cmd, 0 * cmd], 1)
                nobs, r, term, trunc, info = envs.step(a)
                r = np.asarray(r, np.float64)
                if collect is not None:
                    for i in range(n):
                        buf[i].append((obs[i, -c:].copy(), a[i], float(r[i]), bool(term[i])))
                for i, ep in zip(np.flatnonzero(np.logical_or(term, trunc)), stats.update(r, term, trunc, info)):
                    if count[i] < quota[i]:
                        eps.append(ep)
                        if collect is not None:
                            collect.begin_episode(tier=tier, **{k: v for k, v in ep.items() if k == "winner"})
                            for f, act, rew, d in buf[i]:
                                collect.add(f, act, rew, d)
                            collect.end_episode()
                    buf[i] = []
                    count[i] += 1
                obs = nobs
        finally:
            envs.close()
        cells.append(_cell("expert", DUEL_ID, tier, summarize(eps), time.perf_counter() - t0, 0, None, "scripted", seed))
    return cells


def leaderboard(cells: list[dict]) -> dict[str, list[dict]]:
    """Group cells into one row per (env, agent), ranked within each env."""
    boards: dict[str, dict[str, dict]] = {}
    for c in cells:
        row = boards.setdefault(c["env"], {}).setdefault(c["agent"], {
            "agent": c["agent"], "checkpoint": c["checkpoint"], "params": c["params"], "cells": {}})
        row["cells"][c["tier"] or "score"] = c
    out = {}
    for env_id, rows in boards.items():
        for r in rows.values():
            cs = list(r["cells"].values())
            wr = [c["win_rate"] for c in cs if "win_rate" in c]
            r["win_rate"] = float(np.mean(wr)) if wr else None
            r["mean_return"] = float(np.mean([c["mean_return"] for c in cs if c["mean_return"] is not None]))
            r["steps_per_s"] = float(np.mean([c["steps_per_s"] for c in cs]))
        ranked = sorted(rows.values(), key=lambda r: (-(r["win_rate"] if r["win_rate"] is not None else -1), -r["mean_return"]))
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        out[env_id] = ranked
    return out


def run_arena(checkpoints: list[str | Path], episodes: int = 50, tiers=TIERS, seed: int = 12345, num_envs: int = 16,
              baselines=BASELINES, out: str | Path | None = "runs/arena", deterministic: bool = True,
              env: str | None = None, progress: bool = False, threads: int = 1, env_kwargs: dict | None = None) -> dict:
    """Play everything, rank, and (if `out`) write leaderboard.json + leaderboard.csv. Returns the JSON doc.

    threads: torch intra-op threads. Evaluation batches are tiny (one obs per env), where a second
    thread gains little and, on a busy machine, spin-waiting threads made forwards ~15x slower."""
    from hakisa.diagnose import torch_threads

    cells = []
    names = [_agent_name(Path(ck)) for ck in checkpoints]
    names = [n if names.count(n) == 1 else f"{n} ({i})" for i, n in enumerate(names)]  # rows are keyed by name
    with torch_threads(threads):
        for ck, name in zip(checkpoints, names):
            cells += play_checkpoint(ck, episodes, tiers, seed, num_envs, deterministic, env, progress, env_kwargs, name)
        if "random" in baselines:
            cells += play_random(episodes, tiers, seed, num_envs)
        if "expert" in baselines:
            cells += play_expert(episodes, tiers, seed, num_envs)
    boards = leaderboard(cells)
    doc = {"episodes": episodes, "seed": seed, "tiers": list(tiers), "deterministic": deterministic,
           "boards": boards, "cells": cells,
           "champions": {e: next((r["checkpoint"] for r in rows if r["checkpoint"]), None) for e, rows in boards.items()}}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "leaderboard.json").write_text(json.dumps(doc, indent=1))
        cols = ["env", "agent", "tier", "episodes", "wins", "win_rate", "ci_low", "ci_high", "mean_return", "std_return",
                "mean_length", "steps_per_s", "params", "head", "seed", "checkpoint"]
        with open(out / "leaderboard.csv", "w", newline="") as f:
            w = csv.DictWriter(f, cols, extrasaction="ignore")
            w.writeheader()
            for rows in boards.values():
                for r in rows:
                    for c in r["cells"].values():
                        w.writerow(c)
        doc["files"] = [str(out / "leaderboard.json"), str(out / "leaderboard.csv")]
    return doc


def print_leaderboard(doc: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and notebooks: don't squeeze the table into 80 columns
            console = Console(width=160)
    for env_id, rows in doc["boards"].items():
        tiers = [t for t in doc["tiers"] if any(t in r["cells"] for r in rows)]
        t = Table(title=f"{env_id}: win % [95% Wilson interval], {doc['episodes']} episodes per cell, seed {doc['seed']}")
        t.add_column("#", justify="right")
        t.add_column("agent")
        for tier in tiers:
            t.add_column(tier, justify="right")
        if not tiers:
            t.add_column("return [95% CI]", justify="right")
        for col in ("mean return", "steps/s", "params", "checkpoint"):
            t.add_column(col, justify="right" if col != "checkpoint" else "left")
        for r in rows:
            cells = []
            for tier in tiers:
                c = r["cells"].get(tier)
                if c is None or "win_rate" not in c:
                    cells.append("-")
                    continue
                text = f"{100 * c['win_rate']:.0f} [{100 * c['ci_low']:.0f}-{100 * c['ci_high']:.0f}]"
                # the interval is over the fights actually counted; say so when that is not the N asked for
                cells.append(text + (f" n={c['episodes']}" if c["episodes"] != doc["episodes"] else ""))
            if not tiers:
                c = r["cells"]["score"]
                cells.append(f"{c['mean_return']:.1f} [{c.get('ci_low', float('nan')):.1f}, {c.get('ci_high', float('nan')):.1f}]")
            ck = r["checkpoint"]
            link = f"[link=file://{ck}]{_short(ck)}[/link]" if ck else "-"
            t.add_row(str(r["rank"]), r["agent"], *cells, f"{r['mean_return']:.2f}", f"{r['steps_per_s']:.0f}",
                      f"{r['params']:,}" if r["params"] else "-", link)
        console.print(t)


def _short(path: str, keep: int = 2) -> str:
    return "/".join(Path(path).parts[-keep - 1:])


def _agent_name(p: Path) -> str:
    return str(p.parent.name + "/" + p.name) if p.name in ("best", "checkpoint") else p.name


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="*", help="checkpoint dirs or run dirs (best/ then checkpoint/)")
    p.add_argument("--episodes", type=int, default=50, help="episodes (fights) per agent per tier")
    p.add_argument("--tiers", default=",".join(TIERS), help="duel tiers, comma-separated")
    p.add_argument("--baselines", default=",".join(BASELINES), help="random,expert or '' for none")
    p.add_argument("--seed", type=int, default=12345, help="fixed env seed, the same for every agent")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    p.add_argument("--env", default=None, help="override the env of every checkpoint")
    p.add_argument("--out", default="runs/arena", help="directory for leaderboard.json / .csv")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")
    p.add_argument("--progress", action="store_true")


def main(args) -> int:
    tiers = tuple(t for t in args.tiers.split(",") if t)
    baselines = tuple(b for b in args.baselines.split(",") if b)
    if not args.checkpoints and not baselines:
        print("hakisa arena: nothing to play (give checkpoints or --baselines)")
        return 2
    doc = run_arena(args.checkpoints, args.episodes, tiers, args.seed, args.num_envs, baselines, args.out,
                    not args.sample, args.env, args.progress, args.threads)
    print_leaderboard(doc)
    for f in doc.get("files", []):
        print(f)
    return 0
