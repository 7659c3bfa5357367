"""DuelSim: the duel's rules, vectorised over N fights in numpy, bit-identical to web/core.js.

One `step` is ONE 60 Hz tick for every fight. All state is integer (positions are fixed-point
sub-pixels, `rules["fp"]` per canvas pixel) so Python and JS agree bit for bit; the only randomness
is one xorshift32 word per fight. The scalar twin of this file is web/core.js: the two are written
in the same order, line for line, so a diff of their logic stays readable. Keep them in step.

Key bitmask per tick: bit0 left, bit1 right, bit2 roll (Space), bit3 attack (J), bit4 block (K held).
Keys are LEVEL-triggered: a held J starts a new swing as soon as the knight is free, so an agent that
decides every k ticks and holds its keys for the step never loses an input to edge detection.

A finished fight stays frozen (no auto-reset here; the Gymnasium env resets).

The boss's decisions come from its brain (brain.py): the scripted policy below, or a learned integer
network in `rules["brain"]` (both cores read it from there), or per fight from `DuelSim.set_brains`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hakisa.games.duel.brain import FOLLOW, FREE, HOLD, BrainPool, pool_from_rules

RULES_PATH = Path(__file__).with_name("rules.json")

KEY_LEFT, KEY_RIGHT, KEY_ROLL, KEY_ATTACK, KEY_BLOCK = 1, 2, 4, 8, 16
# The duel input map's 8 commands in index order (hakisa/maps/duel.json):
# 0 noop, 1 left, 2 right, 3 roll, 4 attack, 5 block, 6 left+roll, 7 right+roll
COMMAND_KEYS = np.array([0, KEY_LEFT, KEY_RIGHT, KEY_ROLL, KEY_ATTACK, KEY_BLOCK,
                         KEY_LEFT | KEY_ROLL, KEY_RIGHT | KEY_ROLL], dtype=np.uint8)
# its inverse: key bitmask -> command index (-1: no command presses exactly those keys)
KEYS_TO_COMMAND = np.full(int(COMMAND_KEYS.max()) + 1, -1)
KEYS_TO_COMMAND[COMMAND_KEYS] = np.arange(len(COMMAND_KEYS))

# knight actions (k_act)
K_IDLE, K_ATTACK, K_ROLL, K_BLOCK, K_STAGGER = 0, 1, 2, 3, 4
# boss actions (b_act); 0..3 are "free" (re-decided every decide_every ticks), 4..6 are one committed cleave
B_IDLE, B_APPROACH, B_RETREAT, B_GUARD, B_WINDUP, B_ACTIVE, B_RECOVER = 0, 1, 2, 3, 4, 5, 6

# Every state field, in the order the parity harness serialises them. All int64 except rng (uint32).
STATE_FIELDS = ("tick", "tier", "rng", "done", "winner",
                "kx", "k_hp", "k_st", "k_act", "k_t", "k_len", "k_face", "k_dir", "k_hit", "k_regen",
                "bx", "b_hp", "b_act", "b_t", "b_len", "b_face", "b_cd", "b_dec", "b_hit", "b_combo")
N_RECTS = 18  # fixed draw-list length (slots documented in draw_rects)


def load_rules(path: str | Path | None = None) -> dict:
    with open(path or RULES_PATH) as f:
        return json.load(f)


def seed_to_rng(seed) -> np.ndarray:
    """Seed -> nonzero xorshift32 state. JS: (Math.imul(seed, 0x9E3779B1) + 0x6D2B79F5) >>> 0, then one step."""
    s = np.asarray(seed, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
    x = ((s * np.uint64(0x9E3779B1) + np.uint64(0x6D2B79F5)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    x = np.where(x == 0, np.uint32(1), x)
    return xorshift32(x)


def xorshift32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x << np.uint32(13))
    x = x ^ (x >> np.uint32(17))
    return x ^ (x << np.uint32(5))


def tier_thresholds(rules: dict) -> np.ndarray:
    # floor(p*65536 + 0.5) is computed on the same doubles in JS, so both sides get the same integer.
    return np.array([int(np.floor(rules["tiers"][t] * 65536 + 0.5)) for t in rules["tier_order"]], dtype=np.int64)


class DuelSim:
    """N independent duels. `state[field]` is an (n,) array; see STATE_FIELDS and the module doc."""

    def __init__(self, n: int = 64, tier="normal", seed: int = 0, rules: dict | None = None):
        self.n = int(n)
        self.rules = rules or load_rules()
        self.tier_thr = tier_thresholds(self.rules)
        order = self.rules["tier_order"]
        if isinstance(tier, str):
            tiers = np.full(self.n, order.index(tier), dtype=np.int64)
        else:
            tiers = np.array([order.index(t) if isinstance(t, str) else int(t) for t in tier], dtype=np.int64)
            assert tiers.shape == (self.n,), "one tier per fight"
        self._tiers = tiers
        self.brains: BrainPool = pool_from_rules(self.rules, self.n)
        self._seeder = np.random.default_rng(seed)
        self.state: dict[str, np.ndarray] = {f: np.zeros(self.n, dtype=np.uint32 if f == "rng" else np.int64)
                                             for f in STATE_FIELDS}
        # fight i's first seed is seed+i, so DuelSim(n, seed=s) fight i == DuelCore.newState(rules, tier, s+i)
        self.reset(seeds=(np.arange(self.n, dtype=np.int64) + int(seed)) & 0xFFFFFFFF)

    # ---- bookkeeping -------------------------------------------------------------------------
    @property
    def done(self) -> np.ndarray:
        return self.state["done"] != 0

    @property
    def winner(self) -> np.ndarray:
        return self.state["winner"].astype(np.int8)

    def reset(self, mask: np.ndarray | None = None, seeds=None) -> None:
        """Reset all fights, or those where mask is True. Seeds default to fresh draws from the sim's seeder."""
        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if idx.size == 0:
            return
        if seeds is None:
            seeds = self._seeder.integers(0, 2**32, size=idx.size, dtype=np.uint64)
        seeds = np.broadcast_to(np.asarray(seeds), (idx.size,))
        fresh = initial_state(self.rules, self._tiers[idx], seeds)
        for f in STATE_FIELDS:
            self.state[f][idx] = fresh[f]

    def set_tier(self, tier, mask: np.ndarray | None = None) -> None:
        """Change the tier used by the NEXT reset of the masked fights (and the running ones)."""
        t = self.rules["tier_order"].index(tier) if isinstance(tier, str) else tier
        sel = slice(None) if mask is None else mask
        self._tiers[sel] = t
        self.state["tier"][sel] = t

    def set_brains(self, brains: list[dict | None], idx=None) -> None:
        """Give fight f the boss brains[idx[f]] (None: scripted) from its next tick on; idx defaults to 0."""
        self.brains = BrainPool(brains, self.n, idx)

    def get(self, i: int) -> dict[str, int]:
        return {f: int(self.state[f][i]) for f in STATE_FIELDS}

    def set(self, i: int, d: dict) -> None:
        for f in STATE_FIELDS:
            self.state[f][i] = d[f]

    def step(self, keys) -> None:
        keys = np.broadcast_to(np.asarray(keys, dtype=np.int64), (self.n,))
        step_state(self.rules, self.tier_thr, self.state, keys, self.brains)

    def draw_rects(self) -> np.ndarray:
        return draw_rects(self.rules, self.state)


