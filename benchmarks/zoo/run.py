"""The zoo protocol: for each game, record its teacher, study with no flags, play 20 games, compare.

    python benchmarks/zoo/run.py catch clicker --minutes 6 --json benchmarks/zoo_2026-12-06.json
    python benchmarks/zoo/run.py --all                                     # every game of the zoo

Per game, each step a command a user would type (nothing imported from Hakisa's internals):
  1. `python benchmarks/zoo/teach.py NAME --out WORK/NAME/data --minutes M`    the teacher, recorded
  2. `hakisa play --game benchmarks/zoo/NAME.json --episodes N`                  an untrained agent
  3. `hakisa study WORK/NAME/data --out WORK/NAME/bc`                            no other flag
  4. `hakisa play --game benchmarks/zoo/NAME.json --checkpoint WORK/NAME/bc --episodes N`   the clone
With --correct C (issue 35's correction rounds), then per round r = 1..--rounds, on a copy of the last store:
  5. `python benchmarks/zoo/teach.py NAME --out WORK/NAME/data-r --agent WORK/NAME/bc[-(r-1)] --minutes C`
     the agent plays and the teacher takes over where it would act otherwise (`hakisa record --agent`)
  6. `hakisa study WORK/NAME/data-r --out WORK/NAME/bc-r`, then `hakisa play` as in 4: the corrected agent
The teacher's mean is over the games it recorded. Every mean comes with its 95 % half-width (1.96 s/sqrt(n)).
A game passes when the clone reaches half the teacher's mean and its interval lies above the untrained one.
Steps run one after another, never beside each other: the agents play in real time. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ZOO = Path(__file__).resolve().parent
ROOT = ZOO.parent.parent
HELD_OUT = {"hop", "whack"}  # written first, and nothing was chosen by looking at them: reported apart


def games() -> list[str]:
    return sorted(p.stem for p in ZOO.glob("*.json") if (ZOO / f"{p.stem}_teacher.py").exists())


def run_json(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run a command, keep its output in `log`, return the JSON of its last line."""
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, timeout=timeout, cwd=ROOT)
        f.write(p.stdout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode} (see {log})")
    out = json.loads(lines[-1])
    out["_seconds"] = round(time.monotonic() - t0, 1)
    return out


def interval(mean: float, hw: float) -> list[float]:
    return [round(mean - hw, 3), round(mean + hw, 3)]


def study_and_play(name: str, data: Path, work: Path, bc: str, out: str, episodes: int, seed: int,
                   study_flags: list[str]) -> tuple[dict, dict]:
    """Steps 3 and 4 (and 6): `hakisa study` with no flag but the dataset and run, then 20 games of its agent."""
    hakisa = [sys.executable, "-m", "hakisa.cli"]
    print(f"[zoo] {name}: hakisa study {data} --out {work / bc} {' '.join(study_flags)}", flush=True)
    study = run_json(hakisa + ["study", str(data), "--out", str(work / bc), *study_flags], work / f"study-{bc}.log",
                     timeout=7200)
    (work / f"study-{bc}.json").write_text(json.dumps(study))
    if bc == "bc":
        (work / "study.json").write_text(json.dumps(study))
    print(f"[zoo] {name}: {bc}'s agent, {episodes} games", flush=True)
    clone = run_json(hakisa + ["play", "--game", str(ZOO / f"{name}.json"), "--checkpoint", str(work / bc),
                               "--episodes", str(episodes), "--seed", str(seed + 2), "--out", str(work / out)],
                     work / f"{out}.log", timeout=3600)
    return study, clone


