"""PPO with its rollouts on Ray: the learner stays in this process, N rollout workers are Ray actors.

    recipe = EnvRecipe(env_id="Toy/KeyPress-v0", num_envs=8)
    train_ray(recipe, ppo.Args(total_steps=200_000), workers=2, run_dir="runs/toy-ray")
    hakisa train --game duel --workers 2            # the same from the command line
    RAY_ADDRESS=auto hakisa train --game duel --workers 8   # on a running cluster (docs/distributed.md)

Each worker builds its own vector env from a picklable `EnvRecipe` (a game's simulator, an env id, or a
fleet of live windows on private displays) and runs `Rollout` (hakisa/algos/ppo_rollout.py), the serial trainer's
own collection loop, with its own reward normaliser and a seed of its own. The learner sends weights through the object
store (one `ray.put` per policy version) and gathers trajectories with `ray.wait` as they finish.

How a batch is formed: one update consumes `workers` trajectories (whichever arrive first), concatenated
along the env axis, so an update sees as many samples as the serial trainer with workers x num_envs envs,
and GAE runs on them exactly as there. A worker is handed new work the moment its trajectory arrives,
with the weights of that moment: it keeps stepping while the learner updates, so its next trajectory is
one version old when used (lag 1). `max_lag` bounds that: a trajectory more than max_lag versions
behind is dropped, never learned from (PPO's ratio is taken against the behaviour policy's log-probs, so
a lag of 1 is corrected by the clip; an old one would only be clipped away). max_lag=0 makes the loop
synchronous (workers wait for the update; every batch on-policy). The lag of every batch is reported
(charts/policy_lag; lag_mean, lag_max, lag_hist in the metrics).

A worker that dies (its process killed, its node lost, its env raising) is replaced by a new actor from
the same recipe; the run goes on and counts it in `workers_replaced`.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import replace

import numpy as np
import torch

from hakisa.algos import ppo
from hakisa.algos.common import native_bf16, setup_torch
from hakisa.algos.ppo_recorder import Recorder
from hakisa.algos.ppo_rollout import Rollout
from hakisa.distributed import DISPLAY_RESOURCE, EnvRecipe, init_ray, require_ray
from hakisa.envs.make import contract
from hakisa.input_map import InputMap
from hakisa.model import HakisaNet
from hakisa.preprocess import ObsSpec

STALL_S = 120.0  # say so when no worker has delivered for this long (workers Ray cannot place wait silently)
TRAJ_KEYS = ("obs", "act", "logp", "rew", "done", "val")  # [T, n, ...]; next_value, next_done: [n]


class RolloutWorker:
    """One Ray actor: its envs, its copy of the net, its rollout state. Plain class; `_actor_class()`
    wraps it with ray.remote, so importing this module never needs Ray."""

    def __init__(self, recipe: EnvRecipe, args: ppo.Args, model: dict, seed: int):
        # one torch thread: a worker is given one CPU, and more threads only fight over it
        setup_torch(1, seed)
        self.envs = recipe.make(seed)
        self.spec, self.imap = contract(self.envs)
        self.net = HakisaNet(self.spec, self.imap, model["encoder"], model["hidden"])
        self.net.bf16 = native_bf16() if args.bf16 is None else bool(args.bf16)
        self.args, self.seed, self.version = replace(args, seed=seed), seed, -1
        self.roll: Rollout | None = None  # made on the first rollout (explore never needs it)

    def where(self) -> dict:
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def contract(self) -> tuple[dict, dict, float]:
        # as dicts: objects unpickled from Ray's store hold read-only arrays, which torch warns about
        fps = float(getattr(self.envs, "metadata", {}).get("render_fps", 15))
        return self.spec.to_dict(), self.imap.to_dict(), fps

    def _load(self, weights: dict, version: int) -> None:
        if version != self.version:  # the same version twice (a dropped batch's retry): no reload
            self.net.load_state_dict(weights)
            self.version = version

    def rollout(self, weights: dict, version: int) -> dict:
        """num_steps steps on every env with the weights of `version`; the trajectory and its provenance."""
        self._load(weights, version)
        if self.roll is None:
            self.roll = Rollout(self.envs, self.args)
        t0 = time.time()
        finished = self.roll.collect(self.net)
        r = self.roll
        out = {k: getattr(r, k).numpy() for k in TRAJ_KEYS}  # Ray copies them into the object store
        out.update(next_value=r.next_value(self.net).numpy(), next_done=r.next_done.numpy(), episodes=finished,
                   policy_version=version, rollout_s=time.time() - t0, **self.where())
        return out

    def play(self, weights: dict, episodes: int, mode: str, seed: int, epsilon: float = 0.0) -> dict:
        """`episodes` episodes with these weights, recorded in memory for the driver's episode store."""
        from hakisa.evaluate import evaluate

        self._load(weights, -2)
        buf = EpisodeBuffer()
        summary = evaluate(self.net, self.envs, episodes, mode, seed=seed, collect=buf, epsilon=epsilon)
        return {"episodes": buf.episodes, "summary": summary, **self.where()}

    def close(self) -> None:
        self.envs.close()


