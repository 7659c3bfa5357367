"""Duel rules: bit-exact parity of sim.py (numpy) with web/core.js (Node), and behaviour checks.

Parity: seeded fights with random held-key traces run through both cores; EVERY state field and EVERY
draw rect is compared on EVERY tick. On a mismatch the message names the first diverging fight, tick
and field and shows both values.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hakisa.games.duel.expert import expert_keys
from hakisa.games.duel.sim import (
    B_GUARD,
    B_WINDUP,
    COMMAND_KEYS,
    K_STAGGER,
    KEY_ATTACK,
    KEY_BLOCK,
    KEY_LEFT,
    KEY_RIGHT,
    KEY_ROLL,
    N_RECTS,
    STATE_FIELDS,
    DuelSim,
    load_rules,
)

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tests" / "duel_parity.js"
node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def random_traces(rng: np.random.Generator, n: int, ticks: int) -> np.ndarray:
    """uint8 [n, ticks]: a random key bitmask (any of the 32 chords) held for 1..30 ticks, repeatedly."""
    out = np.zeros((n, ticks), dtype=np.uint8)
    for i in range(n):
        t = 0
        while t < ticks:
            hold = int(rng.integers(1, 31))
            out[i, t:t + hold] = rng.integers(0, 32)
            t += hold
    return out


def run_python(rules, tiers, seeds, keys):
    f, ticks = keys.shape
    sim = DuelSim(n=f, tier=list(tiers), seed=0, rules=rules)
    sim.reset(seeds=np.asarray(seeds))
    states = np.zeros((f, ticks + 1, len(STATE_FIELDS)), dtype=np.int64)
    rects = np.zeros((f, ticks + 1, N_RECTS, 5), dtype=np.int16)
    for t in range(ticks + 1):
        if t:
            sim.step(keys[:, t - 1])
        states[:, t] = np.stack([sim.state[k].astype(np.int64) for k in STATE_FIELDS], axis=1)
        rects[:, t] = sim.draw_rects()
    return states, rects


def run_node(tmp: Path, rules, tiers, seeds, keys):
    f, ticks = keys.shape
    (tmp / "job.json").write_text(json.dumps({"rules": rules, "tiers": [int(t) for t in tiers],
                                              "seeds": [int(s) for s in seeds], "ticks": ticks}))
    keys.astype(np.uint8).tofile(tmp / "keys.bin")
    subprocess.run(["node", str(HARNESS), str(tmp)], check=True, timeout=300)
    states = np.fromfile(tmp / "states.bin", dtype=np.int32).reshape(f, ticks + 1, len(STATE_FIELDS))
    rects = np.fromfile(tmp / "rects.bin", dtype=np.int16).reshape(f, ticks + 1, N_RECTS, 5)
    states = states.astype(np.int64)
    states[..., STATE_FIELDS.index("rng")] &= 0xFFFFFFFF  # the int32 bit pattern back to its uint32 value
    return states, rects


def first_mismatch(py, js, names) -> str | None:
    bad = np.argwhere(py != js)
    if bad.size == 0:
        return None
    # the earliest tick over all fights, then the lowest fight and field at that tick
    order = np.lexsort((bad[:, 2], bad[:, 0], bad[:, 1]))
    f, t, k = bad[order[0]][:3]
    first = tuple(bad[order[0]])
    return f"fight {f}, tick {t}, {names(k, bad[order[0]])}: python={py[first]} js={js[first]}"


def check_parity(tmp: Path, rules, tiers, seeds, keys):
    py_s, py_r = run_python(rules, tiers, seeds, keys)
    js_s, js_r = run_node(tmp, rules, tiers, seeds, keys)
    msg = first_mismatch(py_s, js_s, lambda k, idx: f"field {STATE_FIELDS[k]}")
    assert msg is None, "state mismatch at " + msg
    msg = first_mismatch(py_r, js_r, lambda k, idx: f"rect slot {k} component {'xywhc'[idx[3]]}")
    assert msg is None, "draw-rect mismatch at " + msg
    return py_s


def parity_batches(tmp_path: Path, n_fights: int, ticks: int, seed: int, batch: int = 250, brain=None):
    """Half the fights use the shipped rules with the time limit cut to `ticks`; the other half a weak boss
    (low HP) so the knight wins some too. Batches of `batch` fights keep memory small. Returns the winners.
    brain: a learned boss brain both cores play (brain.py); None: the scripted boss."""
    from hakisa.games.duel.brain import with_brain

    rules = with_brain(load_rules(), brain)
    rng = np.random.default_rng(seed)
    winners = []
    for variant in range(2):
        r = copy.deepcopy(rules)
        r["time_limit"] = ticks
        if variant == 1:
            r["boss"]["hp"] = 10
        for _ in range(n_fights // 2 // batch):
            tiers = rng.integers(0, 3, size=batch)
            seeds = rng.integers(0, 2**32, size=batch, dtype=np.uint64)
            keys = random_traces(rng, batch, ticks)
            states = check_parity(tmp_path, r, tiers, seeds, keys)
            winners.append(states[:, -1, STATE_FIELDS.index("winner")])
    return np.concatenate(winners)


@node
def test_rules_parity_1000_fights(tmp_path):
    winners = parity_batches(tmp_path, n_fights=1000, ticks=600, seed=1)
    # the comparison is only meaningful if fights really end both ways (not just by the time limit)
    assert (winners == 1).sum() >= 20, np.bincount(winners)
    assert (winners == 2).sum() >= 20, np.bincount(winners)


@node
def test_core_js_runs_as_a_plain_browser_script():
    """The page loads core.js with a <script> tag: no `module`, no `require`; it must attach globalThis.DuelCore."""
    js = """
      const vm = require("vm"), fs = require("fs");
      const ctx = {}; vm.createContext(ctx);
      vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), ctx);
      const R = JSON.parse(fs.readFileSync(process.argv[2], "utf8")), D = ctx.DuelCore;
      const s = D.newState(R, "normal", 3); D.step(R, s, 2);
      console.log(JSON.stringify({fields: Object.keys(s), rects: D.drawRects(R, s).length, kx: s.kx}));
    """
    core = ROOT / "hakisa" / "games" / "duel" / "web" / "core.js"
    rules = ROOT / "hakisa" / "games" / "duel" / "rules.json"
    out = json.loads(
        subprocess.run(
            ["node", "-e", js, str(core), str(rules)], check=True, capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert tuple(out["fields"]) == STATE_FIELDS and out["rects"] == N_RECTS
    sim = DuelSim(n=1, tier="normal", seed=3)
    sim.step(KEY_RIGHT)
    assert out["kx"] == sim.get(0)["kx"]


@node
@pytest.mark.slow
def test_rules_parity_long_fights(tmp_path):
    winners = parity_batches(tmp_path, n_fights=2000, ticks=3000, seed=2)
    assert (winners == 0).sum() < len(winners)


# ---------------------------------------------------------------------------------------------------
# behaviour
# ---------------------------------------------------------------------------------------------------
RULES = load_rules()
FP, KN, BO = RULES["fp"], RULES["knight"], RULES["boss"]


def quiet_boss(sim: DuelSim, i: int = 0, **fields) -> None:
    """Park the boss: no decision for a long while, on cooldown, facing the knight; then apply `fields`."""
    d = sim.get(i)
    d.update(b_act=0, b_t=0, b_dec=10_000, b_cd=10_000)
    d.update(fields)
    sim.set(i, d)


def run(sim: DuelSim, keys: int, ticks: int) -> None:
    for _ in range(ticks):
        sim.step(np.full(sim.n, keys, dtype=np.uint8))


def test_moving_keys_move_the_knight():
    sim = DuelSim(n=1, tier="hard", seed=0)
    x0 = sim.get(0)["kx"]
    run(sim, KEY_LEFT, 10)
    assert sim.get(0)["kx"] == x0 - 10 * KN["walk_speed"]
    run(sim, KEY_RIGHT, 20)
    assert sim.get(0)["kx"] == x0 + 10 * KN["walk_speed"]
    run(sim, KEY_LEFT | KEY_RIGHT, 5)  # both cancel
    assert sim.get(0)["kx"] == x0 + 10 * KN["walk_speed"]


def test_walking_cannot_pass_the_boss_but_a_roll_can():
    sim = DuelSim(n=1, tier="hard", seed=0)
    quiet_boss(sim, kx=300 * FP, bx=400 * FP)
    run(sim, KEY_RIGHT, 120)
    s = sim.get(0)
    assert s["kx"] < s["bx"] and s["bx"] - s["kx"] < (RULES["arena"]["min_sep"] * FP) + KN["walk_speed"]
    run(sim, KEY_RIGHT | KEY_ROLL, 1)
    run(sim, 0, KN["roll_len"] + 2)
    s = sim.get(0)
    assert s["kx"] > s["bx"], "a roll carries the knight through the boss"


def _attack_once(b_act: int) -> int:
    sim = DuelSim(n=1, tier="hard", seed=0)
    quiet_boss(sim, kx=300 * FP, bx=350 * FP, b_act=b_act)
    hp0 = sim.get(0)["b_hp"]
    run(sim, KEY_ATTACK, 1)
    run(sim, 0, KN["attack_windup"] + KN["attack_active"] + 2)
    return hp0 - sim.get(0)["b_hp"]


def test_attack_in_range_lowers_boss_hp_and_guard_mitigates():
    assert _attack_once(0) == KN["attack_damage"]
    assert _attack_once(B_GUARD) == KN["attack_damage"] * BO["guard_pct"] // 100 < KN["attack_damage"]
    # out of reach: nothing
    sim = DuelSim(n=1, tier="hard", seed=0)
    quiet_boss(sim, kx=200 * FP, bx=350 * FP)
    run(sim, KEY_ATTACK, 30)
    assert sim.get(0)["b_hp"] == BO["hp"]


def _cleave_at(until_strike: int, keys_now: int, hold: int = 1, knight_gap_px: int = 60) -> dict:
    """Boss mid-wind-up (already past the delay reveal, not delayed), `until_strike` ticks from its active
    frames, knight `knight_gap_px` in front. Press keys_now for `hold` ticks, then nothing until it is over."""
    sim = DuelSim(n=1, tier="hard", seed=0)
    w = BO["cleave_windup"]
    bx = 400 * FP
    quiet_boss(
        sim,
        kx=bx - knight_gap_px * FP,
        bx=bx,
        b_act=B_WINDUP,
        b_t=w - until_strike,
        b_len=w,
        b_face=-1,
        b_cd=0,
        b_combo=BO["combo_max_low"],
    )  # the last swing of its combo: no follow-up
    run(sim, keys_now, hold)
    run(sim, 0, until_strike + BO["cleave_active"] + BO["cleave_recover"] + 5)
    return sim.get(0)


LAG, PERIOD = 6, 4  # the real page's action->pixel lag (~75-95 ms) in ticks; a learned agent decides every 4


def test_roll_timed_through_the_active_frames_avoids_damage():
    assert _cleave_at(5, 0)["k_hp"] == KN["hp"] - BO["cleave_damage"], "standing still gets hit"
    # a roll pressed u ticks before the strike dodges for u in [lo, hi] (keys act from the next tick)
    lo = KN["roll_iframe_start"] + 1
    hi = KN["roll_iframe_end"] - BO["cleave_active"] + 1
    assert lo <= hi <= BO["cleave_reveal"]
    for u in range(lo, hi + 1):
        s = _cleave_at(u, KEY_ROLL | KEY_RIGHT)  # through the boss
        assert s["k_hp"] == KN["hp"], f"roll pressed {u} ticks before the strike should dodge"
        assert s["kx"] > s["bx"], "and end behind it"
    # just outside the window: the i-frames are over before the blade is (too early) or not up yet (too late)
    assert _cleave_at(hi + 1, KEY_ROLL | KEY_RIGHT)["k_hp"] < KN["hp"]
    assert _cleave_at(lo - 1, KEY_ROLL | KEY_RIGHT)["k_hp"] < KN["hp"]
    assert _cleave_at(1, KEY_ROLL | KEY_RIGHT)["k_hp"] < KN["hp"]
    # the lag budget the retune is for: an agent deciding every PERIOD ticks sees the reveal up to PERIOD-1
    # ticks late, and its roll lands LAG ticks after it decides. Every such landing must be in the window,
    # and the window must be wider than one decision step so a lag-aware agent can always hit it.
    for phase in range(PERIOD):
        assert lo <= BO["cleave_reveal"] - phase - LAG <= hi, phase
    assert hi - lo + 1 > PERIOD


def _roll_at_reveal(tier: str, seed: int, rolling: bool) -> int:
    """Boss one tick before its hold decision, knight rolling (or idle). Returns the wind-up length it chose."""
    sim = DuelSim(n=1, tier=tier, seed=seed)
    w = BO["cleave_windup"]
    quiet_boss(
        sim,
        kx=200 * FP,
        bx=400 * FP,
        b_act=B_WINDUP,
        b_t=w - BO["cleave_reveal"] - 1,
        b_len=w,
        b_face=-1,
        b_cd=0,
        b_combo=BO["combo_max_low"],
    )
    run(sim, KEY_ROLL | KEY_LEFT if rolling else 0, 2)
    return sim.get(0)["b_len"]


def test_boss_holds_the_swing_against_a_knight_committed_at_the_reveal():
    w, held = BO["cleave_windup"], BO["cleave_windup"] + BO["delay_ticks"]
    # the near-noiseless boss reads the knight: rolling at the reveal -> held, idle -> on time
    assert sum(_roll_at_reveal("hard", s, True) == held for s in range(20)) >= 17
    assert sum(_roll_at_reveal("hard", s, False) == w for s in range(20)) >= 17
    # the noisy easy boss sometimes flips the coin the other way
    easy = [_roll_at_reveal("easy", s, True) == held for s in range(40)]
    assert 0 < sum(easy) < 40
    # rolled before the reveal: the boss holds, re-aims and hits after the i-frames
    s = _cleave_at(BO["cleave_reveal"] + 2, KEY_ROLL | KEY_RIGHT)
    assert s["k_hp"] == KN["hp"] - BO["cleave_damage"]
    # and the hold is shown on screen from the reveal on, early enough for a lagged agent to react
    assert BO["delay_ticks"] + BO["cleave_reveal"] - LAG - PERIOD >= KN["roll_iframe_start"] + 1


def test_boss_chains_a_follow_up_swing_when_the_knight_stays_close():
    follows = {}
    for gap in (60, BO["combo_range"] + 60):
        n = 0
        for seed in range(20):
            sim = DuelSim(n=1, tier="hard", seed=seed)
            w = BO["cleave_windup"]
            quiet_boss(sim, kx=(400 - gap) * FP, bx=400 * FP, b_act=B_WINDUP, b_t=w - 2, b_len=w, b_face=-1, b_cd=0)
            run(sim, 0, 2 + BO["cleave_active"] + 1)
            n += sim.get(0)["b_act"] == B_WINDUP and sim.get(0)["b_combo"] == 1
        follows[gap] = n
    assert follows[60] >= 17 and follows[BO["combo_range"] + 60] <= 3, follows


def test_blocking_reduces_damage_and_costs_stamina():
    s = _cleave_at(10, KEY_BLOCK, hold=10 + BO["cleave_active"])
    assert s["k_hp"] == KN["hp"] - BO["cleave_damage"] * KN["block_pct"] // 100
    assert KN["hp"] - s["k_hp"] < BO["cleave_damage"]
    # a block raised too late (inside its start-up) does nothing
    late = _cleave_at(1, KEY_BLOCK, hold=1 + BO["cleave_active"])
    assert late["k_hp"] == KN["hp"] - BO["cleave_damage"]


def test_block_with_no_stamina_breaks():
    sim = DuelSim(n=1, tier="hard", seed=0)
    w = BO["cleave_windup"]
    quiet_boss(
        sim,
        kx=340 * FP,
        bx=400 * FP,
        b_act=B_WINDUP,
        b_t=w - 10,
        b_len=w,
        b_face=-1,
        b_cd=0,
        k_st=KN["block_stamina"] - 1,
        k_regen=10_000,
    )
    run(sim, KEY_BLOCK, 12)
    s = sim.get(0)
    assert s["k_act"] == K_STAGGER and s["k_st"] == 0 and s["k_len"] == KN["guard_break_stagger"]


def test_tiers_change_boss_behaviour():
    """With an idle knight far away the policy never guards; every guard is decision noise."""
    n, ticks = 128, 900
    frac = {}
    for tier in ("easy", "normal", "hard"):
        sim = DuelSim(n=n, tier=tier, seed=3)
        guard = free = 0
        for _ in range(ticks):
            sim.step(np.zeros(n, np.uint8))
            guard += int((sim.state["b_act"] == B_GUARD).sum())
            free += int((sim.state["b_act"] < B_WINDUP).sum())
        # per FREE tick: a less noisy boss also spends more of its time in (chained) cleaves
        frac[tier] = guard / free
    assert frac["easy"] > frac["normal"] > frac["hard"], frac
    noise = RULES["tiers"]
    # a guard decision lasts one decision interval; 1 in 4 or 5 random moves is a guard
    assert frac["easy"] / frac["normal"] == pytest.approx(noise["easy"] / noise["normal"], rel=0.35), frac


def test_same_seed_same_trajectory_and_seeds_matter():
    rng = np.random.default_rng(0)
    keys = random_traces(rng, 8, 400)
    a, b, c = (DuelSim(n=8, tier="easy", seed=s) for s in (5, 5, 6))
    for t in range(400):
        for sim in (a, b, c):
            sim.step(keys[:, t])
        for f in STATE_FIELDS:
            assert np.array_equal(a.state[f], b.state[f]), (t, f)
    assert any(not np.array_equal(a.state[f], c.state[f]) for f in STATE_FIELDS)


def test_reset_mask_and_finished_fights_stay_frozen():
    sim = DuelSim(n=4, tier="normal", seed=0)
    quiet_boss(sim, 1, b_hp=1, kx=300 * FP, bx=340 * FP)
    run(sim, KEY_ATTACK, 20)
    assert sim.done[1] and sim.winner[1] == 1 and not sim.done[0]
    frozen = sim.get(1)
    run(sim, KEY_LEFT, 10)
    assert sim.get(1) == frozen
    before0 = sim.get(0)
    sim.reset(mask=np.array([False, True, False, False]))
    assert sim.get(1)["done"] == 0 and sim.get(1)["b_hp"] == BO["hp"] and sim.get(1)["tick"] == 0
    assert sim.get(0) == before0


def test_time_limit_is_a_loss():
    sim = DuelSim(n=1, tier="hard", seed=0)
    quiet_boss(sim, tick=RULES["time_limit"] - 1)
    run(sim, 0, 1)
    assert sim.done[0] and sim.winner[0] == 2


def test_draw_rects_grid_canvas_and_telegraph():
    sim = DuelSim(n=64, tier="easy", seed=1)
    rng = np.random.default_rng(1)
    cw, ch = RULES["canvas"]["width"], RULES["canvas"]["height"]
    saw_tele = saw_hold = False
    for t in range(1500):
        sim.step(COMMAND_KEYS[rng.integers(0, 8, 64)])
        if t % 5:
            continue
        r = sim.draw_rects()
        assert r.shape == (64, N_RECTS, 5) and r.dtype == np.int32
        assert (r[..., :4] % 4 == 0).all()
        assert (r[..., 0] + r[..., 2] <= cw).all() and (r[..., 1] + r[..., 3] <= ch).all() and (r >= 0).all()
        winding = sim.state["b_act"] == B_WINDUP
        tele = r[:, 2]
        assert (tele[~winding, 2] == 0).all()
        saw_tele |= bool((tele[winding, 4] == RULES["palette_names"].index("telegraph")).any())
        saw_hold |= bool((tele[winding, 4] == RULES["palette_names"].index("telegraph_hold")).any())
    assert saw_tele and saw_hold


def test_palette_grays_are_separated_where_it_matters():
    pal = np.array(RULES["palette"], dtype=float)
    gray = dict(zip(RULES["palette_names"], pal @ [0.299, 0.587, 0.114]))
    # the states a player must read from the boss body and the knight body, and the two telegraph bars
    for group in (
        ("boss", "boss_windup", "boss_recover"),
        ("knight", "knight_iframe", "knight_stagger"),
        ("telegraph", "telegraph_hold"),
        ("bg", "floor", "boss", "knight"),
    ):
        g = sorted(gray[k] for k in group)
        assert min(np.diff(g)) >= 20, (group, g)


def test_expert_beats_easy_and_random_does_not():
    n = 64
    results = {}
    for player in ("expert", "random"):
        sim = DuelSim(n=n, tier="easy", seed=11)
        rng = np.random.default_rng(0)
        while not sim.done.all():
            keys = expert_keys(sim.state) if player == "expert" else COMMAND_KEYS[rng.integers(0, 8, n)]
            for _ in range(4):
                sim.step(keys)
        results[player] = float((sim.winner == 1).mean())
    assert results["expert"] >= 0.75 and results["random"] <= 0.05, results


def test_expert_survives_the_real_page_input_lag():
    """The retune's point: keys that land LAG ticks late (as on the real page) still beat the normal boss.
    The expert decides every PERIOD ticks from the current state; a FIFO delays its keys by LAG ticks."""
    n = 64
    sim = DuelSim(n=n, tier="normal", seed=21)
    fifo = [np.zeros(n, np.uint8)] * LAG
    while not sim.done.all():
        keys = expert_keys(sim.state, period=PERIOD)
        for _ in range(PERIOD):
            fifo.append(keys)
            sim.step(fifo.pop(0))
    assert float((sim.winner == 1).mean()) >= 0.65, (sim.winner == 1).mean()


def test_roll_margin_moves_the_roll_into_the_window_and_wins_more():
    """roll_margin=m rolls m ticks after the reference's first workable tick. Deciding every tick, the
    reference rolls with 13 ticks to the blow and (measured, 200 fights) wins ~86 % on normal, ~14 % on hard;
    7 ticks in it wins ~100 % / ~98 % (benchmarks/teacher_duel.py's teacher uses it)."""
    from hakisa.games.duel.sim import B_WINDUP, K_ROLL

    def roll_starts(margin: int, tier: str, n: int = 48) -> tuple[list[int], float]:
        sim = DuelSim(n=n, tier=tier, seed=3)
        until = []
        while not sim.done.all():
            s = {k: v.copy() for k, v in sim.state.items()}
            sim.step(expert_keys(s, period=1, roll_margin=margin))
            new = (sim.state["k_act"] == K_ROLL) & (s["k_act"] != K_ROLL) & (s["b_act"] == B_WINDUP)
            until += list((s["b_len"] - s["b_t"])[new])
        return until, float((sim.winner == 1).mean())

    ref, ref_win = roll_starts(0, "hard")
    late, late_win = roll_starts(7, "hard")
    assert ref and late
    assert np.median(ref) == 13 and np.median(late) == 6, (np.median(ref), np.median(late))
    assert late_win >= 0.85 and late_win > ref_win + 0.4, (ref_win, late_win)


def test_seen_only_pokes_without_the_hidden_cooldown():
    """The boss looks the same with its cooldown running or not; the reference pokes only while it runs,
    seen_only whenever the boss is free, not guarding and in reach (with a roll's stamina in reserve)."""
    from hakisa.games.duel.sim import KEY_ATTACK

    sim = DuelSim(n=2, tier="normal", seed=1)
    fp = sim.rules["fp"]
    for i, cd in enumerate((0, 40)):
        st = sim.get(i)
        st.update(kx=st["bx"] - 50 * fp, b_cd=cd, b_act=0, k_act=0)  # 50 px in front of an idle boss
        sim.set(i, st)
    ref = expert_keys(sim.state, period=1)
    seen = expert_keys(sim.state, period=1, seen_only=True)
    assert ref[0] != KEY_ATTACK and ref[1] == KEY_ATTACK
    assert seen[0] == seen[1] == KEY_ATTACK
