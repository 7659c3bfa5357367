"""One 60 Hz tick of every fight, in place: `step_state`. Mirrors web/core.js `step` statement by statement;
the parts below run in that order (the knight acts, the boss's committed cleave, the free boss, the boss's
strike, the end of the fight), each "where(condition & live, new, old)" over all fights at once."""
from __future__ import annotations

import numpy as np

from hakisa.games.duel.boss_policy import boss_choice, decide
from hakisa.games.duel.brain import FOLLOW, HOLD, BrainPool, pool_from_rules
from hakisa.games.duel.state import (
    B_ACTIVE,
    B_APPROACH,
    B_GUARD,
    B_IDLE,
    B_RECOVER,
    B_RETREAT,
    B_WINDUP,
    K_ATTACK,
    K_BLOCK,
    K_IDLE,
    K_ROLL,
    K_STAGGER,
    KEY_ATTACK,
    KEY_BLOCK,
    KEY_LEFT,
    KEY_RIGHT,
    KEY_ROLL,
    xorshift32,
)

w = np.where  # short alias: every rule below is "where(condition & live, new, old)"


def step_state(rules: dict, tier_thr: np.ndarray, s: dict[str, np.ndarray], keys: np.ndarray,
               brains: BrainPool | None = None) -> None:
    """Advance every unfinished fight by one tick, in place. Mirrors core.js `step` statement by statement.
    brains: each fight's boss brain (None: rules["brain"], or the scripted policy when there is none)."""
    if brains is None:
        brains = pool_from_rules(rules, s["tick"].shape[0])
    live = s["done"] == 0
    s["tick"] += live
    _knight_moves(rules, s, keys, live)
    _knight_hits_and_breathes(rules, s, live)
    _boss_cleave(rules, tier_thr, s, live, brains)
    _boss_free(rules, tier_thr, s, live, brains)
    _boss_hits(rules, s, live)
    # --- end of fight: the boss dying wins ties; the time limit is a loss ----------------------
    kwin = live & (s["b_hp"] <= 0)
    bwin = live & ~kwin & ((s["k_hp"] <= 0) | (s["tick"] >= rules["time_limit"]))
    s["done"] = w(kwin | bwin, 1, s["done"])
    s["winner"] = w(kwin, 1, w(bwin, 2, s["winner"]))


def _knight_moves(rules: dict, s: dict, keys: np.ndarray, live: np.ndarray) -> None:
    """The knight faces the boss, finishes timed actions, reads the keys when free, walks or rolls."""
    fp, a, K = rules["fp"], rules["arena"], rules["knight"]
    left, right = (keys & KEY_LEFT) != 0, (keys & KEY_RIGHT) != 0
    roll_k, atk_k, blk_k = (keys & KEY_ROLL) != 0, (keys & KEY_ATTACK) != 0, (keys & KEY_BLOCK) != 0
    kx, bx = s["kx"], s["bx"]

    # --- knight: face the boss ---------------------------------------------------------------
    s["k_face"] = w(live & (bx > kx), 1, w(live & (bx < kx), -1, s["k_face"]))

    # --- knight: timed actions run out ---------------------------------------------------------
    timed = live & ((s["k_act"] == K_ATTACK) | (s["k_act"] == K_ROLL) | (s["k_act"] == K_STAGGER))
    s["k_t"] += timed
    over = timed & (s["k_t"] >= s["k_len"])
    s["k_act"][over] = K_IDLE
    s["k_t"][over] = 0
    s["k_len"][over] = 0

    # --- knight: a free knight reads the keys (priority roll > attack > block > walk) ----------
    free = live & ((s["k_act"] == K_IDLE) | (s["k_act"] == K_BLOCK))
    do_roll = free & roll_k & (s["k_st"] >= K["roll_cost"])
    do_atk = free & ~do_roll & atk_k & (s["k_st"] >= K["attack_cost"])
    do_blk = free & ~do_roll & ~do_atk & blk_k
    do_walk = free & ~do_roll & ~do_atk & ~do_blk
    dx = right.astype(np.int64) - left.astype(np.int64)

    # k_t of a held block counts the ticks it has been up (a block needs block_startup ticks to work)
    s["k_t"] = w(do_blk & (s["k_act"] == K_BLOCK), s["k_t"] + 1, w(free, 0, s["k_t"]))
    s["k_act"] = w(do_roll, K_ROLL, w(do_atk, K_ATTACK, w(do_blk, K_BLOCK, w(do_walk, K_IDLE, s["k_act"]))))
    started = do_roll | do_atk
    s["k_len"] = w(do_roll, K["roll_len"],
                   w(do_atk, K["attack_windup"] + K["attack_active"] + K["attack_recover"], s["k_len"]))
    s["k_st"] -= w(do_roll, K["roll_cost"], 0) + w(do_atk, K["attack_cost"], 0)
    s["k_regen"] = w(started, K["regen_delay"], s["k_regen"])
    s["k_dir"] = w(do_roll, w(dx != 0, dx, -s["k_face"]), s["k_dir"])
    s["k_hit"] = w(do_atk, 0, s["k_hit"])

    # walking: cannot step closer than min_sep to the boss (a roll can pass through it)
    nx = kx + dx * K["walk_speed"]
    blocked = (np.abs(nx - bx) < a["min_sep"] * fp) & (np.abs(nx - bx) < np.abs(kx - bx))
    nx = np.clip(w(blocked, kx, nx), a["knight_min_x"] * fp, a["knight_max_x"] * fp)
    kx = w(do_walk, nx, kx)

    # --- knight: roll motion -------------------------------------------------------------------
    rolling = live & (s["k_act"] == K_ROLL)
    kx = w(rolling, np.clip(kx + s["k_dir"] * K["roll_speed"], a["knight_min_x"] * fp, a["knight_max_x"] * fp), kx)
    s["kx"] = kx