class EpisodeBuffer:
    """The EpisodeWriter calls `evaluate` makes, kept in memory: a worker cannot write the driver's store."""

    def __init__(self):
        self.episodes: list[dict] = []

    def begin_episode(self, **info) -> None:
        self.episodes.append({"info": info, "steps": []})

    def add(self, frame, action, reward=0.0, done=False, t=None, logp=None, value=None) -> None:
        self.episodes[-1]["steps"].append((np.array(frame), np.array(action), reward, done, t, logp, value))

    def end_episode(self, **info) -> None:
        self.episodes[-1]["info"].update(info)

    @staticmethod
    def write(ep: dict, writer) -> None:
        writer.begin_episode(**ep["info"])
        for f, a, r, d, t, lp, v in ep["steps"]:
            writer.add(f, a, r, d, t=t, logp=lp, value=v)
        writer.end_episode()


class WorkerPool:
    """N rollout actors, each in a slot; a slot whose actor dies gets a fresh one from the same recipe.
    Every actor started gets a seed of its own (seed + 1000 k for the k-th), so no two play the same
    episodes, a replacement included."""

    def __init__(self, ray, recipe: EnvRecipe, args: ppo.Args, model: dict, workers: int,
                 cpus: float | None = None, max_replacements: int | None = None):
        self.ray, self.recipe, self.args, self.model = ray, recipe, args, model
        if recipe.live:  # a browser on its own display: one CPU and one display slot of the node's
            opts = {"num_cpus": 1, "resources": {DISPLAY_RESOURCE: 1}}
        else:
            opts = {"num_cpus": 1 if cpus is None else cpus}
        # SPREAD: place workers on as many nodes as the cluster has, rather than packing the first
        self.cls = ray.remote(RolloutWorker).options(scheduling_strategy="SPREAD", max_restarts=0, **opts)
        self.started, self.replaced = 0, 0
        self.max_replacements = 2 * workers + 2 if max_replacements is None else max_replacements
        self.actors = [self._start() for _ in range(workers)]

    def _start(self):
        seed = self.recipe.seed + 1000 * self.started
        self.started += 1
        return self.cls.remote(self.recipe, self.args, self.model, seed)

    def contract(self, net: HakisaNet | None = None) -> tuple[ObsSpec, InputMap, float]:
        """The workers' envs' ObsSpec, InputMap and fps; a net, if given, must fit them."""
        spec_d, imap_d, fps = self.ray.get(self.actors[0].contract.remote())
        spec, imap = ObsSpec.from_dict(spec_d), InputMap.from_dict(imap_d)
        if net is not None and (net.obs_spec != spec or not net.input_map.same_as(imap)):
            raise ValueError(f"ray workers: the net is for {net.obs_spec} / input map {net.input_map.name!r}, "
                             f"the workers' envs give {spec} / {imap.name!r}")
        return spec, imap, fps

    def replace(self, slot: int, err: Exception) -> None:
        if self.replaced >= self.max_replacements:
            raise RuntimeError(f"ray rollouts: {self.replaced} workers replaced already, giving up: {err}") from err
        self.ray.kill(self.actors[slot])  # a dead actor: a no-op; a broken but live one: stopped
        self.actors[slot] = self._start()
        self.replaced += 1

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                self.ray.get(a.close.remote(), timeout=30)
            except Exception:  # dead already, or stuck: ray.kill below ends it either way
                pass
            self.ray.kill(a)


def _weights(net: HakisaNet) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _concat(trajs: list[dict]) -> dict:
    """Trajectories of equal length side by side: [T, n1 + n2 + ..., ...]."""
    out = {k: torch.from_numpy(np.concatenate([t[k] for t in trajs], axis=1)) for k in TRAJ_KEYS}
    for k in ("next_value", "next_done"):
        out[k] = torch.from_numpy(np.concatenate([t[k] for t in trajs]))
    return out


