"""The boss learns, page side: the page plays a learned brain bit-exactly as DuelSim does, logs every fight it
plays (POSTed to the server, which appends it to fights.jsonl), and fightlog.replay rebuilds those fights.

Browser tests run a REAL Chromium on their own Xvfb (as tests/test_duel_browser.py); the brains are random
integer networks saved in tmp folders (a league's bosses/ and a stand-in for the shipped folder).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import read_line

from hakisa.games.duel import brain, fightlog
from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim, load_rules

HAS_BROWSER = bool(os.path.exists("/usr/bin/chromium") and shutil.which("Xvfb") and shutil.which("xdotool")
                   and importlib.util.find_spec("playwright"))
RULES = load_rules()


def browser_test(f):
    """Marks a test that drives a real Chromium on its own Xvfb (the fixture `page` starts both)."""
    for m in (pytest.mark.browser, pytest.mark.x11,
              pytest.mark.skipif(not HAS_BROWSER, reason="needs chromium, Xvfb and xdotool (scripts/setup.sh)")):
        f = m(f)
    return f


def _trace(seed: int, ticks: int) -> list[int]:
    """Random keys held 4 ticks at a time, like an agent; biased towards walking right into the fight."""
    rng = np.random.default_rng(seed)
    cmds = rng.choice(8, size=(ticks + 3) // 4, p=[.1, .08, .3, .1, .2, .1, .04, .08])
    return np.repeat(COMMAND_KEYS[cmds], 4)[:ticks].astype(int).tolist()


def _sim_play(tier: str, seed: int, keys: list[int], b: dict | None) -> DuelSim:
    sim = DuelSim(1, tier=tier, seed=seed, rules=brain.with_brain(RULES, b))
    for k in keys:
        sim.step(k)
    return sim


def _fight(tier: str, seed: int, keys: list[int], b: dict | None, name: str) -> dict:
    """The log the page would write for this fight (keys cut where the fight ended)."""
    sim = DuelSim(1, tier=tier, seed=seed, rules=brain.with_brain(RULES, b))
    used = []
    for k in keys:
        if sim.done[0]:
            break
        sim.step(k)
        used.append(k)
    s = sim.get(0)
    return {"format": fightlog.FORMAT, "rules_version": RULES["version"], "seed": seed, "tier": tier, "boss": name,
            "brain_sha": None, "keys": used, "ticks": s["tick"], "winner": s["winner"], "knight_hp": s["k_hp"],
            "boss_hp": s["b_hp"], "final": s}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """A league folder with one brain (gen1), and a stand-in for hakisa's shipped bosses/ folder (ship1)."""
    root = tmp_path_factory.mktemp("boss")
    league, shipped = root / "league", root / "shipped"
    brain.save_brain(brain.new_brain(24, seed=11, name="gen1"), league / "bosses" / "gen1.json")
    brain.save_brain(brain.new_brain(24, seed=12, name="ship1"), shipped / "ship1.json")
    return league, shipped


@pytest.fixture(scope="module")
def page(dirs):
    from hakisa.games.duel.web import DuelPage
    from hakisa.xserver import Xvfb

    league, shipped = dirs
    mp = pytest.MonkeyPatch()
    mp.setattr(brain, "SHIPPED_DIR", shipped)  # the server lists and serves "shipped" brains from here
    try:
        with Xvfb(1280, 720) as display, DuelPage(tier="hard", display=display, boss="gen1", league=league) as p:
            yield p
    finally:
        mp.undo()


def _load(page, seed: int, tier: str, trace: list[int]) -> dict:
    page.evaluate("hakisa.pause()")
    page.evaluate("([s, t]) => hakisa.loadSeed(s, t)", [seed, tier])
    return page.evaluate("(k) => hakisa.loadTrace(k)", trace)


