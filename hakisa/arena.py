"""`hakisa arena CHECKPOINT... --episodes N`: a leaderboard of agents.

Every agent plays its game (or env id) for N episodes on fixed seeds, at every setting of the game
file's sweep option (the duel: its tiers easy, normal, hard; a column each), else once. The play loop
is `hakisa.evaluate.evaluate`, the same one `hakisa play` uses; a game with no simulator is played
on its window.

The table ranks agents per game by mean win rate (games that are won or lost), else by mean score (a
score reader), else by mean return, with the win rate's 95% Wilson interval (or the score's normal
interval) per setting, env steps per second and the number of parameters. It is saved as
leaderboard.json and leaderboard.csv. A "champion" is just a checkpoint directory: the board links to
each one, and `hakisa play --checkpoint <dir>` loads it.

Baselines, so a learned agent's numbers have a scale: `untrained` (a freshly initialised net acting as the
agents do: what training must beat) and `random` (uniform random commands), both through the same evaluate
loop on any game, a window's included; `expert` (the game file's scripted baseline, `sim.expert`) where the
simulator has one.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

BASELINES = ("untrained", "random", "expert")


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: honest at 0% and 100% (unlike p ± z·se)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _cell(agent: str, env_id: str, setting: str | None, summary: dict, seconds: float, params: int,
          checkpoint: str | None, mode: str, seed: int) -> dict:
    """One agent at one setting: episodes, return, win rate (Wilson interval) or score (normal interval)."""
    n = int(summary.get("episodes", 0))
    steps = summary.get("mean_length", 0.0) * n  # agent decisions over the finished episodes
    cell = {"agent": agent, "env": env_id, "setting": setting, "seed": seed, "episodes": n,
            "mean_return": summary.get("mean_return"), "std_return": summary.get("std_return"),
            "mean_length": summary.get("mean_length"), "steps_per_s": steps / max(seconds, 1e-9),
            "params": params, "mode": mode, "checkpoint": checkpoint}
    if "win_rate" in summary:
        wins = int(round(summary["win_rate"] * n))
        lo, hi = wilson(wins, n)
        cell.update(wins=wins, win_rate=summary["win_rate"], ci_low=lo, ci_high=hi)
    elif "mean_score" in summary:  # a score game: its score, with a normal-approximation interval
        cell.update(mean_score=summary["mean_score"], ci_low=summary["mean_score"] - summary["score_ci95"],
                    ci_high=summary["mean_score"] + summary["score_ci95"])
    elif n > 1 and summary.get("std_return") is not None:  # no score reader: the return, likewise
        half = 1.96 * summary["std_return"] / math.sqrt(n)
        cell.update(ci_low=summary["mean_return"] - half, ci_high=summary["mean_return"] + half)
    return cell


def play_checkpoint(checkpoint: str | Path, episodes: int, settings=None, seed: int = 12345, num_envs: int = 16,
                    deterministic: bool = True, env: str | None = None, progress: bool = False,
                    env_kwargs: dict | None = None, name: str | None = None) -> list[dict]:
    """One agent: a cell per setting of its game's sweep option (e.g. the duel's tiers), else one cell.
    env: a game (name or file) or env id, instead of the checkpoint's own. env_kwargs go to the env
    constructor (e.g. {"max_episode_steps": 500} for a retro game)."""
    from hakisa.game import recorded_game_file
    from hakisa.model import act_mode, find_checkpoint, load_checkpoint, read_checkpoint_config
    from hakisa.rollout import target_for

    ckpt = find_checkpoint(checkpoint)
    doc = read_checkpoint_config(ckpt)
    target = target_for(doc, env or recorded_game_file(ckpt))
    name = name or _agent_name(Path(checkpoint))

    def agent(envs):
        net, cfg = load_checkpoint(ckpt, input_map=envs.input_map)  # refuses another action vocabulary
        if replace(net.obs_spec, crop=None) != replace(envs.obs_spec, crop=None):  # a crop only applies to windows
            raise ValueError(f"{ckpt} expects observations {net.obs_spec} but {_name(target)} gives {envs.obs_spec}")
        return net, act_mode(cfg, deterministic=deterministic), str(ckpt.resolve())  # as `hakisa play`

    return _play(name, agent, target, episodes, settings, seed, num_envs, progress, env_kwargs,
                 obs_spec=doc["obs_spec"])


def play_random(episodes: int, settings=None, seed: int = 12345, num_envs: int = 16, game=None,
                obs_spec=None) -> list[dict]:
    """Uniform random commands through the same evaluate loop (epsilon=1: every action is random)."""
    from hakisa.model import HakisaNet

    target = _game(game)
    return _play("random", lambda envs: (HakisaNet(envs.obs_spec, envs.input_map), "random", None), target,
                 episodes, settings, seed, num_envs, False, None, obs_spec=obs_spec, epsilon=1.0)


def play_untrained(episodes: int, settings=None, seed: int = 12345, num_envs: int = 16, game=None, obs_spec=None,
                   deterministic: bool = True) -> list[dict]:
    """A freshly initialised net (seeded) acting as the agents act: what any training must beat. Its parameters
    are not counted: it learned none of them."""
    import torch

    from hakisa.model import HakisaNet

    def agent(envs):
        torch.manual_seed(seed)
        return HakisaNet(envs.obs_spec, envs.input_map), "argmax" if deterministic else "sample", None

    return _play("untrained", agent, _game(game), episodes, settings, seed, num_envs, False, None, obs_spec=obs_spec)


def _game(game):
    from hakisa.game import Game

    return game if not isinstance(game, str) else Game.load(game)


def play_expert(episodes: int, settings=None, seed: int = 12345, num_envs: int = 16, game=None, collect=None,
                obs_spec=None) -> list[dict]:
    """The game's scripted baseline (its file's `sim.expert`, e.g. the duel's expert reading the true state),
    a cell per setting. collect: an EpisodeWriter the played episodes go to (a teacher dataset)."""
    import importlib

    target = _game(game)
    entry = (target.sim or {}).get("expert")
    if not entry:
        return []
    mod, fn = entry.split(":")
    expert = getattr(importlib.import_module(mod), fn)
    key, values = target.sweep
    cells = []
    for value in (settings or values):
        opts = {key: value} if key else {}
        t0 = time.perf_counter()
        summary = expert(episodes, opts=opts, seed=seed, num_envs=num_envs, collect=collect, obs_spec=obs_spec)
        cells.append(_cell("expert", target.name, value, summary, time.perf_counter() - t0, 0, None, "scripted", seed))
    return cells


def _name(target) -> str:
    return getattr(target, "name", target)


def _play(name, agent, target, episodes, settings, seed, num_envs, progress, env_kwargs,
          obs_spec=None, epsilon: float = 0.0) -> list[dict]:
    """Cells of one agent over the target's sweep settings: agent(envs) -> (net, act mode or "random", checkpoint)."""
    from hakisa.evaluate import evaluate
    from hakisa.rollout import open_envs

    key, values = target.sweep if hasattr(target, "sweep") else (None, [None])
    cells = []
    for value in (settings or values) if key else [None]:
        opts = {key: value} if key else None
        with open_envs(target, max(1, min(num_envs, episodes)), seed, opts, obs_spec, **(env_kwargs or {})) as envs:
            net, mode, ck = agent(envs)
            t0 = time.perf_counter()
            summary = evaluate(net, envs, episodes, "argmax" if mode == "random" else mode, seed=seed,
                               progress=progress, epsilon=epsilon)
            dt = time.perf_counter() - t0
        params = 0 if ck is None else sum(p.numel() for p in net.parameters())  # a baseline learned nothing
        cells.append(_cell(name, _name(target), value, summary, dt, params, ck, mode, seed))
    return cells


