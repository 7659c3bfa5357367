"""`hakisa play`: evaluate a checkpoint over N episodes; the LAST line printed is a JSON summary.

    hakisa play --game duel --checkpoint runs/duel-ppo --opt tier=hard --episodes 200   # the game's simulator
    hakisa play --game duel --checkpoint runs/duel-ppo --live --episodes 20             # its real page
    hakisa play --game pop --checkpoint runs/pop-bc --episodes 20                       # no simulator: the window
    hakisa play --game pop --episodes 20                                                # an untrained net (baseline)
    hakisa play --env Hakisa/Duel-v0 --checkpoint runs/duel-ppo --collect datasets/duel-play

A game with a simulator is played there unless `--live` asks for the window; a game without one is
played on its window (hakisa.phases.live_play). Won-or-lost games report win_rate, score games mean_score.
`evaluate(net, env, episodes)` is env-agnostic: any Gymnasium env or vector env with the Hakisa
contract (uint8 frame-stack observations, [command, x, y] actions), so the live ScreenEnv uses it too.
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, summarize
from hakisa.model import HakisaNet, act_mode, load_checkpoint


def evaluate(
    net: HakisaNet,
    env,
    episodes: int,
    mode: str = "argmax",
    seed: int | None = 0,
    collect=None,
    progress: bool = False,
    max_steps: int = 10_000_000,
    epsilon: float = 0.0,
) -> dict:
    """Play `episodes` episodes; returns {episodes, mean_return, std_return, mean_length[, win_rate]}.

    env: a vector env (SAME_STEP autoreset) or a plain gym.Env. With n sub-envs each plays its share
    (episodes // n, +1 for the first episodes % n), so short episodes are not over-counted.
    mode: how the net acts, `HakisaNet.act`'s "argmax", "sample" or "q" (`act_mode` picks a checkpoint's).
    collect: an `hakisa.data.EpisodeWriter`; each finished episode is written to it.
    epsilon: probability of a uniformly random action per step (exploration; 0 for evaluation).
    """
    vec = isinstance(env, gym.vector.VectorEnv)
    n = env.num_envs if vec else 1
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    done_count = np.zeros(n, int)
    stats, eps = EpisodeStats(n), []
    c = net.obs_spec.channels
    buf = [[] for _ in range(n)]  # per-env (frame, action, reward, done, logp, value, t) until the episode ends
    obs, _ = env.reset(seed=seed)
    obs = np.asarray(obs) if vec else np.asarray(obs)[None]
    retire = getattr(env, "retire", None)  # live windows (a Fleet): no game is started that will not be played
    if retire is not None:
        for i in np.flatnonzero(quota <= 1):
            retire(i)
    bar = tqdm(total=episodes, disable=not progress, desc="play", unit="ep")
    net.eval()
    for _ in range(max_steps):
        if np.minimum(done_count, quota).sum() >= quota.sum():  # every env has played its share
            break
        # when the frame was seen: episodes are written once they end, so the writer's own clock would give
        # every frame of an episode the same few milliseconds
        t_obs = time.time()
        with torch.inference_mode():
            o = torch.from_numpy(np.ascontiguousarray(obs))
            logged = collect is not None and mode == "sample"  # the log-prob and V go into the store
            if logged:
                lc, lx, ly, v = net.policy(o)
                a = net.pick((lc, lx, ly), sample=True)
            else:
                a = net.act(o, mode)
        a = a.numpy()
        if epsilon > 0:
            rand = np.random.random(n) < epsilon
            if rand.any():
                space = env.single_action_space if vec else env.action_space
                r_a = net.canonical(torch.from_numpy(np.stack([space.sample() for _ in range(n)]))).numpy()
                a[rand] = r_a[rand]
        # a sampling policy records what PPO needs to learn from these episodes later (consolidate):
        # log pi(a|s) of the action sent and V(s). With epsilon the behaviour is a mixture, so its log-prob
        # is log((1-eps) pi + eps / |A|) of the joint action (uniform over the valid triples).
        beh = None
        if logged:
            with torch.inference_mode():
                lp, _ = net.dist_logp_entropy(lc, lx, ly, torch.from_numpy(a))
                if epsilon >= 1:
                    lp = _uniform_logp(net, a).expand_as(lp)
                elif epsilon > 0:
                    lp = torch.logaddexp(lp + np.log1p(-epsilon), np.log(epsilon) + _uniform_logp(net, a))
            beh = (lp.numpy(), v.numpy())
        if vec:
            nobs, r, term, trunc, info = env.step(a)
        else:
            nobs, r, term, trunc, info = env.step(a[0])
            nobs, r, term, trunc = (np.asarray(v)[None] for v in (nobs, r, term, trunc))
            info = {k: np.asarray([v]) for k, v in info.items()} if isinstance(info, dict) else {}
        r = np.asarray(r, np.float64)
        if collect is not None:
            for i in range(n):
                if done_count[i] < quota[i]:
                    buf[i].append(
                        (
                            obs[i][-c:],
                            a[i],
                            float(r[i]),
                            bool(term[i]),
                            *((float(beh[0][i]), float(beh[1][i])) if beh is not None else (None, None)),
                            t_obs,
                        )
                    )
        for i, ep in zip(np.flatnonzero(np.logical_or(term, trunc)), stats.update(r, term, trunc, info)):
            if done_count[i] < quota[i]:
                eps.append(ep)
                bar.update(1)
                if collect is not None:
                    collect.begin_episode(**{k: v for k, v in ep.items() if k in ("winner", "score")})
                    for f, act, rew, d, lp_i, v_i, t_i in buf[i]:
                        collect.add(f, act, rew, d, t=t_i, logp=lp_i, value=v_i)
                    collect.end_episode()
            buf[i] = []
            done_count[i] += 1
            if retire is not None and quota[i] - done_count[i] == 1:
                retire(i)
        if not vec and (term[0] or trunc[0]):
            if done_count[0] >= quota[0]:
                break  # never start a game that will not be played (a live window would restart it)
            nobs, _ = env.reset()
            nobs = np.asarray(nobs)[None]
        obs = nobs
    bar.close()
    return summarize(eps)


def _uniform_logp(net: HakisaNet, a: np.ndarray) -> torch.Tensor:
    """log-prob of each canonical action under the uniform random action (command, then x and y only
    where the command uses them)."""
    m = net.uses_xy[torch.from_numpy(a[:, 0])].float()
    return -np.log(net.pi_cmd.out_features) - m * np.log(net.pi_x.out_features * net.pi_y.out_features)


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
    p.add_argument("--progress", action="store_true")
    add_live_args(p)


def chosen_mode(args) -> bool | None:
    """--argmax: True, --sample: False, neither: None (the checkpoint's own preference)."""
    return True if getattr(args, "argmax", False) else False if getattr(args, "sample", False) else None


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
    if game is not None:
        env = game.sim_vec(n, seed=args.seed, opts=opts, **({"obs_spec": spec} if spec else {}))
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
    writer = None
    if args.collect:
        from hakisa.data import EpisodeWriter

        writer = EpisodeWriter(
            args.collect,
            {
                "input_map": env.input_map,
                "obs_spec": env.obs_spec,
                "source": "play",
                "fps": env.metadata.get("render_fps", 15),
                "game": game.name if game else args.env,
                "game_file": str(game.path.resolve()) if game else None,
                "checkpoint": str(args.checkpoint or "untrained"),
            },
        )
    try:
        summary = evaluate(net, env, args.episodes, mode, seed=args.seed, collect=writer, progress=args.progress)
    finally:
        if writer is not None:
            writer.close()
        env.close()
    summary.update(game=game.name if game else args.env, checkpoint=str(args.checkpoint or "untrained"), mode=mode)
    if game is not None:
        summary["options"] = game.resolve_options(opts)
    print(json.dumps(summary))
    return 0
