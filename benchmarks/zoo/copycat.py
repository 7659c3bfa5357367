"""Does a zoo clone react to the screen, or repeat its last move? (issue 34: why offline accuracy did not
predict play)

    python benchmarks/zoo/copycat.py catch dodge steer --work runs/zoo

For each game, the clone a protocol run studied (`WORK/NAME/BC/best`) is validated again on the held-out
episodes of its recording (study's split: `--val-fraction` 0.2, seed 0, the study's class weights), and
three numbers are set side by side: its command head's balanced accuracy, what repeating the frame before's
command scores (`repeat_baseline`: the copycat a stack of two frames makes possible, since the stack shows the
last move), and how often it is right on the frames where the player starts a command (`acc_cmd_on_onsets`).
Studies from 2026-12-06 on write the same numbers into report.json. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hakisa.algos.bc import validate
from hakisa.data import EpisodeStore, Transitions
from hakisa.model import load_checkpoint

KEYS = ("balanced_acc_cmd", "repeat_baseline", "acc_cmd_on_onsets", "onsets", "acc_cmd", "majority_baseline")


def one(work: Path, name: str, bc: str) -> dict:
    store = EpisodeStore(work / name / "data")
    net, cfg = load_checkpoint(work / name / bc / "best", input_map=store.input_map)
    data = Transitions(store, stack=net.obs_spec.stack)
    _, val = data.split(0.2, seed=0)
    weights = torch.tensor(cfg["algo"]["class_weights"])
    v = validate(net, val, weights, net.uses_xy, len(net.input_map.commands))
    return {"game": name, "clone": f"{name}/{bc}", "stack": net.obs_spec.stack,
            **{k: round(v[k], 3) if isinstance(v[k], float) else v[k] for k in KEYS}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("games", nargs="+")
    ap.add_argument("--work", default="runs/zoo", help="the protocol's --work folder")
    ap.add_argument("--bc", default="bc", help="the study's folder under WORK/NAME")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = [one(Path(args.work), g, args.bc) for g in args.games]
    for r in rows:
        print(f"{r['game']:8s} balanced {r['balanced_acc_cmd']:.2f}  repeat {r['repeat_baseline']:.2f}  "
              f"onsets {r['acc_cmd_on_onsets']} of {r['onsets']}", flush=True)
    print(json.dumps({"benchmark": "benchmarks/zoo/copycat.py", "date": time.strftime("%Y-%m-%d %H:%M"),
                      "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
