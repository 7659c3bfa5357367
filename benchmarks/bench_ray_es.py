"""OpenAI-ES on the duel's simulator, serially and on Ray with 1 and 2 workers: the same seed and population
must give the same fitness at every generation; the wall time of each says what the workers buy here.

    .venv/bin/python benchmarks/bench_ray_es.py --generations 10 --pop 16 --out benchmarks/ray_es_duel.json

Each run builds the same net (seed) and calls `hakisa.algos.es.train`; the Ray runs start Ray first, so
wall_s counts the generations only (each worker still makes its envs on its first piece, inside the time).
The LAST line printed is one JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from hakisa.algos import es
from hakisa.distributed import EnvRecipe, init_ray
from hakisa.model import HakisaNet


def run(args: es.Args, recipe: EnvRecipe) -> dict:
    envs = dataclasses.replace(recipe, num_envs=1 if args.workers else args.pop_size * args.episodes_per_member).make()
    torch.manual_seed(args.seed)
    net = HakisaNet(envs.obs_spec, envs.input_map, args.encoder, args.hidden)
    t0 = time.time()
    m = es.train(envs, args, net=net, recipe=recipe)
    return {"workers": args.workers, "wall_s": round(time.time() - t0, 2), "history": m["history"],
            "s_per_generation": round((time.time() - t0) / m["generations"], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--pop", type=int, default=16)
    p.add_argument("--episodes-per-member", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=300, help="steps per evaluation (a fight is cut there)")
    p.add_argument("--tier", default="normal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="the Ray runs (the serial one always)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    recipe = EnvRecipe(game="duel", opts={"tier": a.tier}, seed=a.seed, train_recipe=False)
    # one torch thread in this process too: the workers get one each, and the comparison is of placement
    base = es.Args(generations=a.generations, pop_size=a.pop, episodes_per_member=a.episodes_per_member,
                   max_steps=a.max_steps, seed=a.seed, threads=1, progress=False)
    load = os.getloadavg()
    runs = [run(base, recipe)]
    init_ray()
    runs += [run(dataclasses.replace(base, workers=w), recipe) for w in a.workers]
    same = all(r["history"] == runs[0]["history"] for r in runs[1:])
    out = {"bench": "ray_es", "game": "duel", "tier": a.tier, "pop": a.pop, "episodes_per_member":
           a.episodes_per_member, "max_steps": a.max_steps, "generations": a.generations, "seed": a.seed,
           "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load],
           "identical_fitness_every_generation": same,
           "wall_s": {("serial" if r["workers"] == 0 else f"ray_{r['workers']}"): r["wall_s"] for r in runs},
           "fitness_mean": [h["mean"] for h in runs[0]["history"]], "runs": runs}
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}))


if __name__ == "__main__":
    main()