def one_round(name: str, work: Path, r: int, minutes: float, prev_data: Path, prev_bc: Path, episodes: int,
              seed: int, study_flags: list[str]) -> tuple[dict, dict, dict]:
    """Round r: the last agent corrected into a copy of the last store, studied, played."""
    data = work / f"data-{r}"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(prev_data, data)
    print(f"[zoo] {name}: correction round {r}, {minutes} min, agent {prev_bc}", flush=True)
    rec = run_json([sys.executable, str(ZOO / "teach.py"), name, "--out", str(data), "--agent", str(prev_bc),
                    "--minutes", str(minutes), "--seed", str(seed + 10 + r)], work / f"correct-{r}.log",
                   timeout=minutes * 60 + 900)
    (work / f"correct-{r}.json").write_text(json.dumps(rec))
    study, played = study_and_play(name, data, work, f"bc-{r}", f"corrected-{r}", episodes, seed, study_flags)
    return rec, study, played


def correction_rounds(name: str, work: Path, minutes: float, rounds: int, episodes: int, seed: int,
                      study_flags: list[str], entry: dict, from_round: int = 1) -> dict:
    """Steps 5 and 6 per round: the last agent plays, the teacher corrects it into a copy of the last store, study
    learns from the whole store (corrections weighted, the agent's own frames left out), 20 games are played.
    from_round R: the rounds before R are the ones this protocol ran before in `work`, read back, not rerun."""
    prev_data, prev_bc = work / "data", work / "bc"
    curve = [{"teacher_minutes": round(entry["teacher_seconds"] / 60, 2) if entry.get("teacher_seconds") else None,
              "round": 0, "mean": entry["clone_mean"], "ci": entry["clone_ci"]}]
    spent = curve[0]["teacher_minutes"] or 0.0
    for r in range(1, rounds + 1):
        if r < from_round:
            print(f"[zoo] {name}: reusing correction round {r} ({work / f'data-{r}'})", flush=True)
            rec = json.loads((work / f"correct-{r}.json").read_text())
            study = json.loads((work / f"study-bc-{r}.json").read_text())
            played = json.loads((work / f"corrected-{r}" / "play_live.json").read_text())
        else:
            rec, study, played = one_round(name, work, r, minutes, prev_data, prev_bc, episodes, seed, study_flags)
        in_control = (rec.get("corrections") or {}).get("seconds_in_control", 0.0) / 60
        spent += in_control
        curve.append({"round": r, "round_minutes": minutes, "teacher_minutes_in_control": round(in_control, 2),
                      "teacher_minutes": round(spent, 2), "takeovers": (rec.get("corrections") or {}).get("takeovers"),
                      "agent_mean_while_corrected": rec.get("mean_score"), "mean": played["mean_score"],
                      "ci": interval(played["mean_score"], played["score_ci95"]),
                      "balanced_acc_cmd": (study.get("best") or {}).get("balanced_acc_cmd"),
                      "act": study.get("act")})
        print(f"[zoo] {name}: after round {r}: {played['mean_score']:.2f} "
              f"({played['mean_score'] / entry['teacher_mean']:.0%} of the teacher)", flush=True)
        prev_data, prev_bc = work / f"data-{r}", work / f"bc-{r}"
    last = curve[1]  # the bar is on one round; later rounds make the curve
    t_mean = entry["teacher_mean"]
    return {"corrected_mean": last["mean"], "corrected_ci": last["ci"],
            "corrected_share": round(last["mean"] / t_mean, 3) if t_mean else None,
            "corrected_passes": bool(t_mean and last["mean"] >= 0.7 * t_mean and last["mean"] > entry["clone_mean"]),
            "correction_curve": curve}


def untrained_row(name: str, path: str) -> dict:
    """The untrained agent's games from an earlier protocol JSON. An untrained agent's score is the game's (its
    net learned nothing of this recording): 20 games measured once pin it down better than 4 played again."""
    protocol = json.loads(Path(path).read_text())
    rows = [g for g in protocol["games"] if g["game"] == name]
    if not rows:
        raise SystemExit(f"{path} has no row for {name}")
    lo, hi = rows[0]["untrained_ci"]
    return {"mean_score": rows[0]["untrained_mean"], "score_ci95": round((hi - lo) / 2, 3),
            "episodes": rows[0].get("untrained_games") or protocol["episodes"], "_seconds": 0.0, "from": path}


