"""The duel page in a REAL Chromium (own Xvfb): pixel parity with the Python render, and real X key play.

Pixels: the page's fight is set through the test hook (seed + key trace), the browser's composited canvas is
screenshotted (CDP), and compared with render.py's render of the same state, full-res and after the shared
preprocess at model resolution. Play: keys go in as real X events (xdotool, what pynput does), while the
page's live 60 Hz loop runs. Timing is made exact by holding a key while the loop is paused, then resuming:
the first tick after resume reads it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from hakisa.capture import ObsSpec, preprocess, rgb_to_bgra
from hakisa.envs.duel.render import ObsRenderer, palette_bgra, render_bgra
from hakisa.envs.duel.sim import B_ACTIVE, B_RECOVER, B_WINDUP, COMMAND_KEYS, DuelSim, K_ROLL

pytestmark = [pytest.mark.browser, pytest.mark.x11]
if not (os.path.exists("/usr/bin/chromium") and shutil.which("Xvfb") and shutil.which("xdotool")):
    pytest.skip("needs chromium, Xvfb and xdotool (scripts/setup.sh)", allow_module_level=True)
pytest.importorskip("playwright")

RIGHT, LEFT, ROLL, ATTACK = 2, 1, 4, 8
RULES = DuelSim(1).rules  # read at import: duel-sim tunes the numbers, the tests follow them
FP = RULES["fp"]


@pytest.fixture(scope="module")
def page():
    from hakisa.envs.duel.web import DuelPage

    with DuelPage(tier="normal") as p:
        yield p


def _sim(state: dict) -> DuelSim:
    sim = DuelSim(1)
    sim.set(0, state)
    return sim


def _trace(rng: np.random.Generator, ticks: int) -> list[int]:
    """Random keys held 4 ticks at a time, like an agent; biased towards walking right into the fight."""
    cmds = rng.choice(8, size=(ticks + 3) // 4, p=[.1, .08, .3, .1, .2, .1, .04, .08])
    return np.repeat(COMMAND_KEYS[cmds], 4)[:ticks].astype(int).tolist()


def _load(page, seed: int, tier: str, trace: list[int]) -> dict:
    page.evaluate("hakisa.pause()")
    page.evaluate("([s, t]) => hakisa.loadSeed(s, t)", [seed, tier])
    return page.evaluate("(k) => hakisa.loadTrace(k)", trace)


def _parity(page, n_states: int, seed0: int):
    rng = np.random.default_rng(seed0)
    spec = ObsSpec()
    pal = palette_bgra(DuelSim(1).rules)
    fast = ObsRenderer(pal, spec)
    maes, full_maes, full_max, kinds, seen = [], [], [], set(), set()
    for i in range(n_states):
        tier = ("easy", "normal", "hard")[i % 3]
        trace = _trace(rng, int(rng.integers(0, 700)))
        state = _load(page, seed0 + i, tier, trace)
        if state["done"]:  # the result overlay would cover the canvas; parity is about the canvas itself
            state = _load(page, seed0 + i, tier, trace[: len(trace) // 3])
        sim = _sim(state)
        rects = sim.draw_rects()
        assert np.array_equal(rects[0], np.asarray(page.evaluate("hakisa.drawRects()"))), "JS and Python draw lists differ"
        shot = page.screenshot_canvas()  # (360, 640, 3) RGB, what Chromium composited
        ref_rgb = render_bgra(rects[0], pal, 1)[..., 2::-1]
        full = np.abs(shot.astype(int) - ref_rgb.astype(int))
        obs_browser = preprocess(rgb_to_bgra(shot), spec)
        obs_python = fast.render(rects)[0]
        assert np.array_equal(obs_python, preprocess(render_bgra(rects[0], pal, 1), spec))
        maes.append(np.abs(obs_browser.astype(int) - obs_python.astype(int)).mean())
        full_maes.append(full.mean())
        full_max.append(int(full.max()))
        kinds.add((state["k_act"], state["b_act"]))
        seen.add(tuple(sorted(state.items())))
    return np.array(maes), np.array(full_maes), np.array(full_max), kinds, seen


def test_pixel_parity_20_states(page):
    maes, full_maes, full_max, kinds, seen = _parity(page, 24, seed0=100)
    print(f"\npixel parity over {len(maes)} states: model-res MAE mean {maes.mean():.4f} max {maes.max():.4f} (/255); "
          f"full-res MAE mean {full_maes.mean():.4f} max {full_maes.max():.4f}; full-res max abs px diff {full_max.max()}")
    assert len(seen) == len(maes), "the states must be distinct"
    assert len(kinds) >= 6, f"too few distinct (knight, boss) action pairs: {kinds}"
    assert maes.max() <= 2.0, maes


def test_canvas_region_is_what_the_screen_shows(page):
    """The live tools grab `canvas_region` from the X screen with mss: it must be exactly the canvas."""
    import mss

    state = _load(page, 7, "normal", [RIGHT] * 60 + [ATTACK] * 8)
    rects = _sim(state).draw_rects()
    time.sleep(0.15)  # let the compositor put the paused frame on the X screen
    left, top, w, h = page.canvas_region
    with mss.MSS(display=page.display) as m:
        grab = np.array(m.grab({"left": left, "top": top, "width": w, "height": h}))
    ref = render_bgra(rects[0], palette_bgra(DuelSim(1).rules), 1)
    diff = np.abs(grab[..., :3].astype(int) - ref[..., :3].astype(int))
    print(f"\nmss grab of canvas_region {page.canvas_region}: full-res MAE {diff.mean():.4f}, max {diff.max()}")
    assert (w, h) == (640, 360) and page.window_title and "Hakisa Duel" in page.window_title
    assert diff.mean() <= 2.0


def _xdo(page, *args):
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": page.display}, check=True, timeout=10)


def _hold_then_run(page, keys: str, mask: int, until_js: str | None = None, hold_s: float = 0.0):
    """Press `keys` (real X key events) while the loop is paused, wait until the page sees them, resume. Release
    after hold_s, or, with until_js, as soon as it holds (pausing around the release, so X latency can't matter)."""
    _xdo(page, "keydown", *keys.split())
    try:
        page.page.wait_for_function(f"(hakisa.keys() & {mask}) === {mask}", timeout=5000)
        page.evaluate("hakisa.resume()")
        if until_js:
            page.page.wait_for_function(until_js, polling="raf", timeout=5000)
            page.evaluate("hakisa.pause()")
        time.sleep(hold_s)
    finally:
        _xdo(page, "keyup", *keys.split())
    page.page.wait_for_function(f"(hakisa.keys() & {mask}) === 0", timeout=5000)
    page.evaluate("hakisa.resume()")


def _wait_ticks(page, n: int):
    t0 = page.evaluate("hakisa.ticks()")
    page.page.wait_for_function(f"hakisa.ticks() >= {t0 + n}", timeout=10000)


def test_real_keys_move_the_knight(page):
    page.evaluate("hakisa.pause()")
    page.evaluate("hakisa.loadSeed(1, 'easy')")
    page.click_to_focus()  # a real X click on the canvas: keyboard focus to the page
    page.evaluate("hakisa.pause()")
    x0 = page.evaluate("hakisa.state().kx")
    _hold_then_run(page, "Right", RIGHT, hold_s=0.4)
    page.evaluate("hakisa.pause()")
    x1 = page.evaluate("hakisa.state().kx")
    _hold_then_run(page, "Left", LEFT, hold_s=0.25)
    page.evaluate("hakisa.pause()")
    x2 = page.evaluate("hakisa.state().kx")
    assert x1 > x0 + 10 * RULES["knight"]["walk_speed"], (x0, x1)  # at least 10 ticks of walking
    assert x2 < x1, (x1, x2)


def _find_setup(tier: str, want) -> tuple[int, list[int]]:
    """Search seeds/traces in the Python sim (same rules as the page) for a state satisfying want(sim)."""
    for seed in range(200):
        sim = DuelSim(1, tier=tier, seed=seed)
        trace = []
        for _ in range(400):
            if want(sim):
                return seed, trace
            k = RIGHT if abs(int(sim.state["kx"][0] - sim.state["bx"][0])) > 48 * FP else 0
            sim.step(k)
            trace.append(k)
    raise AssertionError("no setup found")


def test_attack_that_lands_lowers_boss_hp(page):
    # knight within reach of the boss, boss idle (not about to guard), knight free with stamina
    seed, trace = _find_setup("easy", lambda s: abs(int(s.state["kx"][0] - s.state["bx"][0])) <= 56 * FP
                              and s.state["b_act"][0] < B_WINDUP and s.state["b_act"][0] != 3 and s.state["k_act"][0] == 0)
    st = _load(page, seed, "easy", trace)
    page.click_to_focus()
    page.evaluate("hakisa.pause()")
    hp0 = st["b_hp"]
    _hold_then_run(page, "j", ATTACK, until_js="hakisa.state().k_act === 1")  # one swing
    _wait_ticks(page, RULES["knight"]["attack_windup"] + RULES["knight"]["attack_active"])
    page.evaluate("hakisa.pause()")
    st1 = page.evaluate("hakisa.state()")
    assert st1["b_hp"] < hp0, (hp0, st1)


def _roll_setup() -> tuple[int, list[int]]:
    """A hard-tier fight where the boss's cleave is 8 ticks from landing on a knight standing in reach,
    and holding right+roll from there dodges it in the Python sim (i-frames through the blow)."""
    for seed in range(300):
        sim = DuelSim(1, tier="hard", seed=seed)
        trace, states = [], []
        for _ in range(600):
            states.append(sim.get(0))
            if sim.state["b_act"][0] == B_ACTIVE:
                break
            k = RIGHT if abs(int(sim.state["kx"][0] - sim.state["bx"][0])) > 48 * FP else 0
            sim.step(k)
            trace.append(k)
        else:
            continue
        t = len(trace) - 8
        if t < 0 or states[t]["b_act"] != B_WINDUP:
            continue
        hit, dodge = DuelSim(1, tier="hard"), DuelSim(1, tier="hard")
        hit.set(0, states[t]), dodge.set(0, states[t])
        for i in range(120):
            hit.step(0)
            if dodge.state["b_act"][0] != B_RECOVER and not dodge.done[0]:  # the browser test stops here
                dodge.step(RIGHT | ROLL if i == 0 else 0)
        if hit.state["k_hp"][0] < states[t]["k_hp"] and dodge.state["k_hp"][0] == states[t]["k_hp"]:
            return seed, trace[:t]
    raise AssertionError("no roll setup found")


def test_roll_through_the_telegraph_avoids_damage(page):
    seed, trace = _roll_setup()
    # control: the same fight without the roll gets hit (checked in the page itself, through the test hook)
    st = _load(page, seed, "hard", trace + [0] * 120)
    assert st["k_hp"] < RULES["knight"]["hp"], "setup must be a cleave that lands when not dodged"

    st0 = _load(page, seed, "hard", trace)
    assert st0["b_act"] == B_WINDUP
    page.click_to_focus()
    page.evaluate("hakisa.pause()")
    # roll INTO the boss, through the blow: the i-frames; keys are released while the roll runs
    _hold_then_run(page, "Right space", RIGHT | ROLL, until_js=f"hakisa.state().k_act === {K_ROLL}")
    page.page.wait_for_function(f"hakisa.state().b_act === {B_RECOVER} || hakisa.state().done", timeout=10000)
    page.evaluate("hakisa.pause()")
    st1 = page.evaluate("hakisa.state()")
    assert st1["k_hp"] == st0["k_hp"], (st0, st1)
    assert st1["kx"] > st0["kx"], "the knight rolled towards the boss"


def test_tier_selector_changes_the_boss(page):
    page.evaluate("hakisa.pause()")
    page.page.select_option("#tier", "hard")
    assert page.evaluate("hakisa.tier") == "hard" and page.evaluate("hakisa.state().tier") == 2
    seed = page.evaluate("hakisa.seed()")
    hard = page.evaluate("(k) => hakisa.loadTrace(k)", [0] * 900)
    page.page.select_option("#tier", "easy")
    assert page.evaluate("hakisa.tier") == "easy" and page.evaluate("hakisa.seed()") == seed
    easy = page.evaluate("(k) => hakisa.loadTrace(k)", [0] * 900)
    # same fight seed and inputs, different tier -> a different boss (its decisions, hence where it stands and acts)
    assert (easy["bx"], easy["b_act"], easy["b_t"], easy["k_hp"], easy["rng"]) != (hard["bx"], hard["b_act"], hard["b_t"], hard["k_hp"], hard["rng"])
    # and the page's boss is the Python sim's boss at that tier
    for tier, st in (("easy", easy), ("hard", hard)):
        sim = DuelSim(1, tier=tier, seed=seed)
        for _ in range(900):
            sim.step(0)
        assert sim.get(0) == {k: st[k] for k in sim.get(0)}


def _finished_fight(tier: str = "easy") -> tuple[int, list[int], int]:
    """A whole fight played by the scripted expert in the Python sim: (seed, key trace, winner)."""
    from hakisa.envs.duel.expert import expert_keys

    sim = DuelSim(1, tier=tier, seed=3)
    trace = []
    while not sim.done[0]:
        k = int(expert_keys(sim.state)[0])
        for _ in range(4):
            sim.step(k)
            trace.append(k)
    return 3, trace, int(sim.winner[0])


def test_result_overlay_is_big_and_tells_who_won(page):
    """The result band (DOM over the canvas) is what a pixel detector sees on the screen: gold = victory, crimson = defeat."""
    import mss

    seed, trace, winner = _finished_fight()
    st = _load(page, seed, "easy", trace)
    assert st["done"] == 1 and st["winner"] == winner
    assert page.evaluate("hakisa.mode()") == "over"
    time.sleep(0.15)
    left, top, w, h = page.canvas_region
    with mss.MSS(display=page.display) as m:
        band = np.array(m.grab({"left": left, "top": top + 132, "width": w, "height": 96}))[..., 2::-1]  # RGB
    want = (255, 215, 0) if winner == 1 else (176, 0, 0)
    share = (np.abs(band.astype(int) - want).sum(-1) <= 6).mean()
    assert share > 0.6, f"band colour share {share:.2f} (winner {winner})"
    # Enter starts a rematch (a real X key); the overlay goes away
    page.click_to_focus()
    _xdo(page, "key", "Return")
    page.page.wait_for_function("hakisa.mode() === 'play' && hakisa.state().tick < 30", timeout=5000)
    page.evaluate("hakisa.pause()")


def test_duel_page_kills_everything_it_started():
    from hakisa.envs.duel.web import DuelPage

    with DuelPage(tier="hard", seed=9) as p:
        assert p.evaluate("hakisa.tier") == "hard" and p.evaluate("hakisa.seed()") == 9
        assert p.evaluate("hakisa.mode()") == "start"  # the start screen waits for a click
        pgid, xvfb = p._proc.pid, p._xvfb.proc if p._xvfb else None
        port = p._server.server_address[1]
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert xvfb is None or xvfb.poll() is not None
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_cli_duel_open_runs_and_exits():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # headless: it must make its own Xvfb
    out = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "hakisa"), "duel", "open", "--port", "0",
                          "--seconds", "3", "--tier", "hard"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "tier=hard" in out.stdout and "Xvfb" in out.stdout


@pytest.mark.slow
def test_pixel_parity_many_states(page):
    maes, full_maes, full_max, _, _ = _parity(page, 120, seed0=5000)
    print(f"\npixel parity over {len(maes)} states: model-res MAE max {maes.max():.4f}; full-res MAE max {full_maes.max():.4f}")
    assert maes.max() <= 2.0
