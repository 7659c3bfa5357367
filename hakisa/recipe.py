"""A game file's training recipe turned into what a learner runs on: the frame size, the simulator's vector
env, the learner's Args, the reward overrides and the run folder. `hakisa train`, `hakisa evolve`,
`hakisa sweep`, Ray's workers (distributed.EnvRecipe) and the benchmarks build their runs here, so a sweep's
best trial or a worker's envs are the ones `hakisa train` would build.
"""
from __future__ import annotations

import json
from pathlib import Path

from hakisa.preprocess import ObsSpec


def parse_obs(text: str) -> ObsSpec:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--obs {text!r}: expected WIDTHxHEIGHT, e.g. 80x45") from None
    return ObsSpec(width=w, height=h)


# what a learner's entry in a game file's recipe may hold besides its Args fields
RECIPE_KEYS = ("num_envs", "init")


def recipe_algo(game, algo: str | None, in_sim: bool = True) -> str:
    """--algo, else (in a simulator) the game recipe's `algo` (the duel's: distill), else ppo."""
    recipe = game.doc.get("train", {}) if game is not None and in_sim else {}
    return algo or recipe.get("algo") or "ppo"


def game_envs(game, n: int | None, seed: int, opts: dict | None = None, obs: str | None = None,
              algo: str | None = None):
    """The game's simulator as `hakisa train` builds it from the file's recipe; returns (envs, recipe).
    The env count: n, else the learner's own recipe entry's num_envs, else the recipe's, else 16."""
    recipe = game.doc.get("train", {})
    n = n or recipe.get(algo or "", {}).get("num_envs") or recipe.get("num_envs", 16)
    spec = parse_obs(obs) if obs else ObsSpec(**{**vars(game.obs_spec), **recipe.get("obs", {})})
    return game.sim_vec(n, seed=seed, opts={**recipe.get("opts", {}), **(opts or {})}, obs_spec=spec), recipe


def learner_args(algo, recipe: dict, *, steps: int | None, minutes: float | None, seed: int, encoder: str,
                 progress: bool, overrides: dict):
    """The learner's Args as `hakisa train` builds them in a simulator: 1M steps, the game's recipe, the
    budget given (--steps, --minutes), then overrides (--set, a sweep trial's values). `hakisa sweep` builds
    its trials here too, so its best.json reproduces a trial exactly."""
    name = algo.__name__.rsplit(".", 1)[-1]
    return algo.Args(**{"total_steps": 1_000_000, "seed": seed, "encoder": encoder, "progress": progress,
                        **{k: v for k, v in recipe.get(name, {}).items()
                           if k not in RECIPE_KEYS and not k.startswith("_")},  # "_..." keys are comments
                        **({"total_steps": steps} if steps else {}), **({"max_minutes": minutes} if minutes else {}),
                        **overrides})


def reward_overrides(game, pairs: list[str] | None, sim: bool = True):
    """The game with --reward NAME=VALUE applied to its rules.reward (Game.with_reward). In a simulator
    that does not take the file's reward (no `sim.reward: "rules"`) they would change nothing: refused."""
    if not pairs:
        return game
    if game is None:
        raise SystemExit("--reward: needs a game file (--game): the coefficients live in its rules.reward")
    if sim and game.sim and game.sim.get("reward") != "rules":
        raise SystemExit(f"--reward: game {game.name!r}'s simulator does not pay the file's reward "
                         "(its `sim` entry has no reward: \"rules\"), so the coefficients would change nothing")
    values = {}
    for kv in pairs:
        k, eq, v = kv.partition("=")
        try:
            values[k.removeprefix("reward.")] = float(v)
        except ValueError:
            raise SystemExit(f"--reward {kv!r}: NAME=NUMBER expected, e.g. deltas.boss_hp=-0.5") from None
    return game.with_reward(values)


def run_dir_of(args) -> Path:
    """runs/<--run>, else runs/<algo>-<env id> (train and evolve)."""
    return Path(args.runs_dir) / (args.run or f"{args.algo}-{args.env.replace('/', '-')}")


def run_algo(algo, envs, a, args, **kw) -> tuple[Path, dict]:
    """Shared by train and evolve: optional --init weights, runs/<name>, train(..., **kw), close the envs."""
    net = None
    if args.init:
        from hakisa.model import load_checkpoint

        net, _ = load_checkpoint(args.init, input_map=envs.input_map, obs_spec=envs.obs_spec)
    run_dir = run_dir_of(args)
    if getattr(args, "game_file", None):  # the run knows its game: plot, arena and diagnose need no --env
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "game.json").write_text(json.dumps({"game": args.env, "game_file": args.game_file}))
    try:
        return run_dir, algo.train(envs, a, run_dir, net=net, **kw)
    finally:
        envs.close()

