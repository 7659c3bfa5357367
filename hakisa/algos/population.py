"""A population of policies as flat weight vectors, and its evaluation in one vector env: what GA and ES share.

Only the policy's parameters are a member's genome (`policy_param_names`); the value and Q heads play no
part in a greedy policy. `evaluate_population` runs every member at once with `torch.func.vmap`, member i
on sub-envs [i*m, (i+1)*m), and is tested against one-member-at-a-time runs.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from torch.func import functional_call, vmap

from hakisa.model import HakisaNet


# ---- flat policy parameters ------------------------------------------------------------------
def policy_param_names(net: HakisaNet) -> list[str]:
    # the value and Q heads play no part in a greedy policy; evolving them would waste search
    return [k for k, _ in net.named_parameters() if not k.startswith(("v.", "q_v.", "adv_"))]


def get_flat(net: HakisaNet) -> torch.Tensor:
    p = dict(net.named_parameters())
    return torch.cat([p[k].detach().reshape(-1) for k in policy_param_names(net)])


def set_flat(net: HakisaNet, flat: torch.Tensor) -> None:
    i = 0
    p = dict(net.named_parameters())
    with torch.no_grad():
        for k in policy_param_names(net):
            n = p[k].numel()
            p[k].copy_(flat[i:i + n].view_as(p[k]))
            i += n


def unflatten(net: HakisaNet, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """[P, D] -> {name: [P, *shape]} for vmap'd functional_call (non-evolved params broadcast)."""
    out, i = {}, 0
    p = dict(net.named_parameters())
    for k in policy_param_names(net):
        n = p[k].numel()
        out[k] = flat[:, i:i + n].reshape((flat.shape[0],) + p[k].shape)
        i += n
    return out


# ---- evaluation: member i plays on sub-envs [i*m, (i+1)*m) -------------------------------------
@torch.no_grad()
def evaluate_population(
    envs, net: HakisaNet, flat: torch.Tensor, episodes: int, seed: int, max_steps: int = 5_000
) -> np.ndarray:
    """Mean return of each member's first episode on each of its `episodes` sub-envs -> [P].

    envs must have exactly P * episodes sub-envs. Sub-env j of every member gets the same env seed
    (common random numbers: members differ only by their weights, which makes selection fairer).
    """
    P, m = flat.shape[0], episodes
    if envs.num_envs != P * m:
        raise ValueError(f"need {P * m} sub-envs (pop {P} x {m} episodes), got {envs.num_envs}")
    params = {f"net.{k}": v for k, v in unflatten(net, flat).items()}
    wrapper = _PolicyOnly(net)

    def policy(p, obs):  # one member's evolved params, its m observations -> greedy actions
        cmd, x, y, _ = functional_call(wrapper, p, (obs,))  # params not in p: the net's own
        return torch.stack([cmd.argmax(1), x.argmax(1), y.argmax(1)], 1)

    batched = vmap(policy)
    obs, _ = _reset(envs, [seed * 1000 + j for _ in range(P) for j in range(m)])
    ret = np.zeros(P * m)
    done = np.zeros(P * m, bool)
    for _ in range(max_steps):
        o = torch.from_numpy(np.asarray(obs)).reshape((P, m) + obs.shape[1:])
        a = net.canonical(batched(params, o).reshape(P * m, 3)).numpy()
        obs, r, term, trunc, _ = envs.step(a)
        ret += np.where(done, 0.0, r)
        done |= np.logical_or(term, trunc)
        if done.all():
            break
    return ret.reshape(P, m).mean(1)


class _PolicyOnly(torch.nn.Module):
    # functional_call runs forward(); this wrapper's forward is the policy path (no Q heads)
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, obs):
        return self.net.policy(obs)


def _reset(envs, seeds: list[int]):
    try:
        return envs.reset(seed=seeds)
    except (TypeError, ValueError, AssertionError):
        return envs.reset(seed=seeds[0])  # envs that only take one base seed


# ---- members from seeds, and where they are evaluated ------------------------------------------
# A batch of members is weights plus a description: theta with ("es", sigma, seed, gen, pairs), or the
# population with ("ga", lo, hi). `members` builds their flat weights wherever it runs, so an ES worker gets
# theta once (through Ray's object store) plus a few integers, and rebuilds its noise from them (OpenAI-ES).
def noise(seed: int, gen: int, i: int, dim: int) -> torch.Tensor:
    """Direction i of generation gen, rebuilt from (seed, gen, i) wherever it is needed."""
    s = int(np.random.SeedSequence([seed, gen, i]).generate_state(1, np.uint64)[0]) & (2**63 - 1)
    return torch.randn(dim, generator=torch.Generator().manual_seed(s))


def members(weights: torch.Tensor, desc: tuple) -> torch.Tensor:
    """-> [k, D] flat weights. ES pairs come out as all the theta + sigma*e, then all the theta - sigma*e."""
    if desc[0] == "es":
        _, sigma, seed, gen, pairs = desc
        eps = torch.stack([noise(seed, gen, i, weights.numel()) for i in pairs])
        return torch.cat([weights + sigma * eps, weights - sigma * eps])
    _, lo, hi = desc
    return weights[lo:hi]


