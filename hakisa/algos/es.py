"""OpenAI-ES (Salimans et al. 2017) over the policy weights.

Each generation samples P/2 Gaussian directions e_i and evaluates theta + s*e_i and theta - s*e_i
(antithetic pairs cancel the noise that is symmetric in e, halving the gradient variance). Returns
become centred ranks in [-0.5, 0.5], so a single lucky episode cannot dominate the step and the
update is invariant to the reward's scale. The gradient estimate
    g = 1/(P s) * sum_i (rank(theta + s e_i) - rank(theta - s e_i)) e_i
is handed to Adam as -g (Adam minimises), with optional L2 weight decay as in the paper.
Deterministic given `seed`. Direction i of generation g is rebuilt from (seed, g, i) (`population.noise`),
so with `workers > 0` each Ray worker receives theta through the object store plus a few integers, plays
its share of the members on its own envs and returns fitness only (as in OpenAI-ES); the same seed gives
the same fitness at every generation, serially or on any number of workers. With a comma list of option
values (e.g. tiers), make episodes_per_member a multiple of its length: every member then meets the same mix.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import setup_torch, start_run
from hakisa.algos.population import Evaluator, RayEvaluator, get_flat, noise, set_flat
from hakisa.envs.make import contract
from hakisa.model import HakisaNet, save_checkpoint


@dataclass
class Args:
    """OpenAI-ES's settings (`train(envs, args)`, `hakisa evolve --algo es`, the default).

    `hakisa evolve` sets some from its flags, `--set KEY=VALUE` any; each field's docstring below documents
    it. Saved in the run's config.json."""

    generations: int = 100
    """number of generations (parameter updates)"""
    pop_size: int = 32
    """population size (even: antithetic pairs)"""
    sigma: float = 0.02
    """perturbation std"""
    lr: float = 0.01
    """Adam learning rate on the weights"""
    l2: float = 0.005
    """L2 weight decay coefficient"""
    episodes_per_member: int = 2
    """episodes per member per generation (each on its own env copy)"""
    max_steps: int = 5_000
    """safety cap on steps per evaluation"""
    seed: int = 0
    """seed for weights, noise and env seeds"""
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


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5]; ties broken by position (stable), as in the reference code."""
    ranks = np.empty(len(x), np.float64)
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    return ranks / max(1, len(x) - 1) - 0.5


def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None, recipe=None) -> dict:
    """`envs` needs pop_size * episodes_per_member sub-envs (with workers, any size: it only names the game).
    recipe: a `hakisa.distributed.EnvRecipe`, how each Ray worker makes its own. Returns metrics; leaves
    net at theta."""
    if args.pop_size % 2:
        raise ValueError("pop_size must be even (antithetic pairs)")
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    if net is None:
        net = HakisaNet(spec, imap, args.encoder, args.hidden)
    writer = start_run(run_dir, args, {"algo": "es", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()})
    theta = torch.nn.Parameter(get_flat(net).clone())
    opt = torch.optim.Adam([theta], lr=args.lr)
    half = args.pop_size // 2
    fitness = RayEvaluator(recipe, net, args.workers) if args.workers else Evaluator(envs, net)
    history = []
    start = time.time()
    for gen in tqdm(range(args.generations), disable=not args.progress, desc="es"):
        if args.max_minutes and time.time() - start > 60 * args.max_minutes:
            break
        desc = ("es", args.sigma, args.seed, gen, list(range(half)))
        fit = fitness(theta.detach(), desc, args.episodes_per_member, args.seed + gen, args.max_steps)
        eps = torch.stack([noise(args.seed, gen, i, theta.numel()) for i in range(half)])
        r = centered_ranks(fit)
        w = torch.as_tensor(r[:half] - r[half:], dtype=torch.float32)
        grad = (w @ eps) / (args.pop_size * args.sigma)
        opt.zero_grad()
        theta.grad = -grad + args.l2 * theta.detach()  # ascent on fitness, decay on weights
        opt.step()
        history.append({"gen": gen, "max": float(fit.max()), "mean": float(fit.mean())})
        if writer is not None:
            writer.add_scalar("charts/fitness_max", fit.max(), gen)
            writer.add_scalar("charts/fitness_mean", fit.mean(), gen)
            writer.add_scalar("charts/episodic_return", fit.mean(), gen)
            writer.add_scalar("charts/grad_norm", float(grad.norm()), gen)
    fitness.close()
    set_flat(net, theta.detach())
    metrics = {"generations": len(history), "final_fitness_mean": history[-1]["mean"], "history": history,
               "time_s": time.time() - start, "workers": args.workers,
               "workers_replaced": getattr(fitness, "replaced", 0)}
    if run_dir is not None:
        save_checkpoint(
            Path(run_dir) / "checkpoint",
            net,
            {"algo": "es", **asdict(args)},
            {k: v for k, v in metrics.items() if k != "history"},
        )
        writer.close()
    return metrics