def initial_state(rules: dict, tiers: np.ndarray, seeds) -> dict[str, np.ndarray]:
    m = len(tiers)
    fp, a, k, b = rules["fp"], rules["arena"], rules["knight"], rules["boss"]
    z = np.zeros(m, dtype=np.int64)
    s = {f: z.copy() for f in STATE_FIELDS}
    s["tier"] = np.asarray(tiers, dtype=np.int64).copy()
    s["rng"] = seed_to_rng(np.asarray(seeds, dtype=np.uint64))
    s["kx"] += a["knight_start_x"] * fp
    s["k_hp"] += k["hp"]
    s["k_st"] += k["stamina"]
    s["k_face"] += 1
    s["bx"] += a["boss_start_x"] * fp
    s["b_hp"] += b["hp"]
    s["b_face"] -= 1
    s["b_dec"] += b["decide_every"]
    return s


def step_state(rules: dict, tier_thr: np.ndarray, s: dict[str, np.ndarray], keys: np.ndarray,
               brains: BrainPool | None = None) -> None:
    """Advance every unfinished fight by one tick, in place. Mirrors core.js `step` statement by statement.
    brains: each fight's boss brain (None: rules["brain"], or the scripted policy when there is none)."""
    if brains is None:
        brains = pool_from_rules(rules, s["tick"].shape[0])
    fp, a, K, B = rules["fp"], rules["arena"], rules["knight"], rules["boss"]
    live = s["done"] == 0
    left, right = (keys & KEY_LEFT) != 0, (keys & KEY_RIGHT) != 0
    roll_k, atk_k, blk_k = (keys & KEY_ROLL) != 0, (keys & KEY_ATTACK) != 0, (keys & KEY_BLOCK) != 0
    w = np.where  # short alias: every rule below is "where(condition & live, new, old)"

    s["tick"] += live
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

    # --- boss: cooldown and the committed cleave -----------------------------------------------
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
        r1 = xorshift32(s["rng"])
        noisy = (r1 >> np.uint32(16)).astype(np.int64) < tier_thr[s["tier"]]
        r2 = xorshift32(r1)
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
        r1 = xorshift32(s["rng"])
        noisy = (r1 >> np.uint32(16)).astype(np.int64) < tier_thr[s["tier"]]
        r2 = xorshift32(r1)
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

    # --- boss: a free boss faces the knight and re-decides every decide_every ticks ------------
    bfree = live & (s["b_act"] < B_WINDUP)
    s["b_face"] = w(bfree & (kx > bx), 1, w(bfree & (kx < bx), -1, s["b_face"]))
    s["b_dec"] -= bfree
    deciding = bfree & (s["b_dec"] <= 0)
    s["b_t"] += bfree & ~deciding
    if deciding.any():
        choice, jitter = _decide(rules, tier_thr, s, deciding, brains)
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

    # --- boss: the cleave's active frames hit the knight once (rolling i-frames pass through) --
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

    # --- end of fight: the boss dying wins ties; the time limit is a loss ----------------------
    kwin = live & (s["b_hp"] <= 0)
    bwin = live & ~kwin & ((s["k_hp"] <= 0) | (s["tick"] >= rules["time_limit"]))
    s["done"] = w(kwin | bwin, 1, s["done"])
    s["winner"] = w(kwin, 1, w(bwin, 2, s["winner"]))


