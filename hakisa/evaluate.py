"""One episode loop for a policy: `evaluate(net, env, episodes)` plays a checkpoint (or an untrained net)
and returns the summary `hakisa play` prints.

It is env-agnostic: any Gymnasium env or vector env with the Hakisa contract (uint8 frame-stack
observations, [command, x, y] actions), so a simulator, stable-retro and the live ScreenEnv all go through
it. The verbs (play, study, explore), the arena, sweeps, Ray PPO's evaluation, `play_live` (its timings,
GIF and video through an `observer`) and the benchmarks call it.
"""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, summarize
from hakisa.model import HakisaNet


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
    observer=None,
    frame_hz: float | None = None,
    episode_info: dict | None = None,
) -> dict:
    """Play `episodes` episodes; returns {episodes, mean_return, std_return, mean_length[, win_rate]}.

    net: a HakisaNet, or a scripted player with the same `act(obs, mode)` and `obs_spec` (the duel's expert,
    which reads the simulator's state: `hakisa.games.duel.expert.ExpertPlayer`), so that scripted baselines are
    counted by the same loop as agents.

    env: a vector env (SAME_STEP autoreset) or a plain gym.Env. With n sub-envs each plays its share
    (episodes // n, +1 for the first episodes % n), so short episodes are not over-counted.
    mode: how the net acts, `HakisaNet.act`'s "argmax", "sample" or "q" (`act_mode` picks a checkpoint's).
    collect: an `hakisa.data.EpisodeWriter`; each finished episode is written to it.
    epsilon: probability of a uniformly random action per step (exploration; 0 for evaluation).
    observer: with a plain env, told of every step: `before()` just before the action is chosen,
    `after(obs, action, reward, terminated, truncated, info, forward_ms)` with the env's own info and the
    policy's time, and `episode(ep)` with each counted episode's summary (play_live's timings, GIF, video).
    frame_hz: with `collect`, stamp the k-th frame of an episode k / frame_hz (a simulator's own clock, so the
    store's times say how long a game lasted, not how fast the machine ran it); None: the wall clock when each
    frame was seen (a live window).
    episode_info: with `collect`, written with every episode (e.g. the setting it was played at).
    """
    vec = isinstance(env, gym.vector.VectorEnv)
    n = env.num_envs if vec else 1
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    stats, eps = EpisodeStats(n), []
    if observer is not None and vec:
        raise ValueError("evaluate: an observer watches a plain env, not a vector env")
    obs, _ = env.reset(seed=seed)
    obs = np.asarray(obs) if vec else np.asarray(obs)[None]
    retire = getattr(env, "retire", None)  # live windows (a Fleet): no game is started that will not be played
    if retire is not None:
        for i in np.flatnonzero(quota <= 1):
            retire(i)
    bar = tqdm(total=episodes, disable=not progress, desc="play", unit="ep")
    net.eval()
    writer = None if collect is None else _Collect(collect, frame_hz, episode_info or {})
    try:
        _loop(net, env, obs, quota, mode, epsilon, writer, observer, max_steps, bar, stats, eps)
    finally:
        bar.close()
    return summarize(eps)


def _loop(net, env, obs, quota, mode, epsilon, collect, observer, max_steps, bar, stats, eps) -> None:
    """evaluate's steps until every env has played its quota (or max_steps); finished episodes go to `eps`."""
    vec = isinstance(env, gym.vector.VectorEnv)
    n = len(quota)
    done_count = np.zeros(n, int)
    c = net.obs_spec.channels
    buf = [[] for _ in range(n)]  # per-env (frame, action, reward, done, logp, value, t) until the episode ends
    retire = getattr(env, "retire", None)  # live windows (a Fleet): no game is started that will not be played
    for _ in range(max_steps):
        if np.minimum(done_count, quota).sum() >= quota.sum():  # every env has played its share
            break
        # when the frame was seen: episodes are written once they end, so the writer's own clock would give
        # every frame of an episode the same few milliseconds
        t_obs = time.time()
        logged = collect is not None and mode == "sample"  # the log-prob and V go into the store
        if observer is not None:
            observer.before()
        t0 = time.perf_counter()
        a, beh = _act(net, env, obs, mode, epsilon, logged, vec)
        forward_ms = (time.perf_counter() - t0) * 1e3
        nobs, r, term, trunc, info, raw = _env_step(env, a, vec)
        if observer is not None:
            observer.after(nobs[0], a[0], float(r[0]), bool(term[0]), bool(trunc[0]), raw, forward_ms)
        r = np.asarray(r, np.float64)
        if collect is not None:
            for i in range(n):
                if done_count[i] < quota[i]:
                    buf[i].append(
                        (
                            obs[i][-c:].copy(),  # an env may reuse its obs buffer (DuelVecEnv copy=False)
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
                if observer is not None:
                    observer.episode(ep)
                if collect is not None:
                    collect.episode(ep, buf[i])
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


def _act(net: HakisaNet, env, obs: np.ndarray, mode: str, epsilon: float, logged: bool, vec: bool):
    """The step's actions [n, 3], and with `logged` the behaviour's (log-prob, value) of each, else None."""
    n = len(obs)
    with torch.inference_mode():
        o = torch.from_numpy(np.ascontiguousarray(obs))
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
    return a, beh


def _env_step(env, a: np.ndarray, vec: bool):
    """env.step with a vector env's shapes, a plain gym.Env's step given a leading axis of 1; and the env's own
    info (a plain env's before it is given that axis)."""
    if vec:
        out = env.step(a)
        return (*out, out[4])
    nobs, r, term, trunc, raw = env.step(a[0])
    nobs, r, term, trunc = (np.asarray(v)[None] for v in (nobs, r, term, trunc))
    info = {k: np.asarray([v]) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return nobs, r, term, trunc, info, raw


class _Collect:
    """evaluate's episodes into an EpisodeWriter, each with its info and its frames' times."""

    def __init__(self, writer, frame_hz: float | None, info: dict):
        self.writer, self.frame_hz, self.info = writer, frame_hz, info

    def episode(self, ep: dict, steps: list) -> None:
        w = self.writer
        w.begin_episode(**self.info, **{k: v for k, v in ep.items() if k in ("winner", "score")})
        for k, (f, act, rew, d, lp_i, v_i, t_i) in enumerate(steps):
            w.add(f, act, rew, d, t=t_i if self.frame_hz is None else k / self.frame_hz, logp=lp_i, value=v_i)
        w.end_episode()


def _uniform_logp(net: HakisaNet, a: np.ndarray) -> torch.Tensor:
    """log-prob of each canonical action under the uniform random action (command, then x and y only
    where the command uses them)."""
    m = net.uses_xy[torch.from_numpy(a[:, 0])].float()
    return -np.log(net.pi_cmd.out_features) - m * np.log(net.pi_x.out_features * net.pi_y.out_features)

