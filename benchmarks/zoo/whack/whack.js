// Hakisa Whack: 15 holes in a 5x3 grid; small moles and bombs pop up in random holes for about a second.
// LEFT-CLICK a mole: +1. Click a bomb: one of 3 lives is lost. A click anywhere else does nothing, and a
// sprite that goes back down costs nothing. A game lasts at most 20 s.
//
// Two parts in one file, as Hakisa Pop: WhackCore (pure, no DOM: newGame, tick, drawRects) and the page (a
// fixed 60 Hz loop, the mouse, fillRect painting, window.hakisa). Every shape is integer fillRects, so a
// screenshot equals the rect list pixel for pixel, and a click hits exactly the pixels a sprite covers.
const WhackCore = (function () {
  "use strict";

  // ---- geometry and timing (canvas px, 60 Hz ticks) ----------------------------------------------
  const W = 480, H = 320;
  const HUD_H = 28;                               // rows 0..27
  const GAME_TICKS = 20 * 60;                     // 20 s
  const LIVES = 3;
  const COLS = 5, ROWS = 3;
  const HOLE = { w: 28, h: 16, x0: 48, dx: 96, y0: 84, dy: 90 };  // hole centres: x0 + i*dx, y0 + j*dy
  const SPRITE = 10;                              // moles and bombs are 10x10, centred in their hole
  const FIRST_TICKS = 30;                         // nothing up for the first 0.5 s
  const GAP0 = 18, GAP1 = 36;                     // ticks from one pop-up to the next
  const UP0 = 48, UP1 = 72;                       // ticks a sprite stays up (0.8..1.2 s)
  const COOL_TICKS = 18;                          // a hole stays empty this long after its sprite goes
  const P_BOMB = 0.25;
  const COLORS = {
    hud: "#202838", field: "#6a8a5a", hole: "#2a1e14", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    mole: "#f0b878", eye: "#2a1e14", bomb: "#e02828", spark: "#ffe040", cross: "#ffffff", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };        // glyph 15x21 + 6 px gap
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };          // [300, 8, 90, 12] at 3 lives
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };           // [404, 8, 68, 12] when full
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };
  const CROSS_ARM = 4;                            // 9 px lines: 4 + centre + 4

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

  // Hole k (0..14, row by row): its centre and its drawn rect.
  function holeCentre(k) {
    return [HOLE.x0 + (k % COLS) * HOLE.dx, HOLE.y0 + Math.floor(k / COLS) * HOLE.dy];
  }
  function holeRect(k) {
    const [cx, cy] = holeCentre(k);
    return [cx - HOLE.w / 2, cy - HOLE.h / 2, HOLE.w, HOLE.h];
  }
  function spriteRect(k) {
    const [cx, cy] = holeCentre(k);
    return [cx - SPRITE / 2, cy - SPRITE / 2, SPRITE, SPRITE];
  }

  function newGame(seed) {
    return {
      seed: seed >>> 0, rng: seed >>> 0,
      mode: "play", over: null,  // over: why it ended, "lives" | "time"
      tick: 0, score: 0, lives: LIVES,
      gap: FIRST_TICKS,          // ticks to the next pop-up
      up: [],                    // {id, kind: "mole"|"bomb", hole, left (ticks still up)}
      cool: new Array(COLS * ROWS).fill(0),  // per hole: ticks it must stay empty
      nextId: 1,
      whacks: 0, bombs: 0, clicks: 0, spawns: 0, escaped: 0,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;
  const inside = (r, x, y) => x >= r[0] && x < r[0] + r[2] && y >= r[1] && y < r[1] + r[3];

  function popUp(s) {
    const taken = new Set(s.up.map((o) => o.hole));
    const free = [];
    for (let k = 0; k < COLS * ROWS; k++) if (!taken.has(k) && s.cool[k] <= 0) free.push(k);
    if (!free.length) return null;  // every hole busy: try again next tick
    const hole = free[Math.floor(rand(s) * free.length)];
    const kind = rand(s) < P_BOMB ? "bomb" : "mole";
    const o = { id: s.nextId++, kind, hole, left: randInt(s, UP0, UP1) };
    s.up.push(o);
    s.spawns += 1;
    s.gap = randInt(s, GAP0, GAP1);
    return { type: "spawn", kind, hole, id: o.id };
  }

  function goDown(s, o) {
    s.up = s.up.filter((u) => u !== o);
    s.cool[o.hole] = COOL_TICKS;
  }

  // One 60 Hz tick. `clicks`: [[x, y], ...] canvas px since the last tick, judged FIRST against the sprites
  // as they were drawn (the state after the previous tick); then sprites age and new ones pop up.
  function tick(s, clicks) {
    const events = [];
    if (s.mode !== "play") return events;
    s.tick += 1;
    for (const [x, y] of clicks || []) {
      if (s.mode !== "play") break;
      s.clicks += 1;
      const o = s.up.find((u) => inside(spriteRect(u.hole), x, y));
      if (!o) continue;  // an empty hole or the field: nothing happens
      goDown(s, o);
      if (o.kind === "mole") {
        s.score += 1; s.whacks += 1;
        events.push({ type: "whack", id: o.id, hole: o.hole });
      } else {
        s.bombs += 1; s.lives -= 1;
        events.push({ type: "bomb", id: o.id, hole: o.hole });
        if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; events.push({ type: "over", reason: "lives" }); }
      }
    }
    if (s.mode !== "play") return events;
    for (let k = 0; k < s.cool.length; k++) if (s.cool[k] > 0) s.cool[k] -= 1;
    for (const o of [...s.up]) {
      o.left -= 1;
      if (o.left <= 0) {
        goDown(s, o);
        if (o.kind === "mole") s.escaped += 1;
        events.push({ type: "down", id: o.id, kind: o.kind });
      }
    }
    s.gap -= 1;
    if (s.gap <= 0) {
      const e = popUp(s);
      if (e) events.push(e);
    }
    if (s.tick >= GAME_TICKS) { s.mode = "over"; s.over = "time"; events.push({ type: "over", reason: "time" }); }
    return events;
  }

  // ---- drawing: a list of integer rects, clipped to the canvas ------------------------------------
  function pushRect(out, x, y, w, h, c) {
    const x0 = Math.max(x, 0), y0 = Math.max(y, 0);
    const x1 = Math.min(x + w, W), y1 = Math.min(y + h, H);
    if (x1 > x0 && y1 > y0) out.push([x0, y0, x1 - x0, y1 - y0, c]);
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

  // What is on screen this frame: the test hook reports exactly this. Outside play, the sprites that the
  // start or game-over band covers are left out.
  function visible(s, mode) {
    const out = [];
    for (const o of s.up) {
      const [x, y, w, h] = spriteRect(o.hole);
      const covered = y < OVERLAY.y + OVERLAY.h && y + h > OVERLAY.y;
      if ((mode || s.mode) === "play" || !covered) out.push({ id: o.id, kind: o.kind, hole: o.hole, x, y, w, h });
    }
    return out;
  }

  // view: {mode: "start"|"play"|"over" (defaults to the state's), mouse: null | [x, y]}.
  function drawRects(s, view) {
    const mode = (view && view.mode) || s.mode;
    const mouse = view && view.mouse;
    const out = [];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, 0, HUD_H, W, H - HUD_H, COLORS.field);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    for (let k = 0; k < COLS * ROWS; k++) pushRect(out, ...holeRect(k), COLORS.hole);
    for (const o of s.up) {
      const [x, y] = spriteRect(o.hole);
      if (o.kind === "mole") {
        pushRect(out, x, y, SPRITE, SPRITE, COLORS.mole);
        pushRect(out, x + 2, y + 2, 2, 2, COLORS.eye);
        pushRect(out, x + 6, y + 2, 2, 2, COLORS.eye);
      } else {
        pushRect(out, x, y, SPRITE, SPRITE, COLORS.bomb);
        pushRect(out, x + 7, y + 1, 2, 2, COLORS.spark);
      }
    }
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
    } else if (mouse) {
      // the crosshair last, on top of everything (the page hides the system cursor)
      const [mx, my] = mouse;
      pushRect(out, mx - CROSS_ARM, my, 2 * CROSS_ARM + 1, 1, COLORS.cross);
      pushRect(out, mx, my - CROSS_ARM, 1, 2 * CROSS_ARM + 1, COLORS.cross);
    }
    return out;
  }

  return Object.freeze({
    W, H, HUD_H, GAME_TICKS, LIVES, COLS, ROWS, HOLE, SPRITE, UP0, UP1, P_BOMB, COLORS, SCORE, LIVES_BAR,
    TIME_BAR, OVERLAY, CROSS_ARM,
    gameSeed, newGame, tick, timeLeft, holeCentre, holeRect, spriteRect, visible, drawRects,
  });
})();