def _decide(rules, tier_thr, s, deciding, brains: BrainPool) -> tuple[np.ndarray, np.ndarray]:
    """The boss's choice (B_IDLE..B_WINDUP) and the jitter of its next decision time, for the deciding
    fights; advances their rng. The scripted policy, or the fight's learned brain."""
    B = rules["boss"]
    r1 = xorshift32(s["rng"])
    jitter = ((r1 >> np.uint32(8)) & np.uint32(255)).astype(np.int64) % B["decide_jitter"]
    noisy = (r1 >> np.uint32(16)).astype(np.int64) < tier_thr[s["tier"]]
    r2 = xorshift32(r1)
    s["rng"] = np.where(deciding, np.where(noisy, r2, r1), s["rng"])
    # noise: a uniformly random LEGAL move; the cleave (B_WINDUP) is legal only off cooldown
    n_legal = np.where(s["b_cd"] == 0, 5, 4)
    rand_move = ((r2 >> np.uint32(16)).astype(np.int64) * n_legal) >> 16

    policy = boss_choice(rules, s, deciding & ~noisy, FREE, brains)  # free choices 0..4 are B_IDLE..B_WINDUP
    return np.where(noisy, rand_move, policy), jitter


def boss_choice(rules, s, sel, kind: int, brains: BrainPool) -> np.ndarray:
    """Each fight's decision of `kind` (brain.py: FREE, HOLD, FOLLOW) as the state stands: its learned
    brain's where it has one (and sel), else the scripted policy's."""
    scripted, legal = scripted_choice(rules, s, kind)
    if brains.recorder is not None:  # e.g. a learner cloning the scripted brain (boss_league.clone_scripted)
        brains.recorder(kind, s, sel, scripted, legal)
    learned = brains.choose(rules, s, sel, kind, legal)
    return np.where(learned >= 0, learned, scripted)


