// DuelCore: the duel's rules for ONE fight, bit-identical to hakisa/games/duel/sim.py and step.py (numpy, N fights).
// Runs in the page (globalThis.DuelCore) and under Node (module.exports). The two files are written
// in the same order, statement by statement: change one, change the other, run tests/test_duel_rules.py.
//
// API (rules = the parsed rules.json):
//   DuelCore.newState(rules, tier, seed) -> state   tier: "easy"|"normal"|"hard" or its index
//   DuelCore.step(rules, state, keys)    -> state   MUTATES state in place (and returns it); one 60 Hz tick
//   DuelCore.drawRects(rules, state)     -> [[x, y, w, h, colourIndex], ...]  N_RECTS slots, painting order
// keys: bit0 left, bit1 right, bit2 roll (Space), bit3 attack (J), bit4 block (K held); level-triggered.
// All state is integers (positions in sub-pixels, rules.fp per canvas pixel); rng is a uint32 xorshift32 word.
// The boss's decisions: the scripted policy (decide below), or rules.brain, a learned integer network
// (hakisa/games/duel/brain.py documents it; brainFeatures and brainChoose are its JS twins).
(function () {
  "use strict";
  const KEY_LEFT = 1, KEY_RIGHT = 2, KEY_ROLL = 4, KEY_ATTACK = 8, KEY_BLOCK = 16;
  const K_IDLE = 0, K_ATTACK = 1, K_ROLL = 2, K_BLOCK = 3, K_STAGGER = 4;
  const B_IDLE = 0, B_APPROACH = 1, B_RETREAT = 2, B_GUARD = 3, B_WINDUP = 4, B_ACTIVE = 5, B_RECOVER = 6;
  const STATE_FIELDS = ["tick", "tier", "rng", "done", "winner",
    "kx", "k_hp", "k_st", "k_act", "k_t", "k_len", "k_face", "k_dir", "k_hit", "k_regen",
    "bx", "b_hp", "b_act", "b_t", "b_len", "b_face", "b_cd", "b_dec", "b_hit", "b_combo"];
  const N_RECTS = 18;

  // Python's // for the non-negative or negative integers we use (exact: |values| << 2^53).
  const fdiv = (a, b) => Math.floor(a / b);
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const snap = (v) => fdiv(v, 4) * 4;

  function xorshift32(x) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  }

  function seedToRng(seed) {
    let x = (Math.imul(seed >>> 0, 0x9E3779B1 | 0) + 0x6D2B79F5) >>> 0;
    if (x === 0) x = 1;
    return xorshift32(x);
  }

  function tierThreshold(rules, tier) {
    return Math.floor(rules.tiers[rules.tier_order[tier]] * 65536 + 0.5);
  }

  // ---- the learned brain: integer features and an int8 MLP, exactly brain.py's ------------------------
  const FREE = 0, HOLD = 1, FOLLOW = 2, OUT_SLICES = [[0, 5], [5, 7], [7, 9]], SHIFT_DIV = 64;

  function brainFeatures(rules, s, kind) {
    const fp = rules.fp, K = rules.knight, B = rules.boss;
    const d = s.kx - s.bx;
    const x = [kind === FREE ? 64 : 0, kind === HOLD ? 64 : 0, kind === FOLLOW ? 64 : 0,
      clamp(fdiv(d * s.b_face, fp * 4), -128, 128), Math.min(fdiv(Math.abs(d), fp * 4), 128),
      fdiv(s.k_hp * 64, K.hp), fdiv(s.b_hp * 64, B.hp), fdiv(s.k_st * 64, K.stamina)];
    for (let a = 0; a < 5; a++) x.push(s.k_act === a ? 64 : 0);
    x.push(Math.min(s.k_t, 64), s.k_act === K_ROLL ? s.k_dir * s.b_face * 32 : 0, Math.min(s.b_cd, 64),
      s.b_hp * 100 <= B.hp * B.low_hp_pct ? 64 : 0, s.b_combo * 16, fdiv(s.tick * 64, rules.time_limit),
      fdiv(s.bx, fp * 8), fdiv(s.kx, fp * 8));
    return x;
  }

  // The brain's choice within `kind` (0-based): the first maximum of the legal logits.
  function brainChoose(rules, s, kind, legal) {
    const br = rules.brain, x = brainFeatures(rules, s, kind), H = br.b1.length;
    const h = new Array(H);
    for (let j = 0; j < H; j++) {
      let acc = br.b1[j];
      const w = br.w1[j];
      for (let i = 0; i < x.length; i++) acc += w[i] * x[i];
      h[j] = Math.max(0, fdiv(acc, SHIFT_DIV));
    }
    const [lo, hi] = OUT_SLICES[kind];
    let best = -1, bestV = 0;
    for (let o = lo; o < hi; o++) {
      if (legal && !legal[o - lo]) continue;
      let v = br.b2[o];
      const w = br.w2[o];
      for (let j = 0; j < H; j++) v += w[j] * h[j];
      if (best < 0 || v > bestV) { best = o - lo; bestV = v; }
    }
    return best;
  }

  function newState(rules, tier, seed) {
    const t = typeof tier === "string" ? rules.tier_order.indexOf(tier) : tier;
    if (t < 0) throw new Error("unknown tier " + tier);
    const fp = rules.fp, a = rules.arena, K = rules.knight, B = rules.boss;
    return {
      tick: 0, tier: t, rng: seedToRng(seed), done: 0, winner: 0,
      kx: a.knight_start_x * fp, k_hp: K.hp, k_st: K.stamina, k_act: K_IDLE, k_t: 0, k_len: 0,
      k_face: 1, k_dir: 0, k_hit: 0, k_regen: 0,
      bx: a.boss_start_x * fp, b_hp: B.hp, b_act: B_IDLE, b_t: 0, b_len: 0, b_face: -1, b_cd: 0,
      b_dec: B.decide_every, b_hit: 0, b_combo: 0,
    };
  }

  function step(rules, s, keys) {
    if (s.done) return s;
    const fp = rules.fp, a = rules.arena, K = rules.knight, B = rules.boss;
    const left = (keys & KEY_LEFT) !== 0, right = (keys & KEY_RIGHT) !== 0;
    const rollK = (keys & KEY_ROLL) !== 0, atkK = (keys & KEY_ATTACK) !== 0, blkK = (keys & KEY_BLOCK) !== 0;
    s.tick += 1;
    let kx = s.kx, bx = s.bx;

    // knight: face the boss
    if (bx > kx) s.k_face = 1; else if (bx < kx) s.k_face = -1;

    // knight: timed actions run out
    if (s.k_act === K_ATTACK || s.k_act === K_ROLL || s.k_act === K_STAGGER) {
      s.k_t += 1;
      if (s.k_t >= s.k_len) { s.k_act = K_IDLE; s.k_t = 0; s.k_len = 0; }
    }

    // knight: a free knight reads the keys (priority roll > attack > block > walk)
    const dx = (right ? 1 : 0) - (left ? 1 : 0);
    if (s.k_act === K_IDLE || s.k_act === K_BLOCK) {
      // k_t of a held block counts the ticks it has been up (a block needs block_startup ticks to work)
      const heldT = s.k_act === K_BLOCK ? s.k_t + 1 : 0;
      s.k_t = 0;
      if (rollK && s.k_st >= K.roll_cost) {
        s.k_act = K_ROLL; s.k_len = K.roll_len; s.k_st -= K.roll_cost; s.k_regen = K.regen_delay;
        s.k_dir = dx !== 0 ? dx : -s.k_face;
      } else if (atkK && s.k_st >= K.attack_cost) {
        s.k_act = K_ATTACK; s.k_len = K.attack_windup + K.attack_active + K.attack_recover;
        s.k_st -= K.attack_cost; s.k_regen = K.regen_delay; s.k_hit = 0;
      } else if (blkK) {
        s.k_act = K_BLOCK; s.k_t = heldT;
      } else {
        s.k_act = K_IDLE;
        // walking: cannot step closer than min_sep to the boss (a roll can pass through it)
        let nx = kx + dx * K.walk_speed;
        if (Math.abs(nx - bx) < a.min_sep * fp && Math.abs(nx - bx) < Math.abs(kx - bx)) nx = kx;
        kx = clamp(nx, a.knight_min_x * fp, a.knight_max_x * fp);
      }
    }

    // knight: roll motion
    if (s.k_act === K_ROLL) kx = clamp(kx + s.k_dir * K.roll_speed, a.knight_min_x * fp, a.knight_max_x * fp);
    s.kx = kx;

    // knight: the swing's active frames hit the boss once
    {
      const kt = s.k_t, rel = (bx - kx) * s.k_face;
      if (s.k_act === K_ATTACK && s.k_hit === 0 && kt >= K.attack_windup && kt < K.attack_windup + K.attack_active
          && rel >= -K.attack_back * fp && rel <= K.attack_reach * fp) {
        const dmg = s.b_act === B_GUARD ? fdiv(K.attack_damage * B.guard_pct, 100) : K.attack_damage;
        s.k_hit = 1;
        s.b_hp = Math.max(s.b_hp - dmg, 0);
      }
    }

    // knight: stamina regenerates after a delay, never while blocking
    if (s.k_regen > 0) s.k_regen -= 1;
    else if (s.k_act !== K_BLOCK) s.k_st = Math.min(s.k_st + K.stamina_regen, K.stamina);

    // boss: cooldown and the committed cleave
    const low = s.b_hp * 100 <= B.hp * B.low_hp_pct;
    if (s.b_cd > 0) s.b_cd -= 1;
    if (s.b_act >= B_WINDUP) {
      s.b_t += 1;
      // cleave_reveal ticks before the strike the boss decides whether to HOLD it (a delayed swing): it
      // reads a knight who has already committed (rolling or swinging); tier noise makes it a coin flip
      if (s.b_act === B_WINDUP && s.b_t === B.cleave_windup - B.cleave_reveal) {
        let delayed = s.k_act === K_ROLL || s.k_act === K_ATTACK;
        s.rng = xorshift32(s.rng);
        if ((s.rng >>> 16) < tierThreshold(rules, s.tier)) {
          s.rng = xorshift32(s.rng);
          delayed = (s.rng >>> 16) < 32768;
        } else if (rules.brain) {
          delayed = brainChoose(rules, s, HOLD, null) === 1;
        }
        if (delayed) s.b_len = B.cleave_windup + B.delay_ticks;
      }
      if (s.b_act === B_WINDUP && s.b_t >= s.b_len) {
        s.b_act = B_ACTIVE; s.b_t = 0; s.b_hit = 0;
        if (kx > bx) s.b_face = 1; else if (kx < bx) s.b_face = -1;  // re-aim on the strike
      }
      else if (s.b_act === B_ACTIVE && s.b_t >= B.cleave_active) {
        s.b_act = B_RECOVER; s.b_t = 0;
        // after a strike: chain another wind-up (a combo) instead of recovering? Noise: a coin flip.
        const may = s.b_combo < (low ? B.combo_max_low : B.combo_max);
        let follow = may && Math.abs(kx - bx) <= B.combo_range * fp;
        s.rng = xorshift32(s.rng);
        if ((s.rng >>> 16) < tierThreshold(rules, s.tier)) {
          s.rng = xorshift32(s.rng);
          follow = (s.rng >>> 16) < 32768 && s.b_combo < B.combo_max_low;
        } else if (rules.brain) {
          follow = brainChoose(rules, s, FOLLOW, [true, may]) === 1;
        }
        if (follow) {
          s.b_act = B_WINDUP; s.b_len = B.cleave_windup; s.b_combo += 1;
          if (kx > bx) s.b_face = 1; else if (kx < bx) s.b_face = -1;
        } else {
          s.b_combo = 0;
        }
      }
      else if (s.b_act === B_RECOVER && s.b_t >= B.cleave_recover) {
        s.b_act = B_IDLE; s.b_t = 0; s.b_dec = 0; s.b_cd = low ? B.cooldown_low : B.cooldown;
      }
    }

    // boss: a free boss faces the knight and re-decides every decide_every ticks
    if (s.b_act < B_WINDUP) {
      if (kx > bx) s.b_face = 1; else if (kx < bx) s.b_face = -1;
      s.b_dec -= 1;
      if (s.b_dec <= 0) {
        const jitter = ((xorshift32(s.rng) >>> 8) & 255) % B.decide_jitter;  // from decide()'s first draw
        s.b_act = decide(rules, s, low);
        s.b_t = 0;
        if (s.b_act === B_WINDUP) s.b_len = B.cleave_windup;
        s.b_dec = B.decide_every + jitter;
      } else {
        s.b_t += 1;
      }
    }

    // boss: movement
    {
      const dist = Math.abs(kx - bx);
      let mv = 0;
      if (s.b_act === B_APPROACH && dist > a.min_sep * fp) mv += B.walk_speed;
      if (s.b_act === B_RETREAT) mv -= B.retreat_speed;
      if (s.b_act === B_ACTIVE) mv += B.lunge_speed;  // the cleave lunges forward
      bx = clamp(bx + mv * s.b_face, a.boss_min_x * fp, a.boss_max_x * fp);
      s.bx = bx;
    }

    // boss: the cleave's active frames hit the knight once (rolling i-frames pass through)
    {
      const rel = (kx - bx) * s.b_face;
      const iframe = s.k_act === K_ROLL && s.k_t >= K.roll_iframe_start && s.k_t < K.roll_iframe_end;
      if (s.b_act === B_ACTIVE && s.b_hit === 0 && rel >= -B.cleave_back * fp && rel <= B.cleave_reach * fp && !iframe) {
        s.b_hit = 1;
        if (s.k_act === K_BLOCK && s.k_t >= K.block_startup) {
          s.k_hp = Math.max(s.k_hp - fdiv(B.cleave_damage * K.block_pct, 100), 0);
          s.k_regen = K.regen_delay;
          if (s.k_st < K.block_stamina) {  // guard break
            s.k_st = 0; s.k_act = K_STAGGER; s.k_t = 0; s.k_len = K.guard_break_stagger;
          } else {
            s.k_st -= K.block_stamina;
          }
        } else {
          s.k_hp = Math.max(s.k_hp - B.cleave_damage, 0);
          s.k_act = K_STAGGER; s.k_t = 0; s.k_len = K.stagger;
        }
      }
    }

    // end of fight: the boss dying wins ties; the time limit is a loss
    if (s.b_hp <= 0) { s.done = 1; s.winner = 1; }
    else if (s.k_hp <= 0 || s.tick >= rules.time_limit) { s.done = 1; s.winner = 2; }
    return s;
  }

  // The boss's choice (B_IDLE..B_WINDUP); advances s.rng.
  function decide(rules, s, low) {
    const fp = rules.fp, B = rules.boss, K = rules.knight;
    const r1 = xorshift32(s.rng);
    s.rng = r1;
    if ((r1 >>> 16) < tierThreshold(rules, s.tier)) {
      // noise: a uniformly random LEGAL move; the cleave (B_WINDUP) is legal only off cooldown
      const r2 = xorshift32(r1);
      s.rng = r2;
      const nLegal = s.b_cd === 0 ? 5 : 4;
      return ((r2 >>> 16) * nLegal) >>> 16;
    }
    const dist = Math.abs(s.kx - s.bx);
    const offCd = s.b_cd === 0;
    if (rules.brain) return brainChoose(rules, s, FREE, [true, true, true, true, offCd]);
    const threat = s.k_act === K_ATTACK && s.k_t < K.attack_windup + K.attack_active
      && dist <= (K.attack_reach + B.guard_margin) * fp;
    const far = dist > B.cleave_trigger * fp;
    if (offCd && !far) return B_WINDUP;
    if (threat) return B_GUARD;
    if (!offCd && !low) return dist < B.backoff_dist * fp ? B_RETREAT : B_IDLE;
    return far ? B_APPROACH : B_IDLE;
  }

  // [x, y, w, h, colour] in canvas pixels, painting order, clipped; see sim.py draw_rects for the slots.
  function drawRects(rules, s) {
    const fp = rules.fp, K = rules.knight, B = rules.boss, hud = rules.hud;
    const cw = rules.canvas.width, ch = rules.canvas.height, fy = rules.arena.floor_y;
    const pal = {};
    rules.palette_names.forEach((name, i) => { pal[name] = i; });
    const out = [];
    function put(x, y, w, h, c, show) {
      const x0 = Math.max(x, 0), y0 = Math.max(y, 0), x1 = Math.min(x + w, cw), y1 = Math.min(y + h, ch);
      if (show === false || x1 <= x0 || y1 <= y0) out.push([0, 0, 0, 0, 0]);
      else out.push([x0, y0, x1 - x0, y1 - y0, c]);
    }
    put(0, 0, cw, ch, pal.bg);
    put(0, fy, cw, ch - fy, pal.floor);

    // boss
    const ba = s.b_act, bt = s.b_t, fwd = s.b_face > 0;
    const bl = snap(fdiv(s.bx, fp) - 32);
    // the bar fills over the normal wind-up; a held (delayed) swing shows a taller bar in the hold colour
    const hold = s.b_len > B.cleave_windup;
    put(bl, hold ? fy - 140 : fy - 132, snap(fdiv(64 * Math.min(bt + 1, B.cleave_windup), B.cleave_windup)),
      hold ? 16 : 8, hold ? pal.telegraph_hold : pal.telegraph, ba === B_WINDUP);
    const reachW = B.cleave_reach - 32;
    if (ba === B_WINDUP) put(fwd ? bl + 4 : bl + 48, fy - 184, 12, 72, pal.boss_weapon);
    else if (ba === B_ACTIVE) put(fwd ? bl + 64 : bl - reachW, fy - 48, reachW, 16, pal.telegraph);
    else if (ba === B_RECOVER) put(fwd ? bl + 64 : bl - 64, fy - 12, 64, 12, pal.boss_weapon);
    else put(fwd ? bl + 64 : bl - 12, fy - 64, 12, 56, pal.boss_weapon);
    put(bl, fy - 112, 64, 112, ba === B_WINDUP ? pal.boss_windup : ba === B_RECOVER ? pal.boss_recover : pal.boss);
    put(fwd ? bl + 44 : bl + 8, fy - 96, 12, 8, pal.boss_eye);
    put(fwd ? bl + 64 : bl - 12, fy - 100, 12, 88, pal.boss_guard, ba === B_GUARD);

    // knight
    const ka = s.k_act, kt = s.k_t, kfwd = s.k_face > 0;
    const kp = fdiv(s.kx, fp);
    const rolling = ka === K_ROLL;
    const iframe = rolling && kt >= K.roll_iframe_start && kt < K.roll_iframe_end;
    const kc = iframe ? pal.knight_iframe : ka === K_STAGGER ? pal.knight_stagger : pal.knight;
    const kl = snap(kp - 12);
    if (rolling) put(snap(kp - 14), fy - 24, 28, 24, kc); else put(kl, fy - 44, 24, 44, kc);
    put(snap(kp - 8), fy - 56, 16, 12, pal.knight_head, !rolling);
    const aw = K.attack_windup, aa = K.attack_active, swordW = K.attack_reach - 12;
    if (ka !== K_ATTACK) put(0, 0, 0, 0, 0, false);
    else if (kt < aw) put(kfwd ? kl : kl + 16, fy - 84, 8, 28, pal.sword);
    else if (kt < aw + aa) put(kfwd ? kl + 24 : kl - swordW, fy - 36, swordW, 8, pal.sword);
    else put(kfwd ? kl + 24 : kl - 28, fy - 12, 28, 8, pal.sword);
    const raised = kt >= K.block_startup;  // a shield still coming up is drawn low and short
    put(kfwd ? kl + 24 : kl - 8, raised ? fy - 40 : fy - 24, 8, raised ? 32 : 16, pal.shield, ka === K_BLOCK);

    // HUD bars
    function bar(box, value, vmax, colour) {
      put(box[0], box[1], box[2], box[3], pal.bar_bg);
      put(box[0], box[1], snap(fdiv(box[2] * value, vmax)), box[3], pal[colour]);
    }
    bar(hud.knight_hp, s.k_hp, K.hp, "hp_knight");
    bar(hud.knight_stamina, s.k_st, K.stamina, "stamina");
    bar(hud.boss_hp, s.b_hp, B.hp, "hp_boss");
    const tb = hud.time;
    put(tb[0], tb[1], snap(fdiv(tb[2] * Math.max(rules.time_limit - s.tick, 0), rules.time_limit)), tb[3], pal.time);
    return out;
  }

  const DuelCore = {
    KEY_LEFT, KEY_RIGHT, KEY_ROLL, KEY_ATTACK, KEY_BLOCK,
    K_IDLE, K_ATTACK, K_ROLL, K_BLOCK, K_STAGGER,
    B_IDLE, B_APPROACH, B_RETREAT, B_GUARD, B_WINDUP, B_ACTIVE, B_RECOVER,
    STATE_FIELDS, N_RECTS, COMMAND_KEYS: [0, 1, 2, 4, 8, 16, 5, 6],
    xorshift32, seedToRng, newState, step, drawRects, brainFeatures, brainChoose,
  };
  if (typeof module !== "undefined" && module.exports) module.exports = DuelCore;
  globalThis.DuelCore = DuelCore;
})();