def leaderboard(cells: list[dict]) -> dict[str, list[dict]]:
    """Group cells into one row per (env, agent), ranked within each env."""
    boards: dict[str, dict[str, dict]] = {}
    for c in cells:
        row = boards.setdefault(c["env"], {}).setdefault(
            c["agent"], {"agent": c["agent"], "checkpoint": c["checkpoint"], "params": c["params"], "cells": {}}
        )
        row["cells"][c["setting"] or "score"] = c
    out = {}
    for env_id, rows in boards.items():
        for r in rows.values():
            cs = list(r["cells"].values())
            wr = [c["win_rate"] for c in cs if "win_rate" in c]
            r["win_rate"] = float(np.mean(wr)) if wr else None
            r["mean_return"] = float(np.mean([c["mean_return"] for c in cs if c["mean_return"] is not None]))
            sc = [c["mean_score"] for c in cs if "mean_score" in c]
            r["mean_score"] = float(np.mean(sc)) if sc else None
            r["steps_per_s"] = float(np.mean([c["steps_per_s"] for c in cs]))
        # win rate first (won-or-lost games), then the score (score games), then the return (neither)
        ranked = sorted(rows.values(), key=lambda r: (-(r["win_rate"] if r["win_rate"] is not None else -1),
                        -(r["mean_score"] if r["mean_score"] is not None else -1e9), -r["mean_return"]))
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        out[env_id] = ranked
    return out


