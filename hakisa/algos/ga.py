"""Hakisa-style genetic algorithm over the policy weights (Such et al. 2017's "Deep GA" shape).

Each generation: evaluate every member on its OWN env copies, keep the `elite` best unchanged,
fill the rest with mutated copies of parents drawn from the top `truncation`, and shrink the
mutation strength by `sigma_decay`. Each member's fitness comes from its own sub-envs of one vector
env (`hakisa.algos.population`), so members never share a reward.

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
from tqdm import tqdm

from hakisa.algos.common import setup_torch, start_run
from hakisa.algos.population import Evaluator, RayEvaluator, get_flat, set_flat
from hakisa.envs.make import contract
from hakisa.model import HakisaNet, save_checkpoint


@dataclass
class Args:
    """The genetic algorithm's settings (`train(envs, args)`, `hakisa evolve --algo ga`).

    `hakisa evolve` sets some from its flags, `--set KEY=VALUE` any; each field's docstring below documents
    it. Saved in the run's config.json."""

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
    workers: int = 0
    """evaluate the population on this many Ray workers, each with its own envs (0: in this process)"""
    max_minutes: float = 0.0
    """wall-clock training budget in minutes; 0: none (stop at the step/generation count)"""
    progress: bool = True
    """show a tqdm progress bar"""


# ---- the GA ----------------------------------------------------------------------------------
def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None, recipe=None) -> dict:
    """Evolve; `envs` needs pop_size * episodes_per_member sub-envs (with workers, any size). recipe: an
    EnvRecipe, how each Ray worker makes its own envs. Returns metrics, sets net to the best."""
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    if net is None:
        net = HakisaNet(spec, imap, args.encoder, args.hidden)
    # a GA member is its parent plus fresh noise: the population goes to the workers once per generation
    # through Ray's object store (one shared copy per node), and only fitness comes back
    fitness = RayEvaluator(recipe, net, args.workers) if args.workers else Evaluator(envs, net)
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
        fit = fitness(pop, ("ga", 0, P), args.episodes_per_member, args.seed + gen, args.max_steps)
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
    fitness.close()
    set_flat(net, pop[0])
    metrics = {
        "workers": args.workers,
        "workers_replaced": getattr(fitness, "replaced", 0),
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
