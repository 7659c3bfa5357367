"""Readers, delta rewards and the learned reward model, on duel renders and real page screenshots."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from hakisa.game import Game
from hakisa.games.duel.render import palette_bgra, render_bgra
from hakisa.games.duel.sim import COMMAND_KEYS, DuelSim, load_rules
from hakisa.rewards import (
    BarReader,
    ChangeDetector,
    ColorFraction,
    DeltaReward,
    DigitReader,
    GameJudge,
    InfoDeltaReward,
)

RULES = load_rules()
PAL = palette_bgra(RULES)


def snap_frac(value: int, vmax: int, width: int = 200) -> float:
    """What the HUD bar shows, in game units: draw_rects snaps the fill to the 4-px grid."""
    return (width * max(value, 0) // vmax) // 4 * 4 / width * vmax


def played_states(n: int = 32, ticks: int = 900, seed: int = 0):
    """Fights driven by random commands (held for 8 ticks), so HP/stamina take many values."""
    sim = DuelSim(n, tier="easy", seed=seed)
    rng = np.random.default_rng(seed)
    snaps = []
    for t in range(ticks):
        if t % 8 == 0:
            keys = COMMAND_KEYS[rng.integers(0, len(COMMAND_KEYS), n)]
        sim.step(keys)
        if t % 150 == 149:
            snaps.append(({f: v.copy() for f, v in sim.state.items()}, sim.draw_rects()))
    return snaps


@pytest.fixture(scope="module")
def frames():
    out = []
    for state, rects in played_states():
        for i in range(0, len(rects), 4):
            out.append(({f: int(v[i]) for f, v in state.items()}, render_bgra(rects[i], PAL)))
    return out


def test_bars_read_exact_values_on_renders(frames):
    judge = Game.load("duel").judge()
    # the shipped config takes its HUD boxes, colours and HP totals from rules.json
    names = RULES["palette_names"]
    assert judge.readers["knight_hp"].color == tuple(RULES["palette"][names.index("hp_knight")])
    assert judge.readers["boss_hp"].region == tuple(RULES["hud"]["boss_hp"])
    assert judge.readers["boss_hp"].scale == RULES["boss"]["hp"]
    K, B = RULES["knight"], RULES["boss"]
    seen_hp = set()
    for s, img in frames:
        r = judge.read(img)
        assert r["knight_hp"] == pytest.approx(snap_frac(s["k_hp"], K["hp"]))
        assert r["boss_hp"] == pytest.approx(snap_frac(s["b_hp"], B["hp"]))
        assert r["stamina"] == pytest.approx(snap_frac(s["k_st"], K["stamina"]))
        seen_hp.add(round(r["knight_hp"], 3))
    assert judge.read(frames[0][1])["time"] <= 1.0  # an unscaled bar reads a fraction
    assert len(seen_hp) >= 4, "the random fights should have produced several HP levels"


@pytest.mark.parametrize("size", [(1000, 563), (480, 270), (1280, 720)])
def test_bars_robust_to_scaling_and_blur(frames, size):
    """A browser scales the canvas with smoothing: bars must still read within one grid step."""
    judge = Game.load("duel").judge()
    K, B = RULES["knight"], RULES["boss"]
    rng = np.random.default_rng(1)
    for s, img in frames[::3]:
        big = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        big = cv2.GaussianBlur(big, (3, 3), 0.8)
        noisy = np.clip(big.astype(np.int16) + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8)
        r = judge.read(noisy)
        tol = 4 / 200 + 2 / size[0]  # one grid step of the bar (plus a pixel of the scaled window)
        assert abs(r["knight_hp"] - snap_frac(s["k_hp"], K["hp"])) <= tol * K["hp"]
        assert abs(r["boss_hp"] - snap_frac(s["b_hp"], B["hp"])) <= tol * B["hp"]


def test_bar_reader_edge_cases():
    img = np.zeros((20, 100, 4), np.uint8)
    bar = BarReader((0, 0, 100, 20), (0, 255, 0), tol=40, min_coverage=0.5)
    assert bar.read(img) == 0.0
    img[:, :37] = (0, 255, 0, 255)  # BGRA green
    assert bar.read(img) == pytest.approx(0.37)
    img[:8, 37:50] = (0, 255, 0, 255)  # a partial-height smear (40% of rows) is not fill
    assert bar.read(img) == pytest.approx(0.37)
    img[:, 60:] = (0, 0, 255, 255)  # red elsewhere does not count
    assert bar.read(img) == pytest.approx(0.37)


def paint_band(img: np.ndarray, rgb) -> np.ndarray:
    """The page's result band as web/style.css draws it: opaque, full width, canvas y 132..228."""
    out = img.copy()
    out[132:228, :] = (*rgb[::-1], 255)
    return out