def _http(url: str, data: bytes | None = None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


# ---- the page plays the brain ------------------------------------------------------------------------
@browser_test
def test_page_plays_the_brain_bit_exact(page, dirs):
    league, _ = dirs
    gen1 = brain.load_brain(league / "bosses" / "gen1.json")
    assert page.evaluate("hakisa.boss()") == "gen1"
    assert page.evaluate("[document.getElementById('boss').value, document.getElementById('hud-boss').textContent]") \
        == ["gen1", "gen1"]
    differs = 0
    for i, tier in enumerate(("hard", "normal", "easy")):
        seed, trace = 40 + i, _trace(40 + i, 700)
        st = _load(page, seed, tier, trace)
        want = _sim_play(tier, seed, trace, gen1).get(0)
        assert {k: st[k] for k in want} == want, f"page and DuelSim disagree with brain gen1 ({tier}, seed {seed})"
        differs += _sim_play(tier, seed, trace, None).get(0) != want
    assert differs == 3, "the learned brain must play differently from the scripted boss"
    # scripted again through the hook: the page's scripted boss is DuelSim's scripted boss
    assert page.evaluate("hakisa.setBoss('scripted')") == "scripted"
    st = _load(page, 40, "hard", _trace(40, 700))
    assert {k: st[k] for k in want} == _sim_play("hard", 40, _trace(40, 700), None).get(0)
    assert page.evaluate("hakisa.setBoss('gen1')") == "gen1"


@browser_test
def test_fights_are_posted_logged_and_replay(page, dirs):
    league, _ = dirs
    log = league / "fights.jsonl"
    n0 = len(log.read_text().splitlines()) if log.exists() else 0
    gen1_file = league / "bosses" / "gen1.json"
    gen1 = brain.load_brain(gen1_file)
    # a fight set up through the hook, then finished by the page's live 60 Hz loop (no keys held)
    seed, tier, limit = 77, "hard", RULES["time_limit"]
    head = _trace(seed, limit)[: limit - 40]
    st = _load(page, seed, tier, head)
    assert not st["done"], "pick a trace that leaves the fight running"
    page.evaluate("hakisa.resume()")
    page.page.wait_for_function("hakisa.mode() === 'over'", timeout=10000)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) <= n0):
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert len(lines) == n0 + 1, "the finished fight was POSTed to the server once"
    fight = fightlog.load_fights([log])[-1]
    assert fight == page.evaluate("hakisa.fightLog()")[-1]
    assert (fight["seed"], fight["tier"], fight["boss"]) == (seed, tier, "gen1")
    assert fight["brain_sha"] == hashlib.sha256(gen1_file.read_bytes()).hexdigest()
    assert fight["keys"][: len(head)] == head and len(fight["keys"]) == fight["ticks"]
    r = fightlog.replay(fight, gen1)
    assert (r["winner"], r["ticks"]) == (fight["winner"], fight["ticks"])
    assert r["states"]["tick"].shape == (fight["ticks"] + 1,) and r["states"]["b_hp"][-1] == fight["boss_hp"]
    # a fight ended by loadTrace is logged too; the download link counts them all
    st = _load(page, 5, "easy", [0] * limit)
    assert st["done"]
    fights = page.evaluate("hakisa.fightLog()")
    assert len(fights) >= 2 and fights[-1]["keys"] == [0] * st["tick"]
    link = "document.getElementById('download-fights')"
    assert page.evaluate(f"{link}.textContent") == f"fights ({len(fights)})"
    jsonl = page.evaluate(f"fetch({link}.href).then((r) => r.text())")  # what the link downloads: a Blob URL
    assert [json.loads(line) for line in jsonl.splitlines()] == fights
    page.evaluate("hakisa.pause()")


@browser_test
def test_brain_list_and_missing_brain(page):
    host, port = page._server.server_address[:2]
    base = f"http://{host}:{port}"
    status, body = _http(base + "/bosses/index.json")
    assert status == 200 and json.loads(body) == ["scripted", "ship1", "gen1"]
    options = "[...document.querySelectorAll('#boss option')].map((o) => o.value)"
    assert page.evaluate(options) == ["scripted", "ship1", "gen1"]
    assert _http(base + "/bosses/ship1.json")[0] == 200
    for bad in ("/bosses/nope.json", "/bosses/../rules.json", "/bosses/%2e%2e/web.py", "/bosses/"):
        assert _http(base + bad)[0] == 404, bad
    # a brain that is not there: the page plays scripted and says so in the DOM (never on the canvas)
    assert page.evaluate("hakisa.setBoss('nope')") == "scripted"
    note = page.evaluate("[document.getElementById('boss-note').textContent, "
                         "getComputedStyle(document.getElementById('boss-note')).display]")
    assert "nope" in note[0] and note[1] != "none"
    assert page.evaluate("document.getElementById('hud-boss').textContent") == "scripted"
    assert page.evaluate("hakisa.setBoss('ship1')") == "ship1"
    assert page.evaluate("getComputedStyle(document.getElementById('boss-note')).display") == "none"
    # the selector: a new brain is a new fight (same seed and tier), as a new tier is
    page.evaluate("hakisa.pause(), hakisa.loadSeed(8, 'normal'), hakisa.loadTrace([2, 2, 2])")
    page.page.select_option("#boss", "gen1")
    page.page.wait_for_function("hakisa.boss() === 'gen1'", timeout=5000)
    assert page.evaluate("[hakisa.state().tick, hakisa.seed(), hakisa.tier]") == [0, 8, "normal"]
    from hakisa.games.duel.web import page_url

    assert page_url(page._server, "hard", boss="gen1").endswith("/index.html?tier=hard&boss=gen1")  # duel open --boss
    # a bad POST is refused and nothing is written
    assert _http(base + "/fights", b'{"format": "something-else"}')[0] == 400