if (typeof module !== "undefined" && module.exports) module.exports = WhackCore;

// ---- the page ------------------------------------------------------------------------------------
if (typeof window !== "undefined" && typeof document !== "undefined") (function () {
  "use strict";
  const TICK_MS = 1000 / 60;
  const MAX_TICKS_PER_FRAME = 10;  // a hidden/stalled tab drops time instead of fast-forwarding the game
  const params = new URLSearchParams(location.search);
  const canvas = document.getElementById("game");
  const ctx = canvas.getContext("2d", { alpha: false });
  ctx.imageSmoothingEnabled = false;

  const parsed = params.has("seed") ? Number(params.get("seed")) : NaN;
  const pageSeed = Number.isFinite(parsed) ? parsed >>> 0 : (Math.random() * 0x100000000) >>> 0;
  let games = 0;
  let state = WhackCore.newGame(pageSeed);
  let mode = "start";            // "start" | "play" | "over"
  let mouse = null;              // last [x, y] inside the canvas, canvas px; null until the mouse enters
  let pending = [];              // clicks since the last tick, judged at the next tick
  let drawn = false;

  function startGame() {
    state = WhackCore.newGame(WhackCore.gameSeed(pageSeed, games));
    games += 1;
    pending = [];
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of WhackCore.drawRects(state, { mode, mouse })) {
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
      WhackCore.tick(state, pending);
      pending = [];
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  // offsetX/Y are canvas px (no border, padding or CSS scaling); a screen pixel is an integer position
  const canvasPos = (e) => [Math.floor(e.offsetX), Math.floor(e.offsetY)];
  canvas.addEventListener("mousemove", (e) => { mouse = canvasPos(e); });
  canvas.addEventListener("mousedown", (e) => {
    mouse = canvasPos(e);
    if (e.button !== 0 || mode !== "play") return;  // only the left button, only in play
    pending.push(mouse);
  });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  window.addEventListener("keydown", (e) => {
    if (e.code !== "KeyR") return;  // every other key is ignored
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });

  // ---- the read-only test hook (tests and a scripted teacher; an agent only sees pixels) ----------
  window.hakisa = Object.freeze({
    ready: () => drawn,
    mode: () => mode,
    state: () => ({
      mode, score: state.score, lives: state.lives, time_left: WhackCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed, sprites: WhackCore.visible(state, mode),
      whacks: state.whacks, bombs: state.bombs, escaped: state.escaped, clicks: state.clicks, spawns: state.spawns,
      mouse: mouse ? [mouse[0], mouse[1]] : null,
    }),
  });

  if (params.get("autostart") !== "0") startGame();
  draw();
  drawn = false;  // ready() waits for the first animation frame, when the canvas is really on screen
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