def split(desc: tuple, parts: int) -> list[tuple]:
    """The description cut into at most `parts` contiguous pieces of about equal size."""
    n = len(desc[4]) if desc[0] == "es" else desc[2] - desc[1]
    bounds = np.linspace(0, n, min(parts, n) + 1).round().astype(int)
    if desc[0] == "es":
        return [desc[:4] + (desc[4][a:b],) for a, b in zip(bounds, bounds[1:])]
    return [("ga", desc[1] + a, desc[1] + b) for a, b in zip(bounds, bounds[1:])]


def join(desc: tuple, pieces: list[np.ndarray]) -> np.ndarray:
    """Fitness of the pieces back in the order of the whole description."""
    if desc[0] == "es":  # each piece is [its plus members, its minus members]
        halves = [np.split(f, 2) for f in pieces]
        return np.concatenate([h[0] for h in halves] + [h[1] for h in halves])
    return np.concatenate(pieces)


class Evaluator:
    """Fitness of described members in this process, on `envs` (P * episodes sub-envs)."""

    def __init__(self, envs, net: HakisaNet):
        self.envs, self.net = envs, net

    def __call__(self, weights: torch.Tensor, desc: tuple, episodes: int, seed: int, max_steps: int) -> np.ndarray:
        return evaluate_population(self.envs, self.net, members(weights, desc), episodes, seed, max_steps)

    def close(self) -> None:
        pass


class RayEvaluator:
    """The same fitness from `workers` Ray actors, each with its own envs, made from an `EnvRecipe` (a
    simulator, or stable-retro subprocesses) with as many sub-envs as its piece needs. Member j of a piece
    plays sub-envs seeded as in `Evaluator`, and `evaluate_population` is invariant to how members are
    batched (tests/test_ray_evolution.py), so a seed gives the same fitness serially and on Ray. A worker
    that dies is replaced and its piece re-run."""

    def __init__(self, recipe, net: HakisaNet, workers: int, threads: int = 1):
        from hakisa.distributed import init_ray

        self.ray = init_ray(num_cpus=max(os.cpu_count() or 1, workers))  # a no-op when Ray already runs
        self.recipe, self.threads, self.workers = recipe, threads, int(workers)
        # the architecture and the non-evolved weights, sent once; evolved weights come with each piece
        arch = (net.obs_spec, net.input_map, net.encoder_name, net.hidden, net.bf16)
        self.net_ref = self.ray.put((arch, {k: v.detach() for k, v in net.state_dict().items()}))
        self.replaced, self.max_replaced = 0, 2 * self.workers + 2  # a worker that cannot start must not loop
        self.actors = [self._start() for _ in range(self.workers)]

    def _start(self):
        return self.ray.remote(num_cpus=1)(_PopulationWorker).remote(self.recipe, self.net_ref, self.threads)

    def __call__(self, weights: torch.Tensor, desc: tuple, episodes: int, seed: int, max_steps: int) -> np.ndarray:
        ray = self.ray
        ref = ray.put(weights)  # once into the object store (one copy per node); every piece refers to it
        pieces = split(desc, self.workers)
        out: list = [None] * len(pieces)
        run = lambda i: self.actors[i].fitness.remote(ref, pieces[i], episodes, seed, max_steps)
        todo = {run(i): i for i in range(len(pieces))}
        while todo:
            done, _ = ray.wait(list(todo), num_returns=1)
            i = todo.pop(done[0])
            try:
                out[i] = ray.get(done[0])
            except ray.exceptions.RayActorError as err:  # the worker died: a fresh one re-runs its piece
                if self.replaced >= self.max_replaced:
                    raise RuntimeError(f"population workers: {self.replaced} replaced already, giving up") from err
                self.actors[i] = self._start()
                self.replaced += 1
                todo[run(i)] = i
        return join(desc, out)

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


class _PopulationWorker:
    """A Ray actor: its own envs (one per piece size) and a copy of the net."""

    def __init__(self, recipe, net_ref, threads: int):
        torch.set_num_threads(threads)
        (spec, imap, encoder, hidden, bf16), state = net_ref
        self.net = HakisaNet(spec, imap, encoder, hidden)
        self.net.load_state_dict(state)
        self.net.bf16 = bf16
        self.recipe, self.envs = recipe, {}

    def fitness(self, weights: torch.Tensor, desc: tuple, episodes: int, seed: int, max_steps: int) -> np.ndarray:
        flat = members(weights, desc)
        n = flat.shape[0] * episodes
        if n not in self.envs:
            self.envs[n] = dataclasses.replace(self.recipe, num_envs=n).make()
        return evaluate_population(self.envs[n], self.net, flat, episodes, seed, max_steps)

    def pid(self) -> int:  # tests kill a worker by its pid
        return os.getpid()
