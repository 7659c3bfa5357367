"""`hakisa data info|check|view|export-minari PATH`: inspect, validate, look at and export an episode store."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from hakisa.data.store import DataError, EpisodeStore
from hakisa.data.table import episode_rows, format_rows


def add_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    i = sub.add_parser("info", help="episodes, frames, duration, action histogram")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    v = sub.add_parser("view", help="a local web page: the episodes, and a scrubber with the actions drawn")
    v.add_argument("path")
    v.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    v.add_argument("--no-open", action="store_true", help="print the URL only; do not open a browser")
    v.add_argument("--episode", type=int, default=None, help="open this episode (its id, as `data info` lists it)")
    v.add_argument("--frame", type=int, default=None, help="... at this frame (0 is the episode's first)")
    c = sub.add_parser("check", help="verify every chunk; name cut episodes; exit 1 on corruption")
    c.add_argument("path")
    c.add_argument("--json", action="store_true")
    m = sub.add_parser("export-minari", help="write a Minari dataset (pip install 'hakisa[minari]')")
    m.add_argument("path")
    m.add_argument("--id", default=None, help="Minari dataset id (default: hakisa/<store name>-v0)")
    m.add_argument(
        "--out", default=None, help="Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)"
    )
    m.add_argument("--stack", type=int, default=1, help="observations as stacks of k frames (1 = single frames)")


def info(store: EpisodeStore) -> dict:
    names = [c["name"] for c in store.meta["input_map"]["commands"]]
    hist = store.action_histogram()
    eps = store.episodes
    rows = episode_rows(store)
    return {
        "path": str(store.root),
        "source": store.meta.get("source"),
        "game": store.meta.get("game"),
        "window": store.meta.get("window"),
        "fps": store.meta.get("fps"),
        "episodes": len(eps),
        "complete": sum(e.complete for e in eps),
        "cut": [e.id for e in eps if not e.complete],
        "terminated": sum(e.terminated for e in eps),
        "frames": int(store.num_frames),
        "duration_s": round(float(sum(r["duration_s"] for r in rows)), 3),
        "mean_return": float(np.mean([e.ret for e in eps if e.complete])) if any(e.complete for e in eps) else None,
        "actions": {n: int(c) for n, c in zip(names, hist)},
        "per_episode": rows,
        # who acted (hakisa record --agent): frames per actor, agent -> person takeovers; a teacher's: all person
        "actors": store.actor_counts(),
        "agent": store.meta.get("agent"),
    }


def _print_info(d: dict) -> None:
    print(f"{d['path']}: source={d['source']} game={d['game']!r} fps={d['fps']}")
    print(
        f"  episodes {d['episodes']} ({d['complete']} complete, {d['terminated']} ended by the game, "
        f"cut: {d['cut'] or 'none'})"
    )
    print(f"  frames {d['frames']}, duration {d['duration_s']:.1f} s, mean return {d['mean_return']}")
    if d["actors"]["agent"] or d["agent"]:
        a = d["actors"]
        print(f"  acted: person {a['person']} frames, agent {a['agent']} frames ({d['agent']}), "
              f"takeovers {a['takeovers']}")
    total = max(1, sum(d["actions"].values()))
    width = max(len(n) for n in d["actions"])
    for name, c in d["actions"].items():
        bar = "#" * int(round(40 * c / total))
        print(f"  {name:<{width}} {c:>8} {100 * c / total:5.1f}% {bar}")
    if d["per_episode"]:
        print()
        for line in format_rows(d["per_episode"]):
            print("  " + line)


def export_minari(store: EpisodeStore, dataset_id: str | None = None, out: str | None = None, stack: int = 1):
    """Episodes -> a Minari dataset. Observations are uint8 stacks [k*C, H, W]; actions MultiDiscrete.

    Minari wants T+1 observations per episode: a terminated episode repeats its last frame as the
    final observation (the terminal screen after the last action was never captured); a cut or
    truncated one drops its last step instead, whose next frame is missing."""
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError:
        raise SystemExit("export-minari needs minari: pip install 'hakisa[minari]'") from None
    import gymnasium as gym

    if out:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(out).resolve())
    dataset_id = dataset_id or f"hakisa/{store.root.resolve().name}-v0"
    imap = store.input_map
    c, h, w = store.frame_shape
    obs_space = gym.spaces.Box(0, 255, (stack * c, h, w), np.uint8)

    def stacked(frames: np.ndarray) -> np.ndarray:
        idx = np.arange(len(frames))
        return np.concatenate([frames[np.maximum(idx - j, 0)] for j in range(stack - 1, -1, -1)], axis=1)

    def buffers():
        for i, ep in enumerate(store.episodes):
            e = store.episode(i)
            T = len(e["actions"])
            if T == 0:
                continue
            terminated = bool(e["dones"][-1])
            if terminated:
                frames = np.concatenate([e["frames"], e["frames"][-1:]])
            else:
                frames, T = e["frames"], T - 1
                if T == 0:
                    continue
            term = e["dones"][:T].copy()
            trunc = np.zeros(T, bool)
            trunc[-1] = not term[-1]
            yield EpisodeBuffer(
                id=ep.id,
                observations=stacked(frames),
                actions=e["actions"][:T],
                rewards=e["rewards"][:T].astype(np.float64),
                terminations=term,
                truncations=trunc,
            )

    ds = None
    warnings.filterwarnings("ignore", module="minari")  # nags about author/permalink/env spec we don't have
    for buf in buffers():  # one episode in memory at a time
        if ds is None:
            ds = minari.create_dataset_from_buffers(
                dataset_id,
                [buf],
                observation_space=obs_space,
                action_space=imap.action_space,
                algorithm_name=f"hakisa-{store.meta.get('source')}",
                description=f"Hakisa episode store {store.root}",
                jpeg_encoding=False,
            )
        else:
            ds.update_dataset_from_buffer([buf])
    if ds is None:
        raise DataError(f"{store.root}: no episode with a usable step to export")
    return ds


def main(args) -> int:
    try:
        store = EpisodeStore(args.path)
        if args.action == "info":
            d = info(store)
            print(json.dumps(d)) if args.json else _print_info(d)
            return 0
        if args.action == "view":
            from hakisa.data.view import serve

            return serve(store, port=args.port, open_browser=not args.no_open, episode=args.episode,
                         frame=args.frame)
        if args.action == "check":
            rep = store.check()
            if args.json:
                print(
                    json.dumps(
                        {
                            "ok": rep.ok,
                            "errors": rep.errors,
                            "warnings": rep.warnings,
                            "cut": rep.cut,
                            "chunks_ok": rep.chunks_ok,
                            "frames_ok": rep.frames_ok,
                        }
                    )
                )
            else:
                for w in rep.warnings:
                    print(f"warning: {w}")
                for e in rep.errors:
                    print(f"ERROR: {e}")
                print(
                    f"{'OK' if rep.ok else 'CORRUPT'}: {rep.chunks_ok} chunks / {rep.frames_ok} frames read back, "
                    f"{len(store.episodes)} episodes, cut: {rep.cut or 'none'}, errors: {len(rep.errors)}"
                )
            return 0 if rep.ok else 1
        if args.action == "export-minari":
            ds = export_minari(store, args.id, args.out, args.stack)
            print(
                f"minari dataset {ds.id}: {ds.total_episodes} episodes, {ds.total_steps} steps "
                f"at {os.environ.get('MINARI_DATASETS_PATH', '~/.minari/datasets')}"
            )
            return 0
    except DataError as e:
        print(f"hakisa data: {e}", file=sys.stderr)
        return 1
    return 2
