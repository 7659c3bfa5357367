"""GA and OpenAI-ES: independent members, determinism, learning."""
from __future__ import annotations

import numpy as np
import torch

from hakisa.algos import es, ga
from hakisa.algos.es import centered_ranks
from hakisa.algos.population import evaluate_population, get_flat
from hakisa.envs.make import make_vec
from hakisa.model import HakisaNet

torch.set_num_threads(1)


def _net(envs, seed=0):
    # orthogonal init's QR gives other last bits on another thread count, which an earlier test may have set
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return HakisaNet(envs.obs_spec, envs.input_map, hidden=32)


def test_population_members_are_evaluated_independently():
    envs = make_vec("Toy/KeyPress-v0", 4 * 2, seed=0)
    net = _net(envs)
    theta = get_flat(net)
    g = torch.Generator().manual_seed(0)
    pop = theta + 0.5 * torch.randn(4, theta.numel(), generator=g)  # four clearly different policies
    together = evaluate_population(envs, net, pop, episodes=2, seed=5)
    alone = [
        evaluate_population(make_vec("Toy/KeyPress-v0", 2, seed=0), net, pop[i : i + 1], 2, seed=5)[0] for i in range(4)
    ]
    np.testing.assert_array_equal(together, alone)  # no shared reward list, no cross-talk between members
    assert len(set(together.tolist())) > 1
    assert torch.equal(get_flat(net), theta)  # evaluation never writes into the net


def test_centered_ranks():
    r = centered_ranks(np.array([10.0, -3.0, 7.0, 100.0]))
    np.testing.assert_allclose(r, [1 / 6, -0.5, -1 / 6, 0.5])


def _run(mod, args, seed):
    envs = make_vec("Toy/KeyPress-v0", args.pop_size * args.episodes_per_member, seed=0)
    net = _net(envs)
    m = mod.train(envs, args, None, net=net)
    return m, net


def _score(net):
    return float(
        evaluate_population(make_vec("Toy/KeyPress-v0", 20, seed=0), net, get_flat(net)[None], 20, seed=999)[0]
    )


def test_ga_is_deterministic_and_learns():
    args = ga.Args(generations=30, pop_size=16, episodes_per_member=2, sigma=0.1, progress=False, threads=1, seed=1)
    m1, n1 = _run(ga, args, 1)
    m2, n2 = _run(ga, args, 1)
    assert m1["history"] == m2["history"] and torch.equal(get_flat(n1), get_flat(n2))
    untrained = _score(_net(make_vec("Toy/KeyPress-v0", 1)))
    learned = _score(n1)
    assert untrained < 8  # chance: 3.2 of 16
    assert learned > 8, (learned, untrained, [h["max"] for h in m1["history"]])


def test_es_is_deterministic_and_learns():
    args = es.Args(
        generations=30, pop_size=16, episodes_per_member=2, sigma=0.05, lr=0.03, progress=False, threads=1, seed=1
    )
    m1, n1 = _run(es, args, 1)
    m2, n2 = _run(es, args, 1)
    assert m1["history"] == m2["history"] and torch.equal(get_flat(n1), get_flat(n2))
    learned = _score(n1)
    assert learned > 8, (learned, [h["mean"] for h in m1["history"]])