def scripted_choice(rules, s, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """The scripted brain: (choice int64 [n], legal bool [n, options]) of `kind` for every fight."""
    fp, B, K = rules["fp"], rules["boss"], rules["knight"]
    w = np.where
    n = s["tick"].shape[0]
    low = s["b_hp"] * 100 <= B["hp"] * B["low_hp_pct"]
    dist = np.abs(s["kx"] - s["bx"])
    if kind == HOLD:  # hold the swing against a knight already committed (rolling or swinging)
        read = (s["k_act"] == K_ROLL) | (s["k_act"] == K_ATTACK)
        return read.astype(np.int64), np.ones((n, 2), bool)
    if kind == FOLLOW:  # chain a follow-up while the combo allows it and the knight stays close
        may = s["b_combo"] < w(low, B["combo_max_low"], B["combo_max"])
        want = may & (dist <= B["combo_range"] * fp)
        return want.astype(np.int64), np.stack([np.ones(n, bool), may], 1)
    off_cd = s["b_cd"] == 0
    threat = ((s["k_act"] == K_ATTACK) & (s["k_t"] < K["attack_windup"] + K["attack_active"])
              & (dist <= (K["attack_reach"] + B["guard_margin"]) * fp))
    far = dist > B["cleave_trigger"] * fp
    policy = w(off_cd & ~far, B_WINDUP,
               w(threat, B_GUARD,
                 w(~off_cd & ~low, w(dist < B["backoff_dist"] * fp, B_RETREAT, B_IDLE),
                   w(far, B_APPROACH, B_IDLE))))
    return policy.astype(np.int64), np.stack([np.ones(n, bool)] * 4 + [off_cd], 1)


def _snap(v):
    return (v // 4) * 4


def draw_rects(rules: dict, s: dict[str, np.ndarray]) -> np.ndarray:
    """(n, N_RECTS, 5) int32 [x, y, w, h, colour] in canvas pixels, painting order, clipped to the canvas.

    Slots: 0 background, 1 floor, 2 telegraph bar (grows during the wind-up), 3 boss weapon, 4 boss body,
    5 boss eye, 6 boss guard, 7 knight body, 8 knight head, 9 sword, 10 shield, 11-12 knight HP bg/fill,
    13-14 stamina bg/fill, 15-16 boss HP bg/fill, 17 time-left bar. Empty slots are all zeros.
    Every coordinate is a multiple of 4, so downscaling the canvas by 4 with INTER_AREA is exact.
    """
    n = s["tick"].shape[0]
    fp, K, B, hud = rules["fp"], rules["knight"], rules["boss"], rules["hud"]
    cw, ch = rules["canvas"]["width"], rules["canvas"]["height"]
    fy = rules["arena"]["floor_y"]
    pal = {name: i for i, name in enumerate(rules["palette_names"])}
    out = np.zeros((n, N_RECTS, 5), dtype=np.int64)
    w = np.where
    one = np.ones(n, dtype=np.int64)

    def put(slot, x, y, wd, ht, c, show=None):
        x, y, wd, ht, c = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in (x, y, wd, ht, c))
        x0, y0 = np.maximum(x, 0), np.maximum(y, 0)
        x1, y1 = np.minimum(x + wd, cw), np.minimum(y + ht, ch)
        ok = (x1 > x0) & (y1 > y0)
        if show is not None:
            ok &= show
        out[:, slot, 0] = w(ok, x0, 0)
        out[:, slot, 1] = w(ok, y0, 0)
        out[:, slot, 2] = w(ok, x1 - x0, 0)
        out[:, slot, 3] = w(ok, y1 - y0, 0)
        out[:, slot, 4] = w(ok, c, 0)

    put(0, 0, 0, cw, ch, pal["bg"])
    put(1, 0, fy, cw, ch - fy, pal["floor"])

    # --- boss ----------------------------------------------------------------------------------
    ba, bt, bf = s["b_act"], s["b_t"], s["b_face"]
    bl = _snap(s["bx"] // fp - 32)  # body left edge
    fwd = bf > 0
    # the bar fills over the normal wind-up; a held (delayed) swing shows a taller bar in the hold colour
    tele_w = _snap(64 * np.minimum(bt + 1, B["cleave_windup"]) // B["cleave_windup"])
    hold = s["b_len"] > B["cleave_windup"]
    put(2, bl, w(hold, fy - 140, fy - 132), tele_w, w(hold, 16, 8), w(hold, pal["telegraph_hold"], pal["telegraph"]),
        ba == B_WINDUP)
    reach_w = B["cleave_reach"] - 32
    wx = w(ba == B_WINDUP, w(fwd, bl + 4, bl + 48),
           w(ba == B_ACTIVE, w(fwd, bl + 64, bl - reach_w),
             w(ba == B_RECOVER, w(fwd, bl + 64, bl - 64), w(fwd, bl + 64, bl - 12))))
    wy = w(ba == B_WINDUP, fy - 184, w(ba == B_ACTIVE, fy - 48, w(ba == B_RECOVER, fy - 12, fy - 64)))
    ww = w(ba == B_WINDUP, 12, w(ba == B_ACTIVE, reach_w, w(ba == B_RECOVER, 64, 12)))
    wh = w(ba == B_WINDUP, 72, w(ba == B_ACTIVE, 16, w(ba == B_RECOVER, 12, 56)))
    put(3, wx, wy, ww, wh, w(ba == B_ACTIVE, pal["telegraph"], pal["boss_weapon"]))
    put(4, bl, fy - 112, 64 * one, 112, w(ba == B_WINDUP, pal["boss_windup"],
                                            w(ba == B_RECOVER, pal["boss_recover"], pal["boss"])))
    put(5, w(fwd, bl + 44, bl + 8), fy - 96, 12, 8, pal["boss_eye"])
    put(6, w(fwd, bl + 64, bl - 12), fy - 100, 12, 88, pal["boss_guard"], ba == B_GUARD)

    # --- knight --------------------------------------------------------------------------------
    ka, kt, kf = s["k_act"], s["k_t"], s["k_face"]
    kp = s["kx"] // fp
    kfwd = kf > 0
    rolling = ka == K_ROLL
    iframe = rolling & (kt >= K["roll_iframe_start"]) & (kt < K["roll_iframe_end"])
    kc = w(iframe, pal["knight_iframe"], w(ka == K_STAGGER, pal["knight_stagger"], pal["knight"]))
    kl = _snap(kp - 12)
    put(7, w(rolling, _snap(kp - 14), kl), w(rolling, fy - 24, fy - 44), w(rolling, 28, 24), w(rolling, 24, 44), kc)
    put(8, _snap(kp - 8), fy - 56, 16, 12, pal["knight_head"], ~rolling)
    aw, aa = K["attack_windup"], K["attack_active"]
    atk = ka == K_ATTACK
    wind, act = atk & (kt < aw), atk & (kt >= aw) & (kt < aw + aa)
    sword_w = K["attack_reach"] - 12
    sx = w(wind, w(kfwd, kl, kl + 16), w(act, w(kfwd, kl + 24, kl - sword_w), w(kfwd, kl + 24, kl - 28)))
    sy = w(wind, fy - 84, w(act, fy - 36, fy - 12))
    sw = w(wind, 8, w(act, sword_w, 28))
    sh = w(wind, 28, 8)
    put(9, sx, sy, sw, sh, pal["sword"], atk)
    raised = kt >= K["block_startup"]  # a shield still coming up is drawn low and short
    put(10, w(kfwd, kl + 24, kl - 8), w(raised, fy - 40, fy - 24), 8, w(raised, 32, 16), pal["shield"], ka == K_BLOCK)

    # --- HUD bars ------------------------------------------------------------------------------
    def bar(slot, box, value, vmax, colour):
        x, y, bw, bh = box
        put(slot, x, y, bw, bh, pal["bar_bg"])
        put(slot + 1, x, y, _snap(bw * value // vmax), bh, pal[colour])

    bar(11, hud["knight_hp"], s["k_hp"], K["hp"], "hp_knight")
    bar(13, hud["knight_stamina"], s["k_st"], K["stamina"], "stamina")
    bar(15, hud["boss_hp"], s["b_hp"], B["hp"], "hp_boss")
    tx, ty, tw, th = hud["time"]
    put(17, tx, ty, _snap(tw * np.maximum(rules["time_limit"] - s["tick"], 0) // rules["time_limit"]), th, pal["time"])
    return out.astype(np.int32)
