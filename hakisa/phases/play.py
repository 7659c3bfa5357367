"""`hakisa play`: evaluate a checkpoint over N episodes; the LAST line printed is a JSON summary.

    hakisa play --checkpoint runs/duel-ppo --env Hakisa/Duel-v0 --tier normal --episodes 200
    hakisa play --checkpoint runs/duel-ppo --env Hakisa/Duel-v0 --collect datasets/duel-play
    hakisa play --checkpoint runs/duel-ppo --duel-page          # the real browser page (live_play)
    hakisa play --checkpoint runs/duel-ppo --window "Some Game"  # any live window (live_play)

`evaluate(net, env, episodes)` is env-agnostic: any Gymnasium env or vector env with the Hakisa
contract (uint8 frame-stack observations, [command, x, y] actions), so the live ScreenEnv uses it too.
"""
from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, summarize
from hakisa.model import HakisaNet, load_checkpoint


def evaluate(net: HakisaNet, env, episodes: int, deterministic: bool = True, head: str = "policy",
             seed: int | None = 0, collect=None, progress: bool = False, max_steps: int = 10_000_000,
             epsilon: float = 0.0) -> dict:
    """Play `episodes` episodes; returns {episodes, mean_return, std_return, mean_length[, win_rate]}.

    env: a vector env (SAME_STEP autoreset) or a plain gym.Env. With n sub-envs each plays its share
    (episodes // n, +1 for the first episodes % n), so short episodes are not over-counted.
    head: "policy" (argmax / sample of the policy heads) or "q" (greedy branching-Q, for DQN nets).
    collect: an `hakisa.data.EpisodeWriter`; each finished episode is written to it.
    epsilon: probability of a uniformly random action per step (exploration; 0 for evaluation).
    """
    vec = isinstance(env, gym.vector.VectorEnv)
    n = env.num_envs if vec else 1
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    done_count = np.zeros(n, int)
    stats, eps = EpisodeStats(n), []
    c = net.obs_spec.channels
    buf = [[] for _ in range(n)]  # per-env (frame, action, reward, done) until the episode ends
    obs, _ = env.reset(seed=seed)
    obs = np.asarray(obs) if vec else np.asarray(obs)[None]
    bar = tqdm(total=episodes, disable=not progress, desc="play", unit="ep")
    net.eval()
    for _ in range(max_steps):
        if np.minimum(done_count, quota).sum() >= quota.sum():  # every env has played its share
            break
        with torch.inference_mode():
            o = torch.from_numpy(np.ascontiguousarray(obs))
            if head == "q":
                a = net.act_greedy_q(o)
            else:
                lc, lx, ly, v = net.policy(o)
                a = net.canonical(torch.stack([lg.argmax(1) if deterministic else
                                               torch.distributions.Categorical(logits=lg).sample() for lg in (lc, lx, ly)], 1))
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
        if collect is not None and head == "policy" and not deterministic:
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
                    buf[i].append((obs[i][-c:], a[i], float(r[i]), bool(term[i]),
                                   *((float(beh[0][i]), float(beh[1][i])) if beh is not None else (None, None))))
        for i, ep in zip(np.flatnonzero(np.logical_or(term, trunc)), stats.update(r, term, trunc, info)):
            if done_count[i] < quota[i]:
                eps.append(ep)
                bar.update(1)
                if collect is not None:
                    collect.begin_episode(**{k: v for k, v in ep.items() if k == "winner"})
                    for f, act, rew, d, lp_i, v_i in buf[i]:
                        collect.add(f, act, rew, d, logp=lp_i, value=v_i)
                    collect.end_episode()
            buf[i] = []
            done_count[i] += 1
        if not vec and (term[0] or trunc[0]):
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
    p.add_argument("--checkpoint", required=True, help="a checkpoint dir, or a run dir (uses best/ then checkpoint/)")
    p.add_argument("--env", default="Hakisa/Duel-v0", help="env id: Hakisa/Duel-v0, a stable-retro game, Toy/...")
    p.add_argument("--tier", default="normal", help="duel boss tier (easy | normal | hard)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--num-envs", type=int, default=16, help="parallel sim envs")
    p.add_argument("--seed", type=int, default=12345, help="env seed (use one never trained on)")
    p.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    p.add_argument("--head", choices=["auto", "policy", "q"], default="auto", help="auto: q for DQN checkpoints")
    p.add_argument("--collect", metavar="PATH", help="write the played episodes to this episode store")
    p.add_argument("--window", metavar="TITLE", help="play a live window by title (hakisa.phases.live_play)")
    p.add_argument("--duel-page", action="store_true", help="start the real duel page and play it live")
    p.add_argument("--progress", action="store_true")
    try:  # the live-only options (--hz, --reward-config, ...), owned by live_play; absent in a build without it
        from hakisa.phases.live_play import add_live_args
    except ImportError:
        return
    add_live_args(p)


def main(args) -> int:
    if getattr(args, "window", None) or getattr(args, "duel_page", False):
        from hakisa.phases import live_play

        return live_play.main(args)
    from hakisa.envs.make import DUEL_ID, make_vec

    kw = {}
    if args.env == DUEL_ID:  # the sim renders at whatever size the checkpoint was trained on
        from hakisa.model import checkpoint_obs_spec

        kw = {"tier": args.tier, "obs_spec": checkpoint_obs_spec(args.checkpoint)}
    env = make_vec(args.env, min(args.num_envs, args.episodes), seed=args.seed, **kw)
    net, cfg = load_checkpoint(args.checkpoint, input_map=env.input_map, obs_spec=env.obs_spec)
    head = args.head if args.head != "auto" else ("q" if cfg.get("algo", {}).get("algo") == "dqn" else "policy")
    writer = None
    if args.collect:
        from hakisa.data import EpisodeWriter

        writer = EpisodeWriter(args.collect, {"input_map": env.input_map, "obs_spec": env.obs_spec, "source": "play",
                                              "fps": env.metadata.get("render_fps", 15), "game": args.env,
                                              "checkpoint": str(args.checkpoint)})
    try:
        summary = evaluate(net, env, args.episodes, deterministic=not args.sample, head=head, seed=args.seed,
                           collect=writer, progress=args.progress)
    finally:
        if writer is not None:
            writer.close()
        env.close()
    summary.update(env=args.env, checkpoint=str(args.checkpoint), head=head)
    if args.env == DUEL_ID:
        summary["tier"] = args.tier
    print(json.dumps(summary))
    return 0
