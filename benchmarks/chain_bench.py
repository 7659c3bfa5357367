"""Issue 6's whole chain on the real page, as one table of win rates per stage. Last line: JSON.

    python benchmarks/chain_bench.py --fights 20 --tier normal --minutes 15 --work runs/chain

1. teacher: benchmarks/teacher_duel.py plays the duel page (Chromium, own Xvfb) with real X key events
   while `hakisa record` (its own process: pixels and X events only) writes the episode store;
2. study: `hakisa study` clones it; the clone fights the sim and the page;
3. explore + consolidate, in the sim: rounds of `hakisa explore` (the current agent samples its
   policy over --round-fights fights; the store keeps each action's log-prob and V) and
   `hakisa consolidate --algo ppo` (one PPO update on those episodes), for --minutes;
4. play: `hakisa play --game duel --live` with the final agent, --fights fights on the page.
Sim win rates are over --eval-episodes fights on seeds never trained on; page ones over --fights.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teacher_study_bench import add_common, check_dataset, record_teacher, stack_stride, study_stage  # noqa: E402


def sim_win_rate(ckpt: Path, tier: str, episodes: int, deterministic: bool) -> float:
    from hakisa.games.duel.evaluate import evaluate_duel
    from hakisa.model import load_checkpoint

    net, _ = load_checkpoint(ckpt)
    return evaluate_duel(net, episodes, tier, seed=4242, deterministic=deterministic)["win_rate"]


def page_play(ckpt: Path, tier: str, fights: int, deterministic: bool, out: Path) -> dict:
    from hakisa.games.duel.web import DuelPage
    from hakisa.play_live import play_live

    with DuelPage(tier=tier) as page:  # its own Xvfb and Chromium: never the user's display
        return play_live(
            str(ckpt),
            game="duel",
            page=page,
            episodes=fights,
            opts={"tier": tier},
            deterministic=deterministic,
            probe_trials=3,
            gif_episodes=1,
            out=str(out),
            progress=False,
        )


def explore_consolidate(
    start: Path,
    work: Path,
    tier: str,
    minutes: float,
    round_fights: int,
    num_envs: int,
    lr: float,
    epochs: int,
    deterministic_eval: bool,
) -> tuple[Path, list[dict]]:
    """Alternate explore (sim) and consolidate (PPO) until the clock runs out; returns (last checkpoint, log)."""
    from hakisa.data import EpisodeStore, EpisodeWriter
    from hakisa.envs.make import make_vec
    from hakisa.evaluate import evaluate
    from hakisa.model import checkpoint_obs_spec, load_checkpoint
    from hakisa.phases.consolidate import consolidate_ppo

    spec = checkpoint_obs_spec(start)
    env = make_vec("Hakisa/Duel-v0", num_envs, seed=777, tier=tier, obs_spec=spec)
    net, _ = load_checkpoint(start, input_map=env.input_map, obs_spec=env.obs_spec)
    t0, log, ckpt, k = time.time(), [], start, 0
    while time.time() - t0 < 60 * minutes:
        k += 1
        data = work / f"explore-{k:03d}"
        meta = {
            "input_map": env.input_map,
            "obs_spec": env.obs_spec,
            "source": "explore",
            "game": "Hakisa/Duel-v0",
            "fps": 15,
            "agent": str(ckpt),
        }
        with EpisodeWriter(data, meta, chunk_frames=512) as w:  # sim episodes: big chunks, fewer fsyncs
            s = evaluate(net, env, round_fights, "sample", seed=1000 + k, collect=w)
        # round 1 fits the clone's never-trained value head before its first PPO step
        net, m = consolidate_ppo(
            EpisodeStore(data),
            net,
            work / f"round-{k:03d}",
            epochs=epochs,
            lr=lr,
            seed=k,
            progress=False,
            value_epochs=10 if k == 1 else 0,
        )
        ckpt = work / f"round-{k:03d}" / "checkpoint"
        log.append(
            {
                "round": k,
                "explore_win_rate": s.get("win_rate"),
                "explore_mean_return": s["mean_return"],
                "steps": m["steps"],
                "approx_kl": round(m["approx_kl"], 4),
                "minutes": round((time.time() - t0) / 60, 2),
            }
        )
        print(json.dumps(log[-1]), flush=True)
        if k > 1:  # keep the newest data only: the rounds are on-policy
            shutil.rmtree(work / f"explore-{k - 1:03d}", ignore_errors=True)
    env.close()
    return ckpt, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common(ap)
    ap.add_argument("--work", default="runs/chain")
    ap.add_argument("--minutes", type=float, default=15.0, help="stage 3's budget (explore + consolidate rounds)")
    ap.add_argument("--round-fights", type=int, default=64, help="fights explored per round")
    ap.add_argument("--num-envs", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ppo-epochs", type=int, default=2)
    ap.add_argument("--study-page-fights", type=int, default=None, help="page fights for the clone (default --fights)")
    ap.add_argument("--skip-page", action="store_true", help="sim only (no page plays for stages 2-4)")
    args = ap.parse_args()
    os.environ.pop("DISPLAY", None)  # every page here runs on its own Xvfb

    work = Path(args.work)
    ds = work / "dataset"
    det = args.eval_deterministic
    t0 = time.time()
    teacher, t_rec = record_teacher(work, args.fights, args.tier, args.fps, args.obs, args.reuse)
    check_doc, info = check_dataset(ds)
    res = study_stage(
        ds,
        work / "study",
        args.tier,
        args.epochs,
        args.patience,
        args.eval_episodes,
        det,
        args.init,
        stack_stride=stack_stride(args),
    )
    bc = work / "study" / "best"
    rows = [
        {
            "stage": "1 teacher (X events) + hakisa record",
            "page": teacher["win_rate"],
            "sim": None,
            "fights_page": teacher["fights"],
        },
        {"stage": "2 hakisa study", "sim": res["eval"]["win_rate"], "page": None},
    ]
    if not args.skip_page:
        rows[1]["page"] = page_play(bc, args.tier, args.study_page_fights or args.fights, det, work / "study")[
            "win_rate"
        ]
    final, rounds = explore_consolidate(
        bc, work / "rounds", args.tier, args.minutes, args.round_fights, args.num_envs, args.lr, args.ppo_epochs, det
    )
    rows.append(
        {
            "stage": f"3 explore + consolidate (sim, {len(rounds)} rounds)",
            "sim": sim_win_rate(final, args.tier, args.eval_episodes, det),
            "page": None,
        }
    )
    if not args.skip_page:
        live = page_play(final, args.tier, args.fights, det, work / "final")
        rows.append(
            {
                "stage": "4 hakisa play --game duel --live",
                "page": live["win_rate"],
                "sim": None,
                "step_ms_p50": live.get("step_ms_p50"),
                "lag_ms": live.get("lag_ms"),
                "gif": live.get("gif"),
            }
        )
    print(f"\n{'stage':48s} {'sim':>6s} {'page':>6s}")
    for r in rows:
        f = lambda v: f"{v:6.2f}" if v is not None else "     -"  # noqa: E731
        print(f"{r['stage']:48s} {f(r['sim'])} {f(r['page'])}")
    print(
        json.dumps(
            {
                "tier": args.tier,
                "deterministic": det,
                "rows": rows,
                "rounds": rounds,
                "dataset": {"episodes": info["episodes"], "frames": info["frames"], "check_ok": check_doc["ok"]},
                "study": {"val_acc_cmd": res["best"]["acc_cmd"], "epochs": res["epochs"]},
                "minutes_total": round((time.time() - t0) / 60, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