def test_done_winner_and_in_play_on_rendered_frames():
    judge = Game.load("duel").judge()
    fresh = render_bgra(DuelSim(1, seed=2).draw_rects()[0], PAL)
    judge.reset(fresh)
    reward, done, info = judge.step(fresh)
    assert (reward, done, info["in_play"], info["winner"]) == (0.0, False, True, 0)
    for rgb, winner, sign in (((255, 215, 0), 1, 1), ((176, 0, 0), 2, -1)):
        judge.reset(fresh)
        reward, done, info = judge.step(paint_band(fresh, rgb))
        assert done and info["winner"] == winner and not info["in_play"]
        assert reward == 10.0 * sign  # the end bonus, and no HP changed
    # the killing blow lands on the frame the band appears: its HP delta still counts (the HUD is visible)
    sim = DuelSim(1, seed=2)
    sim.state["b_hp"][0] = 10
    judge.reset(render_bgra(sim.draw_rects()[0], PAL))
    sim.state["b_hp"][0] = 0
    reward, done, info = judge.step(paint_band(render_bgra(sim.draw_rects()[0], PAL), (255, 215, 0)))
    assert done and info["winner"] == 1
    assert reward == pytest.approx(10.0 + 0.3 * snap_frac(10, RULES["boss"]["hp"]))
    dimmed = (fresh.astype(np.float32) * 0.28).astype(np.uint8)  # the start screen: rgba(0,0,0,.72) over it
    dimmed[..., 3] = 255
    judge.reset(fresh)
    reward, done, info = judge.step(dimmed)
    assert not info["in_play"] and not done and reward == 0.0  # a hidden HUD pays nothing


def test_screen_reward_matches_sim_reward_over_a_fight():
    """Summed over a whole fight, the pixel reward equals the sim env's reward (same coefficients)."""
    sim = DuelSim(1, tier="easy", seed=3)
    judge = Game.load("duel").judge()
    rng = np.random.default_rng(3)
    judge.reset(render_bgra(sim.draw_rects()[0], PAL))
    total_px = 0.0
    k0, b0 = int(sim.state["k_hp"][0]), int(sim.state["b_hp"][0])
    while not sim.done[0]:
        for _ in range(4):  # judge every 16 ticks: deltas telescope, so the total must not depend on the rate
            keys = COMMAND_KEYS[rng.integers(0, 8)]
            for _ in range(4):
                sim.step(keys)
        total_px += judge.step(render_bgra(sim.draw_rects()[0], PAL))[0]
    # a bar cannot show overkill (the sim lets HP go below 0), so compare with HP clipped at 0
    dealt, taken = b0 - max(0, int(sim.state["b_hp"][0])), k0 - max(0, int(sim.state["k_hp"][0]))
    # the bar only shows 4-px steps, so the pixel total is exact up to one step per bar
    step = 4 / 200 * (0.1 * RULES["knight"]["hp"] + 0.3 * RULES["boss"]["hp"])
    assert abs(total_px - (0.3 * dealt - 0.1 * taken)) <= step + 1e-6
    assert dealt > 0 or taken > 0  # something happened in the fight


def test_rewards_are_deltas_not_levels():
    r = DeltaReward({"boss_hp": -1.0, "knight_hp": 1.0}, max_abs_delta={"boss_hp": 0.5})
    r.reset({"boss_hp": 1.0, "knight_hp": 1.0})
    assert r({"boss_hp": 0.9, "knight_hp": 1.0}) == pytest.approx(0.1)
    assert r({"boss_hp": 0.9, "knight_hp": 1.0}) == 0.0  # standing still at a better level pays nothing
    assert r({"boss_hp": 0.9, "knight_hp": 0.7}) == pytest.approx(-0.3)
    assert r({"boss_hp": None, "knight_hp": 0.7}) == 0.0  # unreadable: skipped, last value kept
    assert r({"boss_hp": 0.8, "knight_hp": 0.7}) == pytest.approx(0.1)
    assert r({"boss_hp": 0.0, "knight_hp": 0.7}) == 0.0  # a 0.8 jump is a misread, not a reward
    info = InfoDeltaReward({"score": 0.01, "lives": 1.0})
    info.reset({"score": 100, "lives": 3})
    assert info({"score": 300, "lives": 3}) == pytest.approx(2.0)
    assert info({"score": 300, "lives": 3}) == 0.0
    assert info({"score": 300, "lives": 2}) == pytest.approx(-1.0)  # a life lost costs 1


