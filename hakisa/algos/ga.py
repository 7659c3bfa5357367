"""Hakisa-style genetic algorithm over the policy weights (Such et al. 2017's "Deep GA" shape).

Each generation: evaluate every member on its OWN env copies, keep the `elite` best unchanged,
fill the rest with mutated copies of parents drawn from the top `truncation`, and shrink the
mutation strength by `sigma_decay`. The original Hakisa aliased one reward list across the whole
population, so every member got the same fitness; here each member's fitness comes from its own
sub-envs of one vector env, and `evaluate_population` is tested against one-member-at-a-time runs.

Everything random flows from `seed` (torch.Generator for weights, fixed env seeds per generation),
so two runs with the same seed produce the same population, fitnesses and final weights.
The policy acts greedily (argmax of each policy head); only the policy's parameters evolve.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, vmap
from tqdm import tqdm

from hakisa.algos.common import setup_torch, start_run
from hakisa.envs.make import contract
from hakisa.model import HakisaNet, save_checkpoint


@dataclass
class Args:
    generations: int = 50
    """number of generations"""
    pop_size: int = 32
    """population size"""
    elite: int = 2
    """members copied unchanged into the next generation"""
    truncation: int = 8
    """parents are drawn uniformly from the best this many"""
    sigma: float = 0.05
    """initial mutation std (weights)"""
    sigma_decay: float = 0.97
    """mutation std multiplier per generation"""
    episodes_per_member: int = 2
    """episodes per member per generation (each on its own env copy)"""
    max_steps: int = 5_000
    """safety cap on steps per evaluation"""
    seed: int = 0
    """seed for weights, mutations and env seeds"""
    encoder: str = "small"
    """encoder: small | nature | torchvision:<name>"""
    hidden: int = 256
    """trunk width"""
    threads: int = 0
    """torch threads; 0: one per core up to 2"""
    max_minutes: float = 0.0
    """wall-clock training budget in minutes; 0: none (stop at the step/generation count)"""
    progress: bool = True
    """show a tqdm progress bar"""


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


# ---- the GA ----------------------------------------------------------------------------------
def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None) -> dict:
    """Evolve; `envs` needs pop_size * episodes_per_member sub-envs. Returns metrics, sets net to the best."""
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
    writer = start_run(run_dir, args, {"algo": "ga", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()})
    g = torch.Generator().manual_seed(args.seed)
    theta0 = get_flat(net)
    P, D = args.pop_size, theta0.numel()
    pop = theta0.expand(P, D).clone()
    pop[1:] += args.sigma * torch.randn(P - 1, D, generator=g)
    history, best_fit = [], -np.inf
    start = time.time()
    for gen in tqdm(range(args.generations), disable=not args.progress, desc="ga"):
        if args.max_minutes and time.time() - start > 60 * args.max_minutes:
            break
        fit = evaluate_population(envs, net, pop, args.episodes_per_member, args.seed + gen, args.max_steps)
        order = np.argsort(-fit, kind="stable")
        if fit[order[0]] >= best_fit:
            best_fit = float(fit[order[0]])
        history.append({"gen": gen, "max": float(fit.max()), "mean": float(fit.mean()), "best_member": int(order[0])})
        if writer is not None:
            writer.add_scalar("charts/fitness_max", fit.max(), gen)
            writer.add_scalar("charts/fitness_mean", fit.mean(), gen)
            writer.add_scalar("charts/episodic_return", fit[order[0]], gen)
            writer.add_scalar("charts/sigma", args.sigma * args.sigma_decay**gen, gen)
        sigma = args.sigma * args.sigma_decay ** (gen + 1)
        parents = torch.as_tensor(order[: args.truncation].copy())
        new = torch.empty_like(pop)
        new[: args.elite] = pop[torch.as_tensor(order[: args.elite].copy())]  # elitism
        pick = parents[torch.randint(len(parents), (P - args.elite,), generator=g)]
        new[args.elite :] = pop[pick] + sigma * torch.randn(P - args.elite, D, generator=g)
        pop = new
    # the final answer is the first-ranked member of the last evaluated generation (an elite),
    # which was re-tested on fresh seeds every generation: less lucky than the all-time max
    set_flat(net, pop[0])
    metrics = {
        "generations": len(history),
        "final_fitness": history[-1]["max"],
        "best_fitness": best_fit,
        "history": history,
        "time_s": time.time() - start,
    }
    if run_dir is not None:
        save_checkpoint(
            Path(run_dir) / "checkpoint",
            net,
            {"algo": "ga", **asdict(args)},
            {k: v for k, v in metrics.items() if k != "history"},
        )
        writer.close()
    return metrics