def _knight_hits_and_breathes(rules: dict, s: dict, live: np.ndarray) -> None:
    """The swing's active frames hit the boss once; stamina regenerates after a delay, never while blocking."""
    fp, K, B = rules["fp"], rules["knight"], rules["boss"]
    kx, bx = s["kx"], s["bx"]
    # --- knight: the swing's active frames hit the boss once ------------------------------------
    kt = s["k_t"]
    rel = (bx - kx) * s["k_face"]
    hit = (live & (s["k_act"] == K_ATTACK) & (s["k_hit"] == 0) & (kt >= K["attack_windup"])
           & (kt < K["attack_windup"] + K["attack_active"])
           & (rel >= -K["attack_back"] * fp) & (rel <= K["attack_reach"] * fp))
    dmg = w(s["b_act"] == B_GUARD, K["attack_damage"] * B["guard_pct"] // 100, K["attack_damage"])
    s["k_hit"] = w(hit, 1, s["k_hit"])
    s["b_hp"] = w(hit, np.maximum(s["b_hp"] - dmg, 0), s["b_hp"])

    # --- knight: stamina regenerates after a delay, never while blocking -----------------------
    delaying = live & (s["k_regen"] > 0)
    s["k_regen"] -= delaying
    regen = live & ~delaying & (s["k_act"] != K_BLOCK)
    s["k_st"] = w(regen, np.minimum(s["k_st"] + K["stamina_regen"], K["stamina"]), s["k_st"])


def _noise(tier_thr: np.ndarray, s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two rng draws: (r1, whether the tier's noise overrides the brain, r2)."""
    r1 = xorshift32(s["rng"])
    noisy = (r1 >> np.uint32(16)).astype(np.int64) < tier_thr[s["tier"]]
    return r1, noisy, xorshift32(r1)


def _boss_cleave(rules: dict, tier_thr: np.ndarray, s: dict, live: np.ndarray, brains: BrainPool) -> None:
    """The boss's cooldown and its committed cleave: wind-up (maybe held), strike, recovery or a combo."""
    B = rules["boss"]
    kx, bx = s["kx"], s["bx"]
    low = s["b_hp"] * 100 <= B["hp"] * B["low_hp_pct"]
    s["b_cd"] -= live & (s["b_cd"] > 0)
    committed = live & (s["b_act"] >= B_WINDUP)
    s["b_t"] += committed
    bt = s["b_t"]
    # cleave_reveal ticks before the strike the boss decides whether to HOLD it (a delayed swing): it
    # reads a knight who has already committed (rolling or swinging) and waits him out; tier noise makes
    # it a coin flip. Nothing on screen tells the two apart before this tick.
    reveal = committed & (s["b_act"] == B_WINDUP) & (bt == B["cleave_windup"] - B["cleave_reveal"])
    if reveal.any():
        r1, noisy, r2 = _noise(tier_thr, s)
        s["rng"] = w(reveal, w(noisy, r2, r1), s["rng"])
        read = boss_choice(rules, s, reveal & ~noisy, HOLD, brains) == 1
        delayed = reveal & w(noisy, (r2 >> np.uint32(16)) < 32768, read)
        s["b_len"] = w(delayed, B["cleave_windup"] + B["delay_ticks"], s["b_len"])
    to_active = committed & (s["b_act"] == B_WINDUP) & (bt >= s["b_len"])
    to_recover = committed & (s["b_act"] == B_ACTIVE) & (bt >= B["cleave_active"])
    to_idle = committed & (s["b_act"] == B_RECOVER) & (bt >= B["cleave_recover"])
    s["b_act"] = w(to_active, B_ACTIVE, w(to_recover, B_RECOVER, w(to_idle, B_IDLE, s["b_act"])))
    s["b_t"] = w(to_active | to_recover | to_idle, 0, s["b_t"])
    s["b_hit"] = w(to_active, 0, s["b_hit"])
    s["b_face"] = w(to_active & (kx > bx), 1, w(to_active & (kx < bx), -1, s["b_face"]))  # re-aim on the strike
    # after a strike: chain another wind-up (a combo) instead of recovering? Noise: a coin flip.
    if to_recover.any():
        r1, noisy, r2 = _noise(tier_thr, s)
        s["rng"] = w(to_recover, w(noisy, r2, r1), s["rng"])
        want = boss_choice(rules, s, to_recover & ~noisy, FOLLOW, brains) == 1
        coin = ((r2 >> np.uint32(16)) < 32768) & (s["b_combo"] < B["combo_max_low"])
        follow = to_recover & w(noisy, coin, want)
        s["b_act"] = w(follow, B_WINDUP, s["b_act"])
        s["b_len"] = w(follow, B["cleave_windup"], s["b_len"])
        s["b_combo"] = w(follow, s["b_combo"] + 1, w(to_recover, 0, s["b_combo"]))
        s["b_face"] = w(follow & (kx > bx), 1, w(follow & (kx < bx), -1, s["b_face"]))
    s["b_dec"] = w(to_idle, 0, s["b_dec"])
    s["b_cd"] = w(to_idle, w(low, B["cooldown_low"], B["cooldown"]), s["b_cd"])


def _boss_free(rules: dict, tier_thr: np.ndarray, s: dict, live: np.ndarray, brains: BrainPool) -> None:
    """A free boss faces the knight, re-decides every decide_every ticks, and moves."""
    fp, a, B = rules["fp"], rules["arena"], rules["boss"]
    kx, bx = s["kx"], s["bx"]
    # --- boss: a free boss faces the knight and re-decides every decide_every ticks ------------
    bfree = live & (s["b_act"] < B_WINDUP)
    s["b_face"] = w(bfree & (kx > bx), 1, w(bfree & (kx < bx), -1, s["b_face"]))
    s["b_dec"] -= bfree
    deciding = bfree & (s["b_dec"] <= 0)
    s["b_t"] += bfree & ~deciding
    if deciding.any():
        choice, jitter = decide(rules, tier_thr, s, deciding, brains)
        s["b_act"] = w(deciding, choice, s["b_act"])
        s["b_t"] = w(deciding, 0, s["b_t"])
        s["b_len"] = w(deciding & (choice == B_WINDUP), B["cleave_windup"], s["b_len"])
        s["b_dec"] = w(deciding, B["decide_every"] + jitter, s["b_dec"])

    # --- boss: movement ------------------------------------------------------------------------
    dist = np.abs(kx - bx)
    mv = (w(live & (s["b_act"] == B_APPROACH) & (dist > a["min_sep"] * fp), B["walk_speed"], 0)
          - w(live & (s["b_act"] == B_RETREAT), B["retreat_speed"], 0)
          + w(live & (s["b_act"] == B_ACTIVE), B["lunge_speed"], 0))  # the cleave lunges forward
    bx = np.clip(bx + mv * s["b_face"], a["boss_min_x"] * fp, a["boss_max_x"] * fp)
    s["bx"] = bx


def _boss_hits(rules: dict, s: dict, live: np.ndarray) -> None:
    """The cleave's active frames hit the knight once (rolling i-frames pass through; a raised block takes
    part of it and costs stamina, a broken guard staggers)."""
    fp, K, B = rules["fp"], rules["knight"], rules["boss"]
    kx, bx = s["kx"], s["bx"]
    rel = (kx - bx) * s["b_face"]
    iframe = (s["k_act"] == K_ROLL) & (s["k_t"] >= K["roll_iframe_start"]) & (s["k_t"] < K["roll_iframe_end"])
    bhit = (live & (s["b_act"] == B_ACTIVE) & (s["b_hit"] == 0)
            & (rel >= -B["cleave_back"] * fp) & (rel <= B["cleave_reach"] * fp) & ~iframe)
    blocked = bhit & (s["k_act"] == K_BLOCK) & (s["k_t"] >= K["block_startup"])
    clean = bhit & ~blocked
    guard_break = blocked & (s["k_st"] < K["block_stamina"])
    s["b_hit"] = w(bhit, 1, s["b_hit"])
    s["k_hp"] = w(bhit, np.maximum(s["k_hp"] - w(blocked, B["cleave_damage"] * K["block_pct"] // 100,
                                                    B["cleave_damage"]), 0), s["k_hp"])
    s["k_st"] = w(blocked, w(guard_break, 0, s["k_st"] - K["block_stamina"]), s["k_st"])
    s["k_regen"] = w(blocked, K["regen_delay"], s["k_regen"])
    stagger = clean | guard_break
    s["k_act"] = w(stagger, K_STAGGER, s["k_act"])
    s["k_t"] = w(stagger, 0, s["k_t"])
    s["k_len"] = w(clean, K["stagger"], w(guard_break, K["guard_break_stagger"], s["k_len"]))