def run_arena(
    checkpoints: list[str | Path],
    episodes: int = 50,
    settings=None,
    seed: int = 12345,
    num_envs: int = 16,
    baselines=BASELINES,
    out: str | Path | None = "runs/arena",
    deterministic: bool = True,
    env: str | None = None,
    progress: bool = False,
    threads: int = 1,
    env_kwargs: dict | None = None,
    game: str | None = None,
) -> dict:
    """Play everything, rank, and (if `out`) write leaderboard.json + leaderboard.csv. Returns the JSON doc.

    settings: values of the game's sweep option to play (default: all of them). Baselines play `game`
    (default: the first checkpoint's game). threads: torch intra-op threads.
    Evaluation batches are tiny (one obs per env), where a second thread gains little and, on a busy
    machine, spin-waiting threads made forwards ~15x slower."""
    from hakisa.game import Game
    from hakisa.rollout import torch_threads

    cells = []
    names = [_agent_name(Path(ck)) for ck in checkpoints]
    names = [n if names.count(n) == 1 else f"{n} ({i})" for i, n in enumerate(names)]  # rows are keyed by name
    game, obs_spec = _baseline_game(checkpoints, env, game)
    with torch_threads(threads):
        for ck, name in zip(checkpoints, names):
            cells += play_checkpoint(
                ck, episodes, settings, seed, num_envs, deterministic, env, progress, env_kwargs, name
            )
        if isinstance(game, Game):
            cells += _baseline_cells(baselines, game, episodes, settings, seed, num_envs, obs_spec, deterministic)
    boards = leaderboard(cells)
    key, values = game.sweep if isinstance(game, Game) else (None, [None])
    doc = {
        "episodes": episodes,
        "seed": seed,
        "sweep": key,
        "settings": [v for v in (settings or values) if v is not None],
        "deterministic": deterministic,
        "boards": boards,
        "cells": cells,
        "champions": {e: next((r["checkpoint"] for r in rows if r["checkpoint"]), None) for e, rows in boards.items()},
    }
    if out is not None:
        doc["files"] = _write_board(doc, Path(out))
    return doc


def _baseline_game(checkpoints, env, game):
    """The game the baselines play (a Game, or an env id they cannot play) and the first checkpoint's observation
    spec (an untrained net sees what the agents see)."""
    from hakisa.game import Game, recorded_game_file
    from hakisa.model import find_checkpoint, read_checkpoint_config
    from hakisa.rollout import target_for

    obs_spec = None
    if checkpoints:
        first = find_checkpoint(checkpoints[0])
        doc = read_checkpoint_config(first)
        obs_spec = doc["obs_spec"]
        if game is None:
            game = target_for(doc, env or recorded_game_file(first))
    if isinstance(game, str) and (game.endswith((".json", ".yaml", ".yml")) or not ("/" in game or "-v0" in game)):
        game = Game.load(game)  # a game's name or file; else an env id (Toy/KeyPress-v0), which has no baselines
    return game, obs_spec


def _baseline_cells(baselines, game, episodes, settings, seed, num_envs, obs_spec, deterministic) -> list[dict]:
    """The untrained net and uniform random commands on any game (a window's too: the same episodes as an
    agent, so every agent has a floor beside it), the scripted expert where the simulator has one."""
    cells = []
    if "untrained" in baselines:
        cells += play_untrained(episodes, settings, seed, num_envs, game, obs_spec, deterministic)
    if "random" in baselines:
        cells += play_random(episodes, settings, seed, num_envs, game, obs_spec)
    if "expert" in baselines and game.sim:
        cells += play_expert(episodes, settings, seed, num_envs, game)
    return cells


CSV_COLUMNS = ("env", "agent", "setting", "episodes", "wins", "win_rate", "mean_score", "ci_low", "ci_high",
               "mean_return", "std_return", "mean_length", "steps_per_s", "params", "mode", "seed", "checkpoint")