def _number_crop(n: int, rng, scale: float = 0.9) -> np.ndarray:
    """A HUD-style score: light digits on a dark panel, slightly jittered in place and brightness."""
    img = np.full((28, 110, 4), (40, 30, 20, 255), np.uint8)
    fg = int(rng.integers(200, 256))
    cv2.putText(
        img, str(n), (int(rng.integers(3, 8)), 22), cv2.FONT_HERSHEY_SIMPLEX, scale, (fg, fg, fg, 255), 2, cv2.LINE_AA
    )
    return img


def test_digit_reader_learns_templates_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    train = [1234567890, 4071, 98256, 3, 58, 602]
    reader = DigitReader(fg_tol=60).fit([_number_crop(n, rng) for n in train], train)
    assert set(reader.templates) == set("0123456789")
    tests = rng.integers(0, 100000, 40)
    got = [reader.read_crop(_number_crop(int(n), rng)) for n in tests]
    assert sum(g == n for g, n in zip(got, tests)) >= 38
    reader.region = (0, 0, 110, 28)
    reader.save(tmp_path / "score")
    again = DigitReader.load(tmp_path / "score")
    frame = np.zeros((100, 200, 4), np.uint8)
    frame[:28, :110] = _number_crop(4321, rng)
    assert again.read(frame) == 4321
    assert again.read(np.zeros((100, 200, 4), np.uint8)) is None  # nothing to read
    # the same reader from a YAML game config: a score that goes up pays, by delta
    import yaml

    cfg = {
        "canvas": [200, 100],
        "readers": {"score": {"type": "digits", "templates": "score", "region": [0, 0, 110, 28]}},
        "reward": {"deltas": {"score": 0.01}},
    }
    (tmp_path / "game.yaml").write_text(yaml.safe_dump(cfg))
    judge = GameJudge.load(tmp_path / "game.yaml")
    judge.reset(frame)
    frame[:28, :110] = _number_crop(4521, rng)
    reward, done, info = judge.step(frame)
    assert info["readings"]["score"] == 4521 and reward == pytest.approx(2.0) and not done


def test_change_detector_and_color_fraction():
    a = np.zeros((50, 50, 4), np.uint8)
    det = ChangeDetector((10, 10, 20, 20), threshold=5)
    assert not det.changed(a)
    b = a.copy()
    b[0:5, 0:5] = 255  # outside the region
    assert not det.changed(b)
    b[10:30, 10:20] = 255  # half the region turns white
    assert det.changed(b)
    assert not det.changed(b)  # no further change
    assert ColorFraction((10, 10, 20, 20), (255, 255, 255), tol=10).read(b) == pytest.approx(0.5)