class _Feed:
    """The learner's side of the rollout workers: hands each one work with the weights of the moment,
    gathers the trajectories as they finish, drops those more than max_lag versions behind, and replaces
    a worker that died (its trajectory is lost; the new actor starts on the current weights)."""

    def __init__(self, ray, pool: WorkerPool, workers: int, max_lag: int, net: HakisaNet):
        self.ray, self.pool, self.workers, self.max_lag = ray, pool, workers, max_lag
        self.version, self.dropped = 0, 0
        self.weights = ray.put(_weights(net))
        self.pending: dict = {}  # ObjectRef -> slot
        self.idle: list[int] = []  # max_lag=0: slots that wait for the next version
        for slot in range(workers):
            self.submit(slot)

    def submit(self, slot: int) -> None:
        self.pending[self.pool.actors[slot].rollout.remote(self.weights, self.version)] = slot

    def gather(self, keep_going) -> list[dict] | None:
        """The next `workers` trajectories, or None once keep_going() is False (checked before each wait)."""
        from ray.exceptions import RayActorError, RayTaskError

        ray, gathered = self.ray, []
        while keep_going():
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=STALL_S)
            if not ready:  # e.g. a cluster without the CPUs or display slots the workers ask for
                print(f"ray rollouts: no trajectory for {STALL_S:.0f} s; free resources: {ray.available_resources()}")
                continue
            ref = ready[0]
            slot = self.pending.pop(ref)
            try:
                traj = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                self.pool.replace(slot, e)  # its trajectory is lost; the new actor starts on the current weights
                self.submit(slot)
                continue
            lag = self.version - traj["policy_version"]
            if lag > self.max_lag:  # too far behind the learner: not learned from, the worker is sent fresh weights
                self.dropped += 1
                self.submit(slot)
                continue
            traj["worker"], traj["lag"] = slot, lag
            gathered.append(traj)
            if self.max_lag >= 1:
                self.submit(slot)  # keeps stepping while the learner updates: its next batch is one version old
            else:
                self.idle.append(slot)
            if len(gathered) == self.workers:
                return gathered
        return None

    def publish(self, net: HakisaNet) -> None:
        """A new policy version: its weights go to the object store once; waiting workers get them now."""
        self.version += 1
        self.weights = self.ray.put(_weights(net))  # once per version; every later submit shares this object
        for slot in self.idle:
            self.submit(slot)
        self.idle.clear()


def _learn(net, opt, args: ppo.Args, rec: Recorder, gathered: list[dict], spec: ObsSpec, mb_size: int, update: int,
           num_updates: int) -> dict:
    """One PPO update on the gathered trajectories, concatenated along the env axis."""
    ppo.anneal(opt, args, update, num_updates, rec.elapsed())
    b = _concat(gathered)
    adv, ret = ppo.gae(b["rew"], b["val"], b["done"], b["next_value"], b["next_done"], args.gamma, args.gae_lambda)
    return ppo.update_policy(net, opt, args, b["obs"].reshape((-1,) + spec.shape), b["act"].reshape(-1, 3),
                             b["logp"].reshape(-1), adv.reshape(-1), ret.reshape(-1), b["val"].reshape(-1), mb_size)


