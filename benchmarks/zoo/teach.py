"""The zoo's teacher harness: a game's scripted teacher plays its real page while `hakisa record` records it.

    python benchmarks/zoo/teach.py catch --out datasets/zoo-catch --minutes 10   # record ~10 min of games
    python benchmarks/zoo/teach.py catch --no-record --games 10                   # the teacher's score only
    python benchmarks/zoo/teach.py catch --grab-digits runs/catch-digits --games 2   # canvas PNGs + true scores
    python benchmarks/zoo/teach.py catch --out datasets/zoo-catch-fix --agent runs/catch-bc --minutes 5  # corrections

It opens benchmarks/zoo/NAME.json's page (BrowserApp, on its own Xvfb; a desktop game's command through
desktop.py, its state read from its pixels), loads the Teacher class from benchmarks/zoo/NAME_teacher.py,
polls the page's `hakisa.state()` (what is drawn this frame) ~150 times a second, and does what the Teacher's
hands do through real XTest events (hands.py). The recorder is a SEPARATE `hakisa record` process that sees
only pixels and the X event stream. After each game over it pauses like a person and does the game file's
restart navigation (R on the pages, clicks on a desktop game's menus); it stops after --games games or at the
first game over after --minutes, taps F10 (the recorder's stop key) and releases every key. The page opens with
`?autostart=0` where it supports it (Pop's convention), so that the first game starts with a real R press once
everything is ready.
With --agent the recorder is `hakisa record --agent CHECKPOINT`: the agent plays, and the teacher takes over
through real XTest input only where it would act differently (correct.py); the JSON then has the agent's
scores, the teacher's takeovers and the frames each of them acted on.
Last line of stdout: JSON with the teacher's scores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ZOO = Path(__file__).resolve().parent


def load_module(path: Path, name: str):
    """A module from its file (the zoo is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def game_keys(doc: dict) -> set[str]:
    """Every key the game file's input map may hold or tap, and its restart keys: the keys the Hands must press."""
    return ({k for c in doc["input_map"].get("commands", []) for k in c.get("keys", [])}
            | {s["key"] for s in restart_steps(doc) if "key" in s})


def restart_steps(doc: dict) -> list[dict]:
    """The game file's restart navigation (the pages: R; Circus Linux: clicks on its menus), R if it has none."""
    return doc.get("rules", {}).get("navigation", {}).get("restart") or [{"key": "r"}]


def restarter(doc: dict, hands):
    """What a person does to start the next game: the restart navigation's keys, clicks and waits, through the
    Hands (its `until` is the caller's: it waits for play)."""
    def restart() -> None:
        for s in restart_steps(doc):
            if "key" in s:
                hands.tap(s["key"])
            if "click" in s:
                hands.click(*s["click"])
            if "wait" in s:
                time.sleep(float(s["wait"]))
    return restart


def start_recorder(game_file: Path, app, out: str, agent: str | None = None) -> subprocess.Popen:
    """`hakisa record` on the page's canvas, in its own process; returns once it is recording. agent: a checkpoint
    that plays while the teacher does not (`hakisa record --agent`)."""
    from hakisa.game import Game

    Game.load(game_file)  # the recorder needs a valid game file (digit templates included): fail here, clearly
    left, top, w, h = app.canvas_region
    cmd = [sys.executable, "-m", "hakisa.cli", "record", "--game", str(game_file),
           "--region", f"{left},{top},{w},{h}", "--out", out, "--quiet", *(["--agent", agent] if agent else [])]
    rec = subprocess.Popen(cmd, env={**os.environ, "DISPLAY": app.display}, stdout=subprocess.PIPE, text=True)
    meta, deadline = Path(out) / "meta.json", time.monotonic() + 120  # an agent first loads torch and its net
    while not meta.exists() and rec.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if rec.poll() is not None or not meta.exists():
        rec.terminate()
        raise RuntimeError(f"hakisa record did not start (exit code {rec.poll()})")
    time.sleep(0.5)
    return rec


def stop_recorder(rec: subprocess.Popen, hands) -> tuple[dict | None, int]:
    """F10 (a real key press) stops the recorder; returns its JSON summary and exit code."""
    time.sleep(0.5)  # let it see the last game-over screen
    hands.tap("f10")
    try:
        out, _ = rec.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        rec.terminate()
        out, _ = rec.communicate(timeout=30)
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), rec.returncode


