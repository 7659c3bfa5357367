"""When the screen stops matching a game's rules, Hakisa says so and stops (never a silent wait), and
`hakisa game check` sees a canvas that moved since `game init`.

The page is tests/games/lights (a white square; arrow keys score hits and misses; 20 presses end a game).
Its game file, copied with `window.canvas` moved 40 px down, reads a picture 40 px off: the hits and
misses bars and the game-over band are never where the readers look, as when a browser infobar pushes a
canvas down.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hakisa.envs.rules_watch import RulesMismatch, RulesWatch
from hakisa.game import Game

LIGHTS = Path(__file__).parent / "games" / "lights.json"


def lights_file(tmp_path: Path, canvas: list[int] | None = None) -> Path:
    """A copy of the lights game file (and its page) in tmp_path, with window.canvas replaced."""
    shutil.copytree(LIGHTS.parent / "lights", tmp_path / "lights")
    doc = json.loads(LIGHTS.read_text())
    if canvas is not None:
        doc["window"]["canvas"] = canvas
    path = tmp_path / "lights.json"
    path.write_text(json.dumps(doc))
    return path


def test_watch_warns_once_then_stops_for_each_sign():
    """Each sign warns once at its first threshold and raises at its second; time counts only while watched."""
    judge = Game.load(LIGHTS).judge()
    out = io.StringIO()
    w = RulesWatch(2.0, 5.0, min_episode_s=2.0, game_file="mine.json", out=out).attach(judge)
    assert w.names == ["hits", "misses", "over"]  # the reward's and done's readings (score is hits)

    # no in_play: a warning at 2 s, one only, and a stop at 5 s
    for t in range(5):
        w.see({"hits": float(t), "misses": 0.0, "over": 0.9}, False, t=float(t))
    assert out.getvalue().count("\n") == 1 and "hakisa: warning: the rules have not read `in_play` for 2 s" in \
        out.getvalue() and "`hakisa game check mine.json`" in out.getvalue()
    with pytest.raises(RulesMismatch, match=r"in_play` for 5 s \(.*\); stopped after 5 s: .*check mine.json"):
        w.see({"hits": 5.0, "misses": 0.0, "over": 0.9}, False, t=5.0)

    # silent readings: in play, but hits, misses and over never change (all None: said so)
    w = RulesWatch(2.0, 5.0, out=(out := io.StringIO())).attach(judge)
    for t in range(5):
        w.see({"hits": None, "misses": None, "over": None}, True, t=float(t))
    assert "none of the readers hits, misses, over has read anything for 2 s" in out.getvalue()
    with pytest.raises(RulesMismatch, match="has read anything for 5 s"):
        w.see({"hits": None, "misses": None, "over": None}, True, t=5.0)

    # a long episode: 1 s first, then over max(2 s, 3 x 1 s) warns and twice that stops; the long gap
    # (an idle window) counts 2 s only
    w = RulesWatch(2.0, 50.0, min_episode_s=2.0, out=(out := io.StringIO())).attach(judge)
    w.episode_start(t=0.0)
    w.see({"hits": 0.0, "misses": 0.0, "over": 0.0}, True, t=0.5)
    w.episode_end(t=1.0)
    w.episode_start(t=1.0)
    for k, t in enumerate([1.5, 2.0]):
        w.see({"hits": float(k), "misses": 0.0, "over": 0.0}, True, t=t)
    assert out.getvalue() == ""
    w.see({"hits": 2.0, "misses": 0.0, "over": 0.0}, True, t=100.0)  # watched: 2.0 + 2 = 4.0, an age of 3 s
    assert w.clock == 4.0 and out.getvalue().count("\n") == 1
    assert "episode 2 has run 3 s, over 3x the longest so far (1 s)" in out.getvalue()
    w.see({"hits": 3.0, "misses": 0.0, "over": 0.0}, True, t=102.0)  # age 5 s: under twice the limit
    with pytest.raises(RulesMismatch, match="episode 2 has run 6 s"):
        w.see({"hits": 4.0, "misses": 0.0, "over": 0.0}, True, t=103.0)


def test_a_stall_under_an_agent_that_does_one_thing_says_so():
    """Circus Linux waits for a click to launch each clown: an untrained argmax agent that only moves stalls it.
    The readings are fine and in play, and the agent sent one same action all along: the line says that the game
    waits on the agent (try --sample), not only that the screen may not match. An agent that varies its actions
    while nothing changes gets the screen's line alone."""
    judge = Game.load(LIGHTS).judge()
    w = RulesWatch(2.0, 5.0, out=(out := io.StringIO())).attach(judge)
    for t in range(5):
        w.acted([1, 7, 0], t=float(t))
        w.see({"hits": 3.0, "misses": 1.0, "over": 0.0}, True, t=float(t))
    assert "while the agent sent one same action [1, 7, 0] all along" in out.getvalue()
    with pytest.raises(RulesMismatch, match=r"not changed for 5 s .*one same action .*--sample.*stopped after 5 s"):
        w.acted([1, 7, 0], t=5.0)
        w.see({"hits": 3.0, "misses": 1.0, "over": 0.0}, True, t=5.0)
    w = RulesWatch(2.0, 5.0, out=(out := io.StringIO())).attach(judge)
    for t in range(5):
        w.acted([t % 2, 0, 0], t=float(t))
        w.see({"hits": 3.0, "misses": 1.0, "over": 0.0}, True, t=float(t))
    assert "have not changed for 2 s" in out.getvalue() and "same action" not in out.getvalue()