def test_reward_net_learns_hp_buckets_and_beats_chance(tmp_path):
    """The learned reader: knight-HP bucket (4 classes) from blurred, rescaled, noisy crops."""
    torch = pytest.importorskip("torch")
    from hakisa.rewards.model import RewardNet, RewardNetConfig
    from hakisa.rewards.readers import crop

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sim = DuelSim(1, seed=0)
    region = tuple(RULES["hud"]["knight_hp"])
    crops, labels = [], []
    for _ in range(160):
        hp = int(rng.integers(1, RULES["knight"]["hp"] + 1))
        sim.state["k_hp"][0] = hp
        img = render_bgra(sim.draw_rects()[0], PAL)[:48]  # the HUD strip (the bar is at y 16..28)
        w = int(rng.integers(500, 900))  # a browser window of another size: scaled with smoothing, noisy
        img = cv2.resize(img, (w, round(48 * w / 640)), interpolation=cv2.INTER_LINEAR)
        img = np.clip(img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
        crops.append(crop(img, region, (640, 48)))
        labels.append(min(3, 4 * (hp - 1) // RULES["knight"]["hp"]))
    net = RewardNet(
        RewardNetConfig(
            classes=["0-25", "26-50", "51-75", "76-100"],
            values=[0.125, 0.375, 0.625, 0.875],
            region=region,
            canvas=(640, 360),
            size=(48, 12),
            width=8,
        )
    )
    m = net.fit(crops, labels, val_frac=0.25, epochs=12, seed=0)
    assert m["n_val"] == 40
    print("reward_net metrics", m)
    assert m["val_acc"] >= m["val_majority"] + 0.3, m
    net.save(tmp_path / "rn", metrics=m)
    again = RewardNet.load(tmp_path / "rn")
    sim.state["k_hp"][0] = 90
    frame = render_bgra(sim.draw_rects()[0], PAL)
    assert again.read(frame) == net.read(frame)
    assert (again.predict(crops[:20]) == net.predict(crops[:20])).all()


# ---- the real page: the same readers on what Chromium puts on the screen ----------------------------
@pytest.fixture(scope="module")
def page():
    from hakisa.games.duel.web import DuelPage
    from hakisa.xserver import Xvfb

    with Xvfb(1280, 720) as disp, DuelPage(tier="normal", display=disp) as p:
        yield p


def grab_canvas(page) -> np.ndarray:
    from hakisa.capture import Capture

    with Capture(region=page.canvas_region, display=page.display) as cap:
        time.sleep(0.1)  # two page frames: the last draw is composited
        return cap.grab().copy()


def expert_trace(seed: int, tier: str = "normal", max_ticks: int = 5400):
    """Key masks per tick of the scripted expert (decides every 4 ticks) and who won, in the sim."""
    from hakisa.games.duel.expert import expert_keys

    sim = DuelSim(1, tier=tier, seed=seed)
    keys = []
    while not sim.done[0] and len(keys) < max_ticks:
        k = int(expert_keys(sim.state)[0])
        for _ in range(4):
            sim.step(k)
            keys.append(k)
    return keys, int(sim.winner[0])


@pytest.mark.browser
def test_readers_on_real_page_screenshots(page):
    judge = Game.load("duel").judge()
    K, B = RULES["knight"], RULES["boss"]
    start = judge.read(grab_canvas(page))
    if page.evaluate("hakisa.mode()") == "start":  # the dimmed start screen is not play
        assert not judge.in_play(start) and not judge.is_done(start)
    page.evaluate("hakisa.pause()")  # freeze the live loop: the pixels are exactly the trace's end
    try:
        seed, keys = next((s, k) for s in range(10) for k, w in [expert_trace(s)] if w == 1)
        page.evaluate(f"hakisa.loadSeed({seed}, 'normal')")
        s = page.evaluate("(k) => hakisa.loadTrace(k)", keys[: len(keys) // 2])  # mid-fight
        r = judge.read(grab_canvas(page))
        assert judge.in_play(r) and not judge.is_done(r)
        assert r["knight_hp"] == pytest.approx(snap_frac(s["k_hp"], K["hp"]))
        assert r["boss_hp"] == pytest.approx(snap_frac(s["b_hp"], B["hp"]))
        assert r["stamina"] == pytest.approx(snap_frac(s["k_st"], K["stamina"]))
        assert s["b_hp"] < B["hp"], "the expert should have landed hits by mid-fight"
        s = page.evaluate("(k) => hakisa.loadTrace(k)", keys[len(keys) // 2 :])  # to the VICTORY band
        assert s["winner"] == 1
        r = judge.read(grab_canvas(page))
        assert judge.is_done(r) and judge.winner(r) == 1 and not judge.in_play(r)
        page.evaluate("hakisa.loadSeed(7, 'normal')")
        page.evaluate("(k) => hakisa.loadTrace(k)", [0] * RULES["time_limit"])  # idle knight: DEFEAT or TIME UP
        r = judge.read(grab_canvas(page))
        assert judge.is_done(r) and judge.winner(r) == 2 and not judge.in_play(r)
    finally:
        page.evaluate("hakisa.resume()")


def test_start_frames_skip_a_counter_that_still_shows_the_last_game():
    """xjump's floor counter shows the last game's floor on the first frame of the next (measured: 3, then 1):
    a start there pays -2 on the next step. `start_frames: 2` starts the game one look later, on the counter
    that is reset."""
    def frame(score_gray: int, playing: bool = True) -> np.ndarray:
        f = np.zeros((20, 40, 4), np.uint8)
        f[:, :20, :3] = score_gray        # the "counter"
        f[:, 20:, :3] = 200 if playing else 0
        return f

    rules = {"readers": {"score": {"type": "mean_gray", "region": [0, 0, 20, 20]},
                         "arena": {"type": "mean_gray", "region": [20, 0, 20, 20]}},
             "in_play": {"reading": "arena", "op": ">", "value": 100},
             "reward": {"deltas": {"score": 1.0}}}
    looks = [frame(0, playing=False), frame(30), frame(10), frame(10), frame(20)]  # over, stale, fresh, ...

    def rewards(start_frames: int) -> tuple[int, list[float]]:
        judge = GameJudge(dict(rules, start_frames=start_frames))
        for i, f in enumerate(looks):
            if judge.starts(judge.read(f)):
                judge.reset(f)
                return i, [round(judge.step(g)[0]) for g in looks[i + 1:]]
        raise AssertionError("never started")

    assert rewards(1) == (1, [-20, 0, 10])  # the stale counter's drop is paid as a loss
    assert rewards(2) == (2, [0, 10])       # the game starts on the reset counter: only the real point pays
    judge = GameJudge(dict(rules, start_frames=2))
    judge.starts(judge.read(looks[1]))
    assert judge.starting()  # one look in play of two: a waiter does not give up on it yet
    judge.starts(judge.read(looks[0]))
    assert not judge.starting()  # out of play again: the run starts over