def play(app, hands, teacher, rng: np.random.Generator, games: int | None, minutes: float | None,
         poll_hz: float = 150.0, on_score=None, *, restart, game_seconds: float = 20.0) -> list[int]:
    """Play until `games` games or the first game over after `minutes`; returns the scores.
    on_score(state): called at each new score and at each game over (frames for digit templates)."""
    scores: list[int] = []
    t0 = time.monotonic()
    # no zoo page's game lasts over 20 s (a desktop game says its own): a game that stops answering must not
    # hang the harness
    hard_end = t0 + 60 * (minutes or 0) + (game_seconds + 20) * (games or 0) + 120
    last_score = None
    teacher.reset()
    period, next_t = 1.0 / poll_hz, time.monotonic()
    started = False  # a desktop game may open on its game-over screen (xjump's high scores): not a game played
    while time.monotonic() < hard_end:
        st = app.evaluate("hakisa.state()")
        now = time.monotonic()
        if st["mode"] != "play":
            hands.release_all()  # a person's hands come off the keys between games
            if st["mode"] == "over" and started:
                scores.append(int(st["score"]))
                print(f"game {len(scores)}: score {st['score']}, lives {st['lives']}", flush=True)
                if on_score is not None:
                    time.sleep(0.1)  # let the game-over screen reach the screen
                    on_score(app.evaluate("hakisa.state()"))
                done_games = games is not None and len(scores) >= games
                done_time = minutes is not None and now - t0 >= 60 * minutes
                if done_games or done_time:
                    return scores
                time.sleep(0.6 + rng.uniform(0, 0.3))  # look at the score, then start the next game
            restart()
            wait_end = time.monotonic() + 10
            while app.evaluate("hakisa.mode()") != "play":
                if time.monotonic() > wait_end:
                    raise RuntimeError("the game did not start a new game after its restart navigation")
                time.sleep(0.02)
            teacher.reset()
            last_score, next_t, started = None, time.monotonic(), True
            continue
        if on_score is not None and st["score"] != last_score:
            time.sleep(0.1)  # let the new score reach the screen
            on_score(app.evaluate("hakisa.state()"))
            last_score = st["score"]
        hands.apply(teacher.act(st, now))
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
        next_t = max(next_t, time.monotonic() - period)  # after a stall, do not rush to catch up
    raise RuntimeError(f"no game over for too long: {len(scores)} games in {time.monotonic() - t0:.0f} s")


def digit_grabber(app, out: Path, values: list[int]):
    """on_score callback for --grab-digits: a canvas PNG per new score, its true value in `values`."""
    import cv2

    from hakisa.capture import Capture

    out.mkdir(parents=True, exist_ok=True)

    def save(st: dict) -> None:
        with Capture(region=app.canvas_region, display=app.display) as cap:
            frame = cap.grab()
        cv2.imwrite(str(out / f"frame_{len(values):03d}.png"), frame[..., :3])
        values.append(int(st["score"]))

    return save