@browser_test
def test_game_file_page_serves_brains_from_a_folder(page, dirs, tmp_path):
    """`hakisa play --game duel --live` opens the page from the game file's window.launch: a "/bosses/" folder
    mapping serves the brains (no index there: the page offers scripted + the one asked for); no POST sink."""
    from hakisa.browser import BrowserApp
    from hakisa.game import Game

    _, shipped = dirs
    game = Game.load("duel")
    files = game.window["launch"]["files"]
    assert "/bosses/" in files
    extra = {u: game.path.parent / f for u, f in files.items()} | {"/bosses/": shipped}  # as LiveGame builds it
    web = game.path.parent / game.window["launch"]["web"]
    with BrowserApp(web, query={"boss": "ship1", "seed": 3}, display=page.display, extra=extra) as app:
        assert app.evaluate("hakisa.boss()") == "ship1"
        assert app.evaluate("[...document.querySelectorAll('#boss option')].map((o) => o.value)") == ["scripted",
                                                                                                       "ship1"]
        app.evaluate("hakisa.pause(), hakisa.loadSeed(3, 'hard')")
        st = app.evaluate("(k) => hakisa.loadTrace(k)", _trace(3, 400))
        want = _sim_play("hard", 3, _trace(3, 400), brain.load_brain(shipped / "ship1.json")).get(0)
        assert {k: st[k] for k in want} == want
        host, port = app._server.server_address[:2]
        assert _http(f"http://{host}:{port}/fights", b"{}")[0] == 405


def test_cli_serve_league(dirs, tmp_path):
    """`hakisa duel serve --league DIR --log-dir OUT`: the league's brains listed, fights appended under OUT."""
    league, _ = dirs
    exe = os.path.join(os.path.dirname(sys.executable), "hakisa")
    proc = subprocess.Popen([exe, "duel", "serve", "--port", "0", "--league", str(league), "--log-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        url = json.loads(read_line(proc, "hakisa duel serve", expect="{"))["url"]
        assert "boss" not in url
        base = url.split("/index.html")[0]
        assert "gen1" in json.loads(_http(base + "/bosses/index.json")[1])
        fight = _fight("easy", 1, [0] * 20, None, "scripted")
        assert _http(base + "/fights", json.dumps(fight).encode())[0] == 204
        assert fightlog.load_fights(tmp_path) == [fight]
    finally:
        proc.terminate()
        proc.wait(10)


# ---- fightlog without a browser ------------------------------------------------------------------------
def test_load_fights_errors(tmp_path):
    good = _fight("normal", 3, _trace(3, 300), None, "scripted")
    (tmp_path / "a.jsonl").write_text(json.dumps(good) + "\n\n" + json.dumps(good) + "\n")
    (tmp_path / "b.json").write_text(json.dumps([good]))
    assert fightlog.load_fights([tmp_path]) == [good] * 3
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {
        "format": (json.dumps(good) + "\n" + json.dumps({**good, "format": "x"}), "bad/c.jsonl:2", "not a duel fight"),
        "version": (json.dumps({**good, "rules_version": -1}), "bad/d.jsonl:1", "rules version -1"),
        "keys": (json.dumps({**good, "keys": [1, "a"]}), "bad/e.jsonl:1", "keys"),
        "json": ("{oops", "bad/f.jsonl:1", "not JSON"),
    }
    for name, (text, where, what) in cases.items():
        f = bad / f"{where.split('/')[1].split(':')[0]}"
        f.write_text(text)
        with pytest.raises(ValueError) as e:
            fightlog.load_fights(f)
        assert where in str(e.value) and what in str(e.value), (name, str(e.value))
        f.unlink()
    with pytest.raises(FileNotFoundError):
        fightlog.load_fights([tmp_path / "missing.jsonl"])


def test_replay_rebuilds_the_fight_and_detects_mismatch():
    b = brain.new_brain(24, seed=5, name="g")
    fight = _fight("hard", 9, _trace(9, 600), b, "g")  # a fight's first 10 s: replay checks any prefix
    scripted = _fight("easy", 4, [2] * 400, None, "scripted")
    r, r2 = fightlog.replay_many([fight, scripted], [b, None])  # one batched sim, a brain each
    t = fight["ticks"]
    assert (r["winner"], r["ticks"]) == (fight["winner"], t) and r["keys"].tolist() == fight["keys"]
    assert all(v.shape == (t + 1,) for v in r["states"].values()) and r["states"]["tick"].tolist() == list(range(t + 1))
    sim = _sim_play("hard", 9, fight["keys"][:100], b)  # row 100: the state after tick 100
    assert {k: int(v[100]) for k, v in r["states"].items()} == sim.get(0)
    one = fightlog.replay(scripted, None)
    assert (r2["ticks"], r2["winner"]) == (one["ticks"], one["winner"]) == (scripted["ticks"], scripted["winner"])
    assert all(np.array_equal(one["states"][k], r2["states"][k]) for k in one["states"])
    with pytest.raises(ValueError, match="does not replay"):
        fightlog.replay(fight, None)  # the scripted boss fights this knight differently
    with pytest.raises(ValueError, match="does not replay"):
        fightlog.replay({**fight, "knight_hp": fight["knight_hp"] - 1}, b)