def train_ray(recipe: EnvRecipe, args: ppo.Args, workers: int = 2, run_dir=None, net: HakisaNet | None = None,
              max_lag: int = 1, ray_address: str | None = None, on_update=None, worker_cpus: float | None = None,
              ) -> dict:
    """PPO with `workers` Ray rollout workers. Returns ppo.train's metrics plus workers, lag_mean, lag_max,
    lag_hist, dropped_batches, workers_replaced and nodes (the Ray node ids whose batches were learned
    from); writes run_dir/ as ppo.train does. on_update(net, metrics) after every update; its metrics
    carry "batches": [{worker, node, pid, policy_version, lag}] of that update.
    worker_cpus: the CPUs a sim worker claims (default 1; live workers always claim 1 and a display)."""
    if args.critic != "pixels" or args.aux_coef:
        raise ValueError("ray rollouts: critic='state' / aux_coef need envs.state() in the learner, which a remote "
                         "worker's envs cannot give it; train those serially (no --workers)")
    if workers < 1 or max_lag < 0:
        raise ValueError(f"workers={workers}, max_lag={max_lag}: need workers >= 1 and max_lag >= 0")
    ray = require_ray()
    own_ray = not ray.is_initialized()
    # a local Ray is started with room for every worker: CPUs are Ray's scheduling tokens, not a limit,
    # and a 2-core box asked for 2 workers (plus this learner) should oversubscribe rather than hang
    cpus_needed = math.ceil(workers * (1 if worker_cpus is None else worker_cpus))
    init_ray(ray_address, num_cpus=max(os.cpu_count() or 1, cpus_needed))
    setup_torch(args.threads, args.seed)
    model = net.model_config() if net is not None else {"encoder": args.encoder, "hidden": args.hidden}
    pool = WorkerPool(ray, recipe, args, model, workers, worker_cpus)
    try:
        spec, imap, _ = pool.contract(net)
        net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
        net.bf16 = native_bf16() if args.bf16 is None else bool(args.bf16)
        opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        rec = Recorder(run_dir, args, {"algo": "ppo", "obs_spec": spec.to_dict(), "input_map": imap.to_dict(),
                                       "ray": {"workers": workers, "max_lag": max_lag, "recipe": vars(recipe)}})
        batch = workers * recipe.num_envs * args.num_steps
        mb_size = batch // args.num_minibatches
        num_updates = max(1, args.total_steps // batch)
        feed = _Feed(ray, pool, workers, max_lag, net)
        update, global_step, lags, nodes, info = 0, 0, [], set(), {}
        while update < num_updates:
            gathered = feed.gather(lambda: not rec.out_of_time())
            if gathered is None:
                break
            update += 1
            u = _learn(net, opt, args, rec, gathered, spec, mb_size, update, num_updates)
            feed.publish(net)
            global_step += sum(t["obs"].shape[0] * t["obs"].shape[1] for t in gathered)
            finished = [ep for t in gathered for ep in t["episodes"]]
            batch_lags = [t["lag"] for t in gathered]
            lags += batch_lags
            nodes.update(t["node"] for t in gathered)
            info = rec.record(net, opt, update, global_step, u, finished,
                              scalars={"policy_lag": float(np.mean(batch_lags))})
            info.update(policy_version=feed.version, policy_lag=float(np.mean(batch_lags)),
                        batches=[{k: t[k] for k in ("worker", "node", "pid", "policy_version", "lag")}
                                 for t in gathered])
            if on_update is not None:
                on_update(net, info)
            rec.save(net, update, info, last=update == num_updates)
        if 0 < update < num_updates:  # the clock stopped the loop, maybe while it waited: keep the last weights
            rec.save(net, update, info, last=True)
        rec.close()
    finally:
        pool.shutdown()
        if own_ray:
            ray.shutdown()  # a Ray this call started ends with it; a caller's (or a cluster's) stays
    info.pop("batches", None)
    hist = {int(v): int(c) for v, c in zip(*np.unique(lags, return_counts=True))} if lags else {}
    info.update(time_s=rec.elapsed(), workers=workers, max_lag=max_lag, lag_mean=float(np.mean(lags)) if lags else 0.0,
                lag_max=int(max(lags)) if lags else 0, lag_hist=hist, dropped_batches=feed.dropped,
                workers_replaced=pool.replaced, nodes=sorted(nodes))
    return info


def explore_ray(recipe: EnvRecipe, net: HakisaNet | None, workers: int, episodes: int, mode: str, writer=None,
                seed: int = 0, epsilon: float = 0.0, ray_address: str | None = None, meta: dict | None = None,
                encoder: str = "small") -> dict:
    """Play `episodes` episodes with `net` (None: a fresh one with this encoder, seeded by `seed`) on
    `workers` Ray workers, their share each, and write every one to an episode store as it comes back.
    writer: an open EpisodeWriter, or a callable meta -> EpisodeWriter, called (and later closed here) once
    the workers have said what their envs look like (input map, obs spec, fps), with `meta` merged in.
    A worker that dies is replaced and its share played again. Returns `summarize` over all the episodes,
    plus workers and workers_replaced."""
    from hakisa.algos.common import summarize

    ray = require_ray()
    own_ray = not ray.is_initialized()
    init_ray(ray_address, num_cpus=max(os.cpu_count() or 1, workers))
    from ray.exceptions import RayActorError, RayTaskError

    shares = [episodes // workers + (i < episodes % workers) for i in range(workers)]
    model = net.model_config() if net is not None else {"encoder": encoder, "hidden": ppo.Args.hidden}
    pool = WorkerPool(ray, recipe, ppo.Args(bf16=False), model, workers)
    eps: list[dict] = []
    own_writer = callable(writer)
    try:
        spec, imap, fps = pool.contract(net)
        if net is None:
            torch.manual_seed(seed)
            net = HakisaNet(spec, imap, encoder=encoder)
        if own_writer:
            writer = writer({"input_map": imap, "obs_spec": spec, "fps": fps, **(meta or {})})
        weights = ray.put(_weights(net))
        pending = {}

        def submit(slot: int) -> None:
            ref = pool.actors[slot].play.remote(weights, shares[slot], mode, seed + 1000 * slot, epsilon)
            pending[ref] = slot

        for slot in range(workers):
            if shares[slot]:
                submit(slot)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            slot = pending.pop(ref)
            try:
                out = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                pool.replace(slot, e)
                submit(slot)
                continue
            for ep in out["episodes"]:
                if writer is not None:
                    EpisodeBuffer.write(ep, writer)
                eps.append({"return": float(sum(st[2] for st in ep["steps"])), "length": len(ep["steps"]),
                            **{k: v for k, v in ep["info"].items() if k == "winner"}})
    finally:
        if own_writer and not callable(writer):
            writer.close()
        pool.shutdown()
        if own_ray:
            ray.shutdown()
    return {**summarize(eps), "workers": workers, "workers_replaced": pool.replaced}