def _write_board(doc: dict, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.json").write_text(json.dumps(doc, indent=1))
    with open(out / "leaderboard.csv", "w", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(c for rows in doc["boards"].values() for r in rows for c in r["cells"].values())
    return [str(out / "leaderboard.json"), str(out / "leaderboard.csv")]


def print_leaderboard(doc: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and notebooks: don't squeeze the table into 80 columns
            console = Console(width=160)
    for env_id, rows in doc["boards"].items():
        tiers = [t for t in doc["settings"] if any(t in r["cells"] for r in rows)]
        scored = any("mean_score" in c for r in rows for c in r["cells"].values())
        won = any("win_rate" in c for r in rows for c in r["cells"].values())
        what = "win % [95% Wilson interval]" if won else "score [95% interval]" if scored else "return [95% interval]"
        t = Table(title=f"{env_id}: {what}, {doc['episodes']} episodes per cell, seed {doc['seed']}")
        t.add_column("#", justify="right")
        t.add_column("agent")
        for tier in tiers:
            t.add_column(tier, justify="right")
        if not tiers:
            t.add_column("score [95% CI]" if scored else "return [95% CI]", justify="right")
        for col in ("mean return", "steps/s", "params", "checkpoint"):
            t.add_column(col, justify="right" if col != "checkpoint" else "left")
        for r in rows:
            cells = [_cell_text(r["cells"].get(tier), doc["episodes"]) for tier in tiers]
            if not tiers:
                cells.append(_cell_text(r["cells"]["score"], doc["episodes"]))
            ck = r["checkpoint"]
            link = f"[link=file://{ck}]{_short(ck)}[/link]" if ck else "-"
            t.add_row(str(r["rank"]), r["agent"], *cells, f"{r['mean_return']:.2f}", f"{r['steps_per_s']:.0f}",
                      f"{r['params']:,}" if r["params"] else "-", link)
        console.print(t)


def _cell_text(c: dict | None, asked: int) -> str:
    """A cell as the table shows it: win % with its Wilson interval, else the score (else the return) with its
    95 % interval; the number of episodes when fewer finished than were asked for."""
    if c is None:
        return "-"
    if "win_rate" in c:
        text = f"{100 * c['win_rate']:.0f} [{100 * c['ci_low']:.0f}-{100 * c['ci_high']:.0f}]"
    else:
        v = c.get("mean_score", c["mean_return"])
        text = f"{v:.1f} [{c.get('ci_low', float('nan')):.1f}, {c.get('ci_high', float('nan')):.1f}]"
    # the interval is over the episodes actually counted; say so when that is not the N asked for
    return text + (f" n={c['episodes']}" if c["episodes"] != asked else "")


def _short(path: str, keep: int = 2) -> str:
    return "/".join(Path(path).parts[-keep - 1 :])


def _agent_name(p: Path) -> str:
    return str(p.parent.name + "/" + p.name) if p.name in ("best", "checkpoint") else p.name


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="*", help="checkpoint dirs or run dirs (best/ then checkpoint/)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per agent per setting")
    p.add_argument("--settings", default="", help="values of the game's sweep option to play, comma-separated "
                   "(default: all; the duel's are its tiers)")
    p.add_argument("--game", default=None, help="the game the baselines play (default: the first checkpoint's)")
    p.add_argument("--baselines", default=",".join(BASELINES), help="untrained,random,expert or '' for none")
    p.add_argument("--seed", type=int, default=12345, help="fixed env seed, the same for every agent")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    p.add_argument("--env", default=None, help="a game or env id every checkpoint plays instead of its own")
    p.add_argument("--out", default="runs/arena", help="directory for leaderboard.json / .csv")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")
    p.add_argument("--progress", action="store_true")


def main(args) -> int:
    settings = tuple(t for t in args.settings.split(",") if t) or None
    baselines = tuple(b for b in args.baselines.split(",") if b)
    if not args.checkpoints and not (baselines and args.game):
        raise SystemExit("hakisa arena: nothing to play (give checkpoints, or --game with --baselines)")
    doc = run_arena(args.checkpoints, args.episodes, settings, args.seed, args.num_envs, baselines, args.out,
                    not args.sample, args.env, args.progress, args.threads, game=args.game)
    print_leaderboard(doc)
    for f in doc.get("files", []):
        print(f)
    return 0
