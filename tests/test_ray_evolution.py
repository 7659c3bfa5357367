"""ES and GA populations on Ray workers: the same seed gives the same fitness as in this process.

Real Ray (the `hakisa[ray]` extra, which setup installs), one local instance for the module.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'hakisa[ray]'")

from hakisa.algos import es, ga  # noqa: E402
from hakisa.algos.population import Evaluator, RayEvaluator, get_flat  # noqa: E402
from hakisa.distributed import EnvRecipe  # noqa: E402
from hakisa.model import HakisaNet  # noqa: E402

pytestmark = pytest.mark.usefixtures("local_ray")  # one Ray for the module (conftest.py)


RECIPE = EnvRecipe(game="duel", opts={"tier": "normal"}, train_recipe=False)  # how the workers make theirs


def _duel(n):
    return dataclasses.replace(RECIPE, num_envs=n).make()


def _net(envs):
    torch.manual_seed(0)
    return HakisaNet(envs.obs_spec, envs.input_map, hidden=32)


# GA on Ray is marked slow for CI's budget: its members travel as the same (kind, ...) descriptors through
# the same RayEvaluator as ES's, and the serial Evaluator that decodes both is covered by the GA tests
@pytest.mark.parametrize("algo", [es, pytest.param(ga, marks=pytest.mark.slow)])
def test_same_seed_same_fitness_serially_and_on_ray(algo):
    kw = dict(generations=3, pop_size=6, episodes_per_member=2, max_steps=150, seed=3, hidden=32, threads=1,
              progress=False)
    serial = algo.train(_duel(12), algo.Args(**kw), net=_net(_duel(1)))
    on_ray = algo.train(_duel(1), algo.Args(**kw, workers=2), net=_net(_duel(1)), recipe=RECIPE)
    assert on_ray["workers"] == 2
    for a, b in zip(serial["history"], on_ray["history"], strict=True):
        assert a == b  # fitness max and mean, every generation, to the last bit
    assert len({h["mean"] for h in serial["history"]}) > 1  # the fitness moved: the runs did something


def test_a_killed_worker_is_replaced_and_its_members_rerun():
    envs = _duel(1)
    net = _net(envs)
    theta = get_flat(net)
    desc = ("es", 0.05, 7, 0, list(range(3)))
    want = Evaluator(_duel(12), net)(theta, desc, 2, 11, 150)
    pool = RayEvaluator(RECIPE, net, workers=2)
    try:
        np.testing.assert_array_equal(pool(theta, desc, 2, 11, 150), want)
        os.kill(ray.get(pool.actors[0].pid.remote()), signal.SIGKILL)
        np.testing.assert_array_equal(pool(theta, desc, 2, 11, 150), want)
        assert pool.replaced == 1
    finally:
        pool.close()


def test_evolve_cli_with_workers(tmp_path, capsys):
    from hakisa.cli import main

    rc = main(["evolve", "--env", "Toy/KeyPress-v0", "--algo", "es", "--generations", "2", "--pop", "4",
               "--hidden", "32", "--workers", "2", "--runs-dir", str(tmp_path), "--run", "es-ray", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["workers"] == 2 and out["generations"] == 2
    assert (tmp_path / "es-ray" / "checkpoint" / "model.safetensors").exists()
    cfg = json.loads((tmp_path / "es-ray" / "config.json").read_text())
    assert cfg["args"]["workers"] == 2
