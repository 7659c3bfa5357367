// Hakisa Hop: a runner stands at a fixed x on a ground line; blocks and flyers scroll in from the right,
// a little faster as the game goes on. SPACE (or UP) jumps: the jump starts when the key goes down, and a
// tap is enough (holding the key does not jump again, nor higher). +1 for each obstacle that passes the
// runner untouched; touching one costs one of 3 lives and removes it. A game lasts at most 20 s.
//
// Two parts in one file, as Hakisa Pop: HopCore (pure, no DOM: newGame, tick, drawRects) and the page (a
// fixed 60 Hz loop, the keyboard, fillRect painting, window.hakisa). Every shape is integer fillRects, so a
// screenshot equals the rect list pixel for pixel, and collisions are judged on those same drawn rects.
const HopCore = (function () {
  "use strict";

  // ---- geometry and timing (canvas px, 60 Hz ticks) ----------------------------------------------
  const W = 480, H = 320;
  const HUD_H = 28;                               // rows 0..27
  const GROUND_Y = 280;                           // the first ground row; the sky is rows 28..279
  const GAME_TICKS = 20 * 60;                     // 20 s
  const LIVES = 3;
  const RUNNER = { x: 72, w: 16, h: 24 };
  const JUMP_TICKS = 36;                          // 0.6 s in the air
  const JUMP_H = 72;                              // the runner's feet at the top of a jump, px above ground
  const SPEED0 = 200 / 60, SPEED1 = 260 / 60;     // px per tick at the start and at the end of a game
  // Obstacles: `bottom` is the gap under them (px above the ground). A low flyer is too low to run under;
  // a high flyer clears a standing runner's head and is only dangerous to a jump.
  const BLOCK = { w0: 12, w1: 36, h0: 14, h1: 40 };
  const FLYER = { w: 20, h: 12, lowBottom: 14, highBottom: 30 };
  const P_LOW = 0.15, P_HIGH = 0.25;              // the rest are blocks
  const FIRST_GAP = 160;                          // px scrolled before the first obstacle enters
  const GAP0 = 200, GAP1 = 420;                   // px from one obstacle's right edge to the next one's left
  const FLASH_TICKS = 20;                         // the runner shows a hit this long
  const COLORS = {
    hud: "#202838", sky: "#142030", ground: "#4a5a34", groundLine: "#8a9a5a", text: "#ffffff",
    lives: "#ff4060", time: "#40c0ff", runner: "#f0f0f0", eye: "#101820", flash: "#ff9090",
    block: "#e07030", flyer: "#40d0a0", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };        // glyph 15x21 + 6 px gap
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };          // [300, 8, 90, 12] at 3 lives
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };           // [404, 8, 68, 12] when full
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };
  const PLAY = [0, HUD_H, W, H - HUD_H];

  // ---- 5x7 bitmap font (Pop's): 7 rows per glyph, bit 4 (0b10000) is the LEFT column ----------------
  const FONT = {
    "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
    "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
    "3": [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
    "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
    "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
    "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
    "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
    "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
    "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
    "A": [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
    "E": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
    "G": [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
    "I": [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    "M": [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
    "N": [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
    "O": [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
    "P": [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
    "R": [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
    "S": [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
    "V": [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
    " ": [0, 0, 0, 0, 0, 0, 0],
    ":": [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
  };

  // ---- PRNG: mulberry32, its word kept in the state so a state is plain, copyable data ------------
  function rand(s) {
    s.rng = (s.rng + 0x6D2B79F5) >>> 0;
    let t = s.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;  // [0, 1)
  }
  const randInt = (s, lo, hi) => lo + Math.floor(rand(s) * (hi - lo + 1));  // lo..hi inclusive

  // The k-th game a page with seed `pageSeed` starts: game 0 is newGame(pageSeed) itself.
  function gameSeed(pageSeed, k) {
    return ((pageSeed >>> 0) + Math.imul(7919, k)) >>> 0;
  }

  function newGame(seed) {
    return {
      seed: seed >>> 0, rng: seed >>> 0,
      mode: "play", over: null,  // over: why it ended, "lives" | "time"
      tick: 0, score: 0, lives: LIVES,
      jump: null,                // ticks since the jump began; null on the ground
      toNext: FIRST_GAP,         // px still to scroll before the next obstacle enters
      obstacles: [],             // {id, kind, x (float left edge), w, h, bottom, cleared}
      nextId: 1, flash: 0,
      jumps: 0, hits: 0, spawns: 0,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;
  const speedAt = (tick) => SPEED0 + (SPEED1 - SPEED0) * Math.min(tick, GAME_TICKS) / GAME_TICKS;
  // The feet's height above ground `k` ticks into a jump: a parabola, 0 at both ends, JUMP_H at the top.
  const jumpHeight = (k) => (k === null ? 0 : JUMP_H * 4 * (k / JUMP_TICKS) * (1 - k / JUMP_TICKS));

  // The rects as drawn (integer px, before clipping): collisions and the test hook use exactly these.
  function runnerRect(s) {
    return [RUNNER.x, GROUND_Y - RUNNER.h - Math.round(jumpHeight(s.jump)), RUNNER.w, RUNNER.h];
  }
  function obstacleRect(o) {
    return [Math.round(o.x), GROUND_Y - o.bottom - o.h, o.w, o.h];
  }
  const overlap = (a, b) => a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];

  function spawn(s, x) {
    const r = rand(s);
    let o;
    if (r < P_LOW || r >= 1 - P_HIGH) {
      const bottom = r < P_LOW ? FLYER.lowBottom : FLYER.highBottom;
      o = { kind: r < P_LOW ? "low" : "high", w: FLYER.w, h: FLYER.h, bottom };
    } else {
      o = { kind: "block", w: randInt(s, BLOCK.w0, BLOCK.w1), h: randInt(s, BLOCK.h0, BLOCK.h1), bottom: 0 };
    }
    Object.assign(o, { id: s.nextId++, x, cleared: false });
    s.obstacles.push(o);
    s.spawns += 1;
    s.toNext += o.w + randInt(s, GAP0, GAP1);
    return { type: "spawn", kind: o.kind, id: o.id };
  }

  // One 60 Hz tick. `jump`: the jump key went down since the last tick. A press while in the air is
  // dropped (no buffering), so each jump needs its own press.
  function tick(s, jump) {
    const events = [];
    if (s.mode !== "play") return events;
    s.tick += 1;
    if (jump && s.jump === null) { s.jump = 0; s.jumps += 1; events.push({ type: "jump" }); }
    if (s.jump !== null) {
      s.jump += 1;
      if (s.jump >= JUMP_TICKS) s.jump = null;
    }
    const v = speedAt(s.tick);
    for (const o of s.obstacles) o.x -= v;
    s.toNext -= v;
    if (s.toNext <= 0) events.push(spawn(s, W + s.toNext));  // keeps the spacing exact at any speed

    const rr = runnerRect(s);
    const kept = [];
    for (const o of s.obstacles) {
      const orect = obstacleRect(o);
      if (!o.cleared && overlap(rr, orect)) {
        s.hits += 1; s.flash = FLASH_TICKS;
        events.push({ type: "hit", id: o.id, kind: o.kind });
        if (s.mode === "play") {
          s.lives -= 1;
          if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; events.push({ type: "over", reason: "lives" }); }
        }
        continue;  // a hit obstacle is gone
      }
      if (!o.cleared && orect[0] + orect[2] <= RUNNER.x) {
        o.cleared = true; s.score += 1;
        events.push({ type: "clear", id: o.id, kind: o.kind });
      }
      if (orect[0] + orect[2] > 0) kept.push(o);
    }
    s.obstacles = kept;
    if (s.flash > 0) s.flash -= 1;
    if (s.mode === "play" && s.tick >= GAME_TICKS) {
      s.mode = "over"; s.over = "time"; events.push({ type: "over", reason: "time" });
    }
    return events;
  }

  // ---- drawing: a list of integer rects, clipped -------------------------------------------------
  // The part of [x, y, w, h] inside `clip`, or null when nothing of it is.
  function clipRect(x, y, w, h, clip) {
    const c = clip || [0, 0, W, H];
    const x0 = Math.max(x, c[0]), y0 = Math.max(y, c[1]);
    const x1 = Math.min(x + w, c[0] + c[2]), y1 = Math.min(y + h, c[1] + c[3]);
    return x1 > x0 && y1 > y0 ? [x0, y0, x1 - x0, y1 - y0] : null;
  }
  function pushRect(out, x, y, w, h, c, clip) {
    const r = clipRect(x, y, w, h, clip);
    if (r) out.push([...r, c]);
  }

  function textRects(out, str, x, y, scale, advance, color) {
    for (let i = 0; i < str.length; i++) {
      const rows = FONT[str[i]];
      if (!rows) throw new Error("no glyph for " + JSON.stringify(str[i]));
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (rows[row] & (0b10000 >> col)) pushRect(out, x + i * advance + col * scale, y + row * scale, scale, scale, color);
        }
      }
    }
  }
  const textWidth = (str, scale, advance) => (str.length - 1) * advance + 5 * scale;

  // Does a rect touch the band that the start and game-over screens draw over the play area?
  const underBand = (r) => r[1] < OVERLAY.y + OVERLAY.h && r[1] + r[3] > OVERLAY.y;

  // What is on screen this frame, in drawn (clipped) canvas px: the test hook reports exactly this. Outside
  // play, what the band covers, even in part, is left out (runner: null when it is under the band).
  function visible(s, mode) {
    const shown = (r) => (mode || s.mode) === "play" || !underBand(r);
    const rr = runnerRect(s);
    const obstacles = [];
    for (const o of s.obstacles) {
      const r = clipRect(...obstacleRect(o), PLAY);
      if (r && shown(r)) obstacles.push({ id: o.id, kind: o.kind, x: r[0], y: r[1], w: r[2], h: r[3], cleared: o.cleared });
    }
    const runner = shown(rr) ? { x: rr[0], y: rr[1], w: rr[2], h: rr[3] } : null;
    return { runner, obstacles };
  }

  // view: {mode: "start"|"play"|"over"} (defaults to the state's).
  function drawRects(s, view) {
    const mode = (view && view.mode) || s.mode;
    const out = [];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, 0, HUD_H, W, GROUND_Y - HUD_H, COLORS.sky);
    pushRect(out, 0, GROUND_Y, W, H - GROUND_Y, COLORS.ground);
    pushRect(out, 0, GROUND_Y, W, 2, COLORS.groundLine);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    for (const o of s.obstacles) {
      pushRect(out, ...obstacleRect(o), o.kind === "block" ? COLORS.block : COLORS.flyer, PLAY);
    }
    const [rx, ry, rw, rh] = runnerRect(s);
    pushRect(out, rx, ry, rw, rh, s.flash > 0 ? COLORS.flash : COLORS.runner, PLAY);
    pushRect(out, rx + 10, ry + 5, 3, 3, COLORS.eye, PLAY);
    if (mode !== "play") {
      pushRect(out, 0, OVERLAY.y, W, OVERLAY.h, COLORS.overlay);
      const lines = mode === "start" ? ["PRESS R"] : ["GAME OVER", "R: AGAIN"];
      const lineH = 7 * OVERLAY.scale;
      const total = lines.length * lineH + (lines.length - 1) * OVERLAY.lineGap;
      let y = OVERLAY.y + Math.floor((OVERLAY.h - total) / 2);
      for (const line of lines) {
        const x = Math.floor((W - textWidth(line, OVERLAY.scale, OVERLAY.advance)) / 2);
        textRects(out, line, x, y, OVERLAY.scale, OVERLAY.advance, COLORS.text);
        y += lineH + OVERLAY.lineGap;
      }
    }
    return out;
  }

  return Object.freeze({
    W, H, HUD_H, GROUND_Y, GAME_TICKS, LIVES, RUNNER, JUMP_TICKS, JUMP_H, SPEED0, SPEED1, BLOCK, FLYER,
    COLORS, SCORE, LIVES_BAR, TIME_BAR, OVERLAY,
    gameSeed, newGame, tick, timeLeft, speedAt, jumpHeight, runnerRect, obstacleRect, overlap, visible, drawRects,
  });
})();

if (typeof module !== "undefined" && module.exports) module.exports = HopCore;

// ---- the page ------------------------------------------------------------------------------------
if (typeof window !== "undefined" && typeof document !== "undefined") (function () {
  "use strict";
  const TICK_MS = 1000 / 60;
  const MAX_TICKS_PER_FRAME = 10;  // a hidden/stalled tab drops time instead of fast-forwarding the game
  const JUMP_KEYS = new Set(["Space", "ArrowUp"]);
  const params = new URLSearchParams(location.search);
  const canvas = document.getElementById("game");
  const ctx = canvas.getContext("2d", { alpha: false });
  ctx.imageSmoothingEnabled = false;

  const parsed = params.has("seed") ? Number(params.get("seed")) : NaN;
  const pageSeed = Number.isFinite(parsed) ? parsed >>> 0 : (Math.random() * 0x100000000) >>> 0;
  let games = 0;
  let state = HopCore.newGame(pageSeed);
  let mode = "start";            // "start" | "play" | "over"
  let pendingJump = false;       // a jump key went down since the last tick
  const held = new Set();        // jump keys down now: a held key's auto-repeat is not a new press
  let drawn = false;

  function startGame() {
    state = HopCore.newGame(HopCore.gameSeed(pageSeed, games));
    games += 1;
    pendingJump = false;
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of HopCore.drawRects(state, { mode })) {
      ctx.fillStyle = c;
      ctx.fillRect(x, y, w, h);
    }
    drawn = true;
  }

  let acc = 0, last = 0;
  function frame(now) {
    acc += now - last;
    last = now;
    let n = 0;
    while (acc >= TICK_MS && n < MAX_TICKS_PER_FRAME) {
      acc -= TICK_MS;
      n++;
      if (mode !== "play") continue;
      HopCore.tick(state, pendingJump);
      pendingJump = false;
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  window.addEventListener("keydown", (e) => {
    if (JUMP_KEYS.has(e.code)) {
      e.preventDefault();
      if (!e.repeat && !held.has(e.code) && mode === "play") pendingJump = true;
      held.add(e.code);
      return;
    }
    if (e.code !== "KeyR") return;  // every other key is ignored
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });
  window.addEventListener("keyup", (e) => { held.delete(e.code); });
  window.addEventListener("blur", () => held.clear());  // keys released while unfocused send no keyup

  // ---- the read-only test hook (tests and a scripted teacher; an agent only sees pixels) ----------
  window.hakisa = Object.freeze({
    ready: () => drawn,
    mode: () => mode,
    state: () => ({
      mode, score: state.score, lives: state.lives, time_left: HopCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed, ...HopCore.visible(state, mode),
      jumps: state.jumps, hits: state.hits, spawns: state.spawns,
    }),
  });

  if (params.get("autostart") !== "0") startGame();
  draw();
  drawn = false;  // ready() waits for the first animation frame, when the canvas is really on screen
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