def _play(path: Path, out: Path, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "hakisa.cli", "play", "--game", str(path), "--episodes", "2", "--probe-trials", "0",
           "--gif-episodes", "0", "--stuck-warn", "2", "--stuck-stop", "6", "--out", str(out)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    return proc, time.monotonic() - t0


def hakisa_lines(stderr: str) -> list[str]:
    return [ln.strip() for ln in re.split(r"[\r\n]", stderr) if ln.strip().startswith("hakisa:")]


@pytest.mark.x11
@pytest.mark.browser
def test_play_warns_then_stops_in_one_line_when_the_canvas_moved(xvfb, tmp_path):
    """The moved canvas never reads a game's end: play warns after 2 s and stops after 6 s with one `hakisa:`
    line and exit 2, where it used to wait for ever. The same file with the canvas in place plays its
    games with no warning, so the stop is about the screen, not the thresholds."""
    moved = lights_file(tmp_path / "moved", canvas=[0, 40, 160, 120])
    proc, took = _play(moved, tmp_path / "out-moved", timeout=50)
    lines = hakisa_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 2 and lines[0].startswith("hakisa: warning: ") and not lines[1].startswith(
        "hakisa: warning"), lines
    assert "have not changed for 2 s" in lines[0] and "stopping if it goes on for 6 s" in lines[0], lines
    assert "have not changed for 6 s; stopped after 6 s" in lines[1], lines
    assert f"`hakisa game check {moved.relative_to(Path.cwd()) if moved.is_relative_to(Path.cwd()) else moved}`" \
        in lines[1], lines
    assert took < 45, took  # chromium's start, 6 s of play and the stop; never a wait without end
    assert not (tmp_path / "out-moved" / "play_live.json").exists()  # a stopped run writes no summary

    in_place = lights_file(tmp_path / "ok")
    proc, _ = _play(in_place, tmp_path / "out-ok", timeout=50)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert hakisa_lines(proc.stderr) == [], proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["episodes"] == 2


@pytest.mark.x11
@pytest.mark.browser
def test_game_check_says_the_canvas_moved_since_init(xvfb, tmp_path, capsys):
    """`game init` on the lights page, then `game check`: nothing moved, nothing said. The page's canvas
    pushed 40 px down (what an infobar does): check names the move and the canvas that fixes it."""
    from hakisa.browser import BrowserApp
    from hakisa.cli import main

    path = tmp_path / "mine.json"
    with BrowserApp(LIGHTS.parent / "lights", size=(200, 180), display=xvfb, timeout=20) as page:
        assert main(["game", "init", "--window", "Hakisa Lights", "--out", str(path)]) == 0
        assert path.with_suffix(".png").is_file()
        capsys.readouterr()
        assert main(["game", "check", str(path), "--seconds", "0.3", "--out", str(tmp_path / "c1")]) == 0
        said = capsys.readouterr().out
        assert "warning" not in said, said
        assert json.loads(said.strip().splitlines()[-1])["since_init"]["moved"] is None

        page.evaluate("document.getElementById('game').style.top = '40px'")
        time.sleep(0.3)  # a frame or two for the page to lay out and paint
        assert main(["game", "check", str(path), "--seconds", "0.3", "--out", str(tmp_path / "c2")]) == 0
        said = capsys.readouterr().out
    assert "warning: the canvas moved by (+0, +40) px since `game init`" in said, said
    summary = json.loads(said.strip().splitlines()[-1])
    assert summary["since_init"]["moved"] == [0, 40] and summary["since_init"]["canvas_now"][:2] == [0, 40], summary
