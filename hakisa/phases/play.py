"""`hakisa play`: evaluate a checkpoint over N episodes; the LAST line printed is a JSON summary.

    hakisa play --game duel --checkpoint runs/duel-ppo --opt tier=hard --episodes 200   # the game's simulator
    hakisa play --game duel --checkpoint runs/duel-ppo --live --episodes 20             # its real page
    hakisa play --game pop --checkpoint runs/pop-bc --episodes 20                       # no simulator: the window
    hakisa play --game pop --episodes 20                                                # an untrained net (baseline)
    hakisa play --env Hakisa/Duel-v0 --checkpoint runs/duel-ppo --collect datasets/duel-play
    hakisa play --game duel --checkpoint runs/duel-ppo --episodes 20 --replay runs/duel-ppo/replay.mp4

A game with a simulator is played there unless `--live` asks for the window; a game without one is
played on its window (hakisa.phases.live_play). Won-or-lost games report win_rate, score games mean_score.
The episodes are played by `hakisa.evaluate.evaluate`, the loop every caller shares.
--replay PATH (.mp4 or .gif) films the first --gif-episodes episodes at the game's own size (a window's
capture, a simulator's canvas) with the agent's actions drawn as the data viewer draws them (hakisa.video).
"""
from __future__ import annotations

import argparse
import json

import torch

from hakisa.agent import chosen_mode
from hakisa.evaluate import evaluate
from hakisa.model import HakisaNet, act_mode, load_checkpoint


def add_args(p: argparse.ArgumentParser) -> None:
    from hakisa.phases.live_play import add_live_args

    p.add_argument("--game", default=None, help="a game file: a shipped name (duel, pop) or a path to your .json/.yaml")
    from hakisa.backends import add_backend_arg

    add_backend_arg(p)
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option from its file (e.g. tier=hard)")
    p.add_argument("--live", action="store_true", help="play the game's real window even when it has a simulator")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="a checkpoint or run dir (best/ then checkpoint/); default: an untrained net, the baseline",
    )
    p.add_argument(
        "--env", default=None, help="an env id instead of a game: Hakisa/Duel-v0, a stable-retro game, Toy/..."
    )
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--num-envs", type=int, default=16, help="parallel simulator envs")
    p.add_argument("--seed", type=int, default=12345, help="env seed (use one never trained on)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--sample", action="store_true", help="sample actions (default: what the checkpoint asks for, "
                     "which `hakisa study` measures; else argmax)")
    how.add_argument("--argmax", action="store_true", help="the most likely action at every step")
    p.add_argument("--head", choices=["auto", "policy", "q"], default="auto", help="auto: q for DQN checkpoints")
    p.add_argument("--collect", metavar="PATH", help="write the played episodes to this episode store")
    p.add_argument("--window", metavar="TITLE", help="play the window whose title contains this (live)")
    p.add_argument("--out", default=None, help="live play: folder for the GIF and play_live.json")
    p.add_argument("--replay", metavar="PATH", default=None,
                   help="write a video (.mp4 or .gif) of the first --gif-episodes episodes at the game's own size, "
                        "the agent's keys and clicks drawn on it")
    p.add_argument("--progress", action="store_true")
    add_live_args(p)


def main(args) -> int:
    from hakisa.game import Game, parse_opts

    opts = parse_opts(args.opt)
    game = Game.load(args.game) if args.game else None
    if game is not None and (args.live or args.window or not game.sim):
        from hakisa.phases import live_play

        args.opt = [f"{k}={v}" for k, v in opts.items()]
        return live_play.main(args)
    if game is None and args.window:
        raise SystemExit("hakisa play --window: say which game it is with --game (its screen rules)")
    if game is None and not args.env:
        raise SystemExit("hakisa play: give --game NAME|PATH (or --env ID)")
    spec = None
    if args.checkpoint:  # a simulator renders at whatever size the checkpoint was trained on
        from hakisa.model import checkpoint_obs_spec

        spec = checkpoint_obs_spec(args.checkpoint)
    n = min(args.num_envs, args.episodes)
    if game is not None and args.replay:
        from hakisa.replay import open_filmed_sim

        env = open_filmed_sim(game, n, args.seed, opts, spec)
    elif game is not None:
        env = game.sim_vec(n, seed=args.seed, opts=opts, **({"obs_spec": spec} if spec else {}))
    elif args.replay:
        raise SystemExit("hakisa play --replay: give --game (an env id has no canvas to film)")
    else:
        from hakisa.envs.make import make_vec

        env = make_vec(
            args.env, n, seed=args.seed, **({"obs_spec": spec} if spec and args.env.startswith("Hakisa/") else {})
        )
    if args.checkpoint:
        net, cfg = load_checkpoint(args.checkpoint, input_map=env.input_map, obs_spec=env.obs_spec)
    else:
        torch.manual_seed(args.seed)
        net, cfg = HakisaNet(env.obs_spec, env.input_map), {}
    mode = act_mode(cfg, args.head, deterministic=chosen_mode(args))
    fps = env.metadata.get("render_fps", 15)
    writer = None
    if args.collect:
        from hakisa.data import EpisodeWriter

        writer = EpisodeWriter(
            args.collect,
            {
                "input_map": env.input_map,
                "obs_spec": env.obs_spec,
                "source": "play",
                "fps": fps,
                "game": game.name if game else args.env,
                "game_file": str(game.path.resolve()) if game else None,
                "checkpoint": str(args.checkpoint or "untrained"),
            },
        )
    rep = None
    if args.replay:
        from hakisa.video import RecordingVecEnv, Replay

        rep = Replay(args.replay, env.input_map, fps, bgra=False, block=True)
        env = RecordingVecEnv(env, rep, max(1, args.gif_episodes))
    try:
        # a simulator's frames are stamped on its own clock, not on how fast this machine ran it
        summary = evaluate(net, env, args.episodes, mode, seed=args.seed, collect=writer, progress=args.progress,
                           frame_hz=fps)
    finally:
        if writer is not None:
            writer.close()
        env.close()
        filmed = rep.close() if rep is not None else None
    if filmed is not None:
        summary["replay"] = filmed
    summary.update(game=game.name if game else args.env, checkpoint=str(args.checkpoint or "untrained"), mode=mode)
    if game is not None:
        summary["options"] = game.resolve_options(opts)
    print(json.dumps(summary))
    return 0
