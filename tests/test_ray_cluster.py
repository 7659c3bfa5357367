"""Ray rollouts on a two-node test cluster (ray.cluster_utils.Cluster: a head and one more node, both on
this machine): workers land on both nodes, and a worker killed mid-run is replaced without losing the run.
Its own module: a process holds one Ray connection, and test_ray_rollouts.py's is a local Ray."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'hakisa[ray]'")

from hakisa.algos import ppo  # noqa: E402
from hakisa.algos.ppo_ray import train_ray  # noqa: E402
from hakisa.distributed import EnvRecipe  # noqa: E402
from hakisa.model import load_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # one CPU per node: two 1-CPU workers can only be placed one on each
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()  # ends every node process the cluster started


def test_workers_on_both_nodes_and_a_killed_worker_is_replaced(two_nodes, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    killed = []

    def kill_one(net, info):
        if info["update"] == 2:  # mid-run: SIGKILL a worker's process, as a crash or a lost node would
            pid = info["batches"][0]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    args = ppo.Args(total_steps=2 * 2 * 16 * 8, num_steps=16, hidden=64, progress=False, threads=1, save_every=100)
    m = train_ray(EnvRecipe(env_id="Toy/KeyPress-v0", num_envs=2), args, workers=2, run_dir=tmp_path / "run",
                  on_update=kill_one)
    assert killed and m["workers_replaced"] >= 1
    assert m["update"] == 8 and m["global_step"] == 2 * 2 * 16 * 8  # the run went on to its full budget
    assert len(m["nodes"]) == 2  # batches came from workers on both nodes
    assert set(m["nodes"]) == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    net, cfg = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert cfg["metrics"]["update"] == 8


def test_a_local_ray_beside_a_running_cluster_is_its_own(two_nodes):
    """init_ray() with no address starts this process's own Ray even while a cluster started on this machine is
    running (Ray on its own would join that cluster and refuse num_cpus there: seen when this module's cluster
    ran beside another worker's local Ray in the suite)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    code = ("from hakisa.distributed import init_ray; r = init_ray(num_cpus=1); "
            "print(r.get_runtime_context().gcs_address); r.shutdown()")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    own = p.stdout.strip().splitlines()[-1]
    assert own and own != two_nodes.address, (own, two_nodes.address)