def corrections(app, hands, teacher, doc: dict, args) -> tuple[list[int], dict]:
    """--agent: the agent plays, the teacher corrects it (correct.py); (the agent's game scores, takeover stats)."""
    corr = load_module(ZOO / "correct.py", "zoo_correct")
    agent_keys = corr.AgentKeys(app.display, sorted(game_keys(doc)))
    try:
        return corr.correct(app, hands, teacher, agent_keys, args.games, args.minutes, args.poll_hz,
                            restart=restarter(doc, hands))
    finally:
        agent_keys.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a zoo game: benchmarks/zoo/NAME.json and NAME_teacher.py")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", help="episode store `hakisa record` writes (appended to if it exists)")
    mode.add_argument("--no-record", action="store_true", help="only play: the teacher's scores")
    mode.add_argument("--grab-digits", metavar="DIR", help="save a canvas PNG at every new score (values.txt)")
    ap.add_argument("--minutes", type=float, help="stop at the first game over after this many minutes")
    ap.add_argument("--games", type=int, help="stop after this many games (default 10 without --minutes)")
    ap.add_argument("--seed", type=int, default=0, help="the page's first game seed and the teacher's rng")
    ap.add_argument("--poll-hz", type=float, default=150.0, help="how often the page's state is read")
    ap.add_argument("--agent", metavar="CHECKPOINT", help="with --out: this agent plays, the teacher corrects it "
                    "('untrained': a fresh net)")
    args = ap.parse_args(argv)
    if args.agent and not args.out:
        ap.error("--agent records the corrections: give --out")
    if args.games is None and args.minutes is None:
        args.games = 10

    from hakisa.browser import BrowserApp

    game_file = ZOO / f"{args.name}.json"
    if not game_file.exists():
        ap.error(f"no game file {game_file}")
    doc = json.loads(game_file.read_text())
    teacher_mod = load_module(ZOO / f"{args.name}_teacher.py", f"{args.name}_teacher")
    hands_mod = load_module(ZOO / "hands.py", "zoo_hands")
    rng = np.random.default_rng(args.seed)
    teacher = teacher_mod.Teacher(np.random.default_rng(args.seed + 1))
    # SIGTERM ends the run through the finally blocks below, so keys are released and everything closes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    launch = doc["window"]["launch"]
    result: dict = {"game": args.name, "seed": args.seed}
    rec = None
    if "command" in launch:  # a desktop program: its state is read from its pixels (desktop.py)
        opened = load_module(ZOO / "desktop.py", "zoo_desktop").DesktopApp(game_file, teacher_mod.read_state)
    else:  # autostart=0: the page waits for R, so the first game starts when the harness (and recorder) is ready
        opened = BrowserApp(game_file.parent / launch["web"], query={"seed": args.seed, "autostart": 0},
                            size=tuple(doc["window"]["size"]))
    with opened as app:
        # with an agent, the teacher may hold shift_r (a key no zoo game reads) to take over and do nothing
        keys = game_keys(doc) | ({"shift_r"} if args.agent else set())
        hands = hands_mod.Hands(app.display, app.canvas_region[:2], keys)
        try:
            values: list[int] = []
            on_score = digit_grabber(app, Path(args.grab_digits), values) if args.grab_digits else None
            if args.out:
                rec = start_recorder(game_file, app, args.out, args.agent)
            t0 = time.monotonic()
            if args.agent:
                scores = corrections(app, hands, teacher, doc, args)
                result["corrections"] = scores[1]
                scores = scores[0]
            else:
                scores = play(app, hands, teacher, rng, args.games, args.minutes, args.poll_hz, on_score,
                              restart=restarter(doc, hands), game_seconds=getattr(teacher_mod, "GAME_SECONDS", 20.0))
            result["seconds"] = round(time.monotonic() - t0, 1)
            hands.release_all()
            if rec is not None:
                summary, rc = stop_recorder(rec, hands)
                result.update(recorder=summary, recorder_rc=rc, out=args.out)
            if args.agent:
                from hakisa.data import EpisodeStore

                result.update(agent=args.agent, actors=EpisodeStore(args.out).actor_counts())
            if args.grab_digits:
                (Path(args.grab_digits) / "values.txt").write_text(" ".join(map(str, values)) + "\n")
                result.update(frames=len(values), values=values, dir=args.grab_digits)
        finally:
            hands.close()
            if rec is not None and rec.poll() is None:
                rec.terminate()
                rec.wait(30)
    s = np.array(scores, float)
    result.update(
        games=len(scores), scores=scores, mean_score=float(s.mean()) if len(s) else None,
        score_ci95=float(1.96 * s.std(ddof=1) / np.sqrt(len(s))) if len(s) > 1 else 0.0,
    )
    print(json.dumps(result), flush=True)
    return 0 if rec is None or rec.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