def one_game(name: str, work: Path, minutes: float, episodes: int, seed: int, study_flags: list[str],
             correct: float = 0.0, rounds: int = 1, reuse_clone: bool = False, from_round: int = 1,
             untrained_from: str | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    hakisa = [sys.executable, "-m", "hakisa.cli"]
    game_file = str(ZOO / f"{name}.json")
    data = work / "data"
    if (work / "teacher.json").exists() and data.exists():  # a recording this protocol made before: study it again
        teacher = json.loads((work / "teacher.json").read_text())
        print(f"[zoo] {name}: reusing the teacher's recording {data} ({teacher['games']} games)", flush=True)
    elif data.exists():
        raise SystemExit(f"{data} exists without teacher.json: give a fresh --work folder")
    else:
        print(f"[zoo] {name}: recording the teacher for {minutes} min", flush=True)
        teacher = run_json([sys.executable, str(ZOO / "teach.py"), name, "--out", str(data), "--minutes",
                            str(minutes), "--seed", str(seed)], work / "teacher.log", timeout=minutes * 60 + 600)
        (work / "teacher.json").write_text(json.dumps(teacher))
    reuse = reuse_clone and (work / "clone" / "play_live.json").exists() and (work / "study.json").exists()
    for old in ("bc", "clone") if not reuse else ():  # a rerun studies and plays afresh
        if (work / old).exists():
            shutil.rmtree(work / old)
    cached = work / "untrained.json"
    untrained = json.loads(cached.read_text()) if cached.exists() else None
    if untrained_from is not None:
        untrained = untrained_row(name, untrained_from)
        print(f"[zoo] {name}: the untrained agent's {untrained['episodes']} games from {untrained_from}", flush=True)
    elif untrained is not None and untrained.get("episodes") == episodes:  # the same net, seed and games
        print(f"[zoo] {name}: reusing the untrained agent's {episodes} games", flush=True)
    else:
        print(f"[zoo] {name}: untrained agent, {episodes} games", flush=True)
        play = hakisa + ["play", "--game", game_file, "--episodes", str(episodes), "--seed", str(seed + 1),
                         "--out", str(work / "untrained")]
        try:
            untrained = run_json(play, work / "untrained.log", timeout=3600) | {"act": "argmax"}
        except RuntimeError as e:
            # an untrained net's argmax is one fixed action; a game that waits for another (Circus Linux launches
            # each clown on a click) then stalls, and `play` stops it: the baseline is the random (sampled) agent
            print(f"[zoo] {name}: the untrained agent's argmax stalled the game ({e}); playing it sampled",
                  flush=True)
            untrained = run_json(play + ["--sample"], work / "untrained-sample.log", timeout=3600) | {"act": "sample"}
        cached.write_text(json.dumps(untrained))
    if reuse:
        print(f"[zoo] {name}: reusing the clone studied and played before ({work / 'bc'})", flush=True)
        study = json.loads((work / "study.json").read_text())
        clone = json.loads((work / "clone" / "play_live.json").read_text()) | {"_seconds": None}
    else:
        study, clone = study_and_play(name, data, work, "bc", "clone", episodes, seed, study_flags)
    t_mean, u_mean, c_mean = teacher["mean_score"], untrained["mean_score"], clone["mean_score"]
    c_ci = interval(c_mean, clone["score_ci95"])
    u_ci = interval(u_mean, untrained["score_ci95"])
    entry = {
        "game": name,
        "held_out": name in HELD_OUT,
        "teacher_mean": t_mean,
        "teacher_ci": interval(t_mean, teacher["score_ci95"]),
        "teacher_games": teacher["games"],
        "teacher_seconds": teacher.get("seconds"),
        "frames": (teacher.get("recorder") or {}).get("frames"),
        "dropped": (teacher.get("recorder") or {}).get("dropped"),
        "untrained_mean": u_mean,
        "untrained_ci": u_ci,
        "untrained_games": untrained.get("episodes"),
        **({"untrained_act": untrained["act"]} if "act" in untrained else {}),
        **({"untrained_from": untrained["from"]} if "from" in untrained else {}),
        "clone_mean": c_mean,
        "clone_ci": c_ci,
        "clone_share": round(c_mean / t_mean, 3) if t_mean else None,
        "passes": bool(t_mean and c_mean >= 0.5 * t_mean and c_ci[0] > u_ci[1]),
        "study": {k: study.get(k) for k in ("steps", "seconds", "label_lag", "warnings")}
        | {"best": {k: (study.get("best") or {}).get(k) for k in ("balanced_acc_cmd", "balanced_acc_x",
                                                                    "balanced_acc_y", "acc_cmd")},
           "eval": {k: (study.get("eval") or {}).get(k) for k in ("episodes", "mean_score", "score_ci95")}},
        "study_flags": study_flags,
        "seconds": {"teacher": teacher.get("_seconds"), "untrained": untrained.get("_seconds"),
                    "study": study.get("_seconds"), "clone": clone.get("_seconds")},
        "clone_late_steps": clone.get("late_steps"),
    }
    if correct:
        entry |= correction_rounds(name, work, correct, rounds, episodes, seed, study_flags, entry, from_round)
    print(f"[zoo] {name}: teacher {t_mean:.2f}, untrained {u_mean:.2f}, clone {c_mean:.2f} "
          f"({entry['clone_share']:.0%} of the teacher) {'PASS' if entry['passes'] else 'FAIL'}", flush=True)
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("games", nargs="*", help=f"zoo games (default with --all: {', '.join(games())})")
    ap.add_argument("--all", action="store_true", help="every game of the zoo")
    ap.add_argument("--minutes", type=float, default=6.0, help="minutes of the teacher recorded per game")
    ap.add_argument("--episodes", type=int, default=20, help="games played by each agent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/zoo", help="datasets and runs go to WORK/NAME/")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--study-flag", action="append", default=[], metavar="FLAG",
                    help="a flag for study (the protocol gives none; for comparing candidates only)")
    ap.add_argument("--correct", type=float, default=0.0, metavar="MINUTES",
                    help="then correction rounds of this many minutes each (issue 35); 0: none")
    ap.add_argument("--rounds", type=int, default=1, help="with --correct: how many rounds, each on the last agent")
    ap.add_argument("--from-round", type=int, default=1, metavar="R",
                    help="with --correct: rounds before R ran before in WORK/NAME; read them back and go on from R")
    ap.add_argument("--reuse-clone", action="store_true",
                    help="keep a clone this protocol studied and played before in WORK/NAME (for --correct)")
    ap.add_argument("--untrained", metavar="JSON",
                    help="take the untrained agent's row from this earlier protocol JSON instead of playing it")
    args = ap.parse_args(argv)
    names = games() if args.all else args.games
    unknown = [n for n in names if n not in games()]
    if not names or unknown:
        ap.error(f"zoo games: {', '.join(games())} (unknown: {unknown})")
    t0 = time.time()
    load0 = os.getloadavg()
    entries = []
    for n in names:
        entries.append(one_game(n, Path(args.work) / n, args.minutes, args.episodes, args.seed, args.study_flag,
                                args.correct, args.rounds, args.reuse_clone, args.from_round, args.untrained))
    result = {
        "protocol": "benchmarks/zoo/run.py",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_at_start": [round(v, 2) for v in load0],
        "load_at_end": [round(v, 2) for v in os.getloadavg()],
        "seed": args.seed,
        "minutes": args.minutes,
        "episodes": args.episodes,
        "seconds": round(time.time() - t0),
        "games": entries,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
