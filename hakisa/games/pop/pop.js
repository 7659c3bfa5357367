// Hakisa Pop: click the shrinking yellow disc before it vanishes. Played by LEFT-CLICKING at absolute
// canvas positions, so an agent needs only the screen and a mouse (no simulator exists for this game).
//
// Two parts in one file, so the page and the Node tests (tests/pop_core.js) run the very same rules:
//   PopCore (pure, no DOM): newGame(seed) -> state; tick(state, clicks) -> events (MUTATES state);
//                           drawRects(state, view) -> [[x, y, w, h, "#rrggbb"], ...] in painting order.
//   the page (browser only): a fixed 60 Hz loop, mouse/keyboard input, fillRect painting, window.hakisa.
//
// Pixels are exact and deterministic: every shape (text and the disc included) is integer fillRects, no
// fillText, no arcs, no smoothing, no DPR scaling. So a screenshot equals the rect list, pixel for pixel.
const PopCore = (function () {
  "use strict";

  // ---- geometry and timing (canvas px, 60 Hz ticks); other code reads these pixels ----------------
  const W = 480, H = 320;
  const HUD_H = 28;                               // rows 0..27
  const GAME_TICKS = 20 * 60;                     // 20 s
  const LIVES = 3;
  const GAP_TICKS = 20;                           // ticks with no target after a hit, an expiry, and at start
  const LIFE_TICKS = 180;                         // a target shrinks from R0 to 0 over 3 s
  const R0 = 34;
  const SPEED = 45 / 60;                          // 45 px/s, per tick
  const SPAWN = { x0: 40, x1: 440, y0: 64, y1: 290 };
  const BOUNDS = { x0: 34, x1: 446, y0: 62, y1: 292 };  // the centre bounces inside these
  const HIT_SLACK = 2;                            // see clickHits
  const COLORS = {
    hud: "#202838", play: "#101820", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    target: "#ffe040", cross: "#80ff80", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };        // glyph 15x21 + 6 px gap
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };          // w per life: [300, 8, 90, 12] at 3 lives
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };           // [404, 8, 68, 12] when full
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };  // glyph 10x14 + 4 px gap
  const CROSS_ARM = 4;                            // 9 px lines: 4 + centre + 4

  // ---- 5x7 bitmap font: 7 rows per glyph, bit 4 (0b10000) is the LEFT column --------------------
  // Digits and O differ (0 has a diagonal) so a reader of the pixels never confuses them.
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
    "T": [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
    "V": [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
    " ": [0, 0, 0, 0, 0, 0, 0],
    ":": [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
  };

  // ---- PRNG: mulberry32, its 32-bit word kept IN the state so a state is plain, copyable data -------
  function rand(s) {
    s.rng = (s.rng + 0x6D2B79F5) >>> 0;
    let t = s.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;  // [0, 1)
  }

  // The seed of the k-th game (k = 0, 1, ...) a page with seed `pageSeed` starts: the first game uses the
  // page seed itself, so `?seed=N` reproduces newGame(N) exactly; later games differ but stay reproducible.
  function gameSeed(pageSeed, k) {
    return ((pageSeed >>> 0) + Math.imul(7919, k)) >>> 0;
  }

  function newGame(seed) {
    return {
      seed: seed >>> 0, rng: seed >>> 0,
      mode: "play",          // "play" | "over" (the page adds "start" before its first game)
      over: null,            // why it ended: "lives" | "time"
      tick: 0, score: 0, lives: LIVES,
      gap: GAP_TICKS,        // ticks left before the next spawn (counts only while there is no target)
      target: null,          // {x, y, vx, vy, age, r}: floats, r = R0 * (1 - age / LIFE_TICKS)
      hits: 0, misses: 0, expiries: 0, clicks: 0, spawns: 0,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;

  // A click hits when it is within r + HIT_SLACK of the (float) centre. WHY the slack: the disc is drawn
  // at the rounded centre with radius ceil(r), so a drawn pixel can lie up to ~1.7 px beyond r from the
  // float centre; 2 px makes every yellow pixel a hit and little else.
  function clickHits(t, x, y) {
    const dx = x - t.x, dy = y - t.y;
    return dx * dx + dy * dy <= (t.r + HIT_SLACK) * (t.r + HIT_SLACK);
  }

  function spawn(s) {
    const x = SPAWN.x0 + (SPAWN.x1 - SPAWN.x0) * rand(s);
    const y = SPAWN.y0 + (SPAWN.y1 - SPAWN.y0) * rand(s);
    const a = 2 * Math.PI * rand(s);
    s.target = { x, y, vx: SPEED * Math.cos(a), vy: SPEED * Math.sin(a), age: 0, r: R0 };
    s.spawns += 1;
    return { type: "spawn", x, y };
  }

  // Reflect a coordinate into [lo, hi] (a speed < 1 px/tick never overshoots by more than the range).
  function bounce(t, p, v, lo, hi) {
    if (t[p] < lo) { t[p] = 2 * lo - t[p]; t[v] = -t[v]; }
    else if (t[p] > hi) { t[p] = 2 * hi - t[p]; t[v] = -t[v]; }
  }

  function loseLife(s, events) {
    s.lives -= 1;
    if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; events.push({ type: "over", reason: "lives" }); }
  }

  // One 60 Hz tick. `clicks`: [[x, y], ...] canvas px, in the order they happened since the last tick.
  // Clicks are judged FIRST, against the target as it was on screen (the state after the previous tick);
  // then the target moves/shrinks/expires, or the gap counts down to a spawn. Returns the events.
  function tick(s, clicks) {
    const events = [];
    if (s.mode !== "play") return events;  // a finished game ignores clicks and time
    s.tick += 1;
    const had = s.target !== null;
    for (const [x, y] of clicks || []) {
      if (s.mode !== "play") break;        // the game ended on an earlier click: the rest are not processed
      s.clicks += 1;
      if (s.target && clickHits(s.target, x, y)) {
        s.score += 1; s.hits += 1; s.target = null; s.gap = GAP_TICKS;
        events.push({ type: "hit", x, y });
      } else {
        s.misses += 1;                     // off target, or during the gap: both cost a life
        events.push({ type: "miss", x, y });
        loseLife(s, events);
      }
    }
    if (s.mode !== "play") return events;

    const t = s.target;
    if (t) {
      t.x += t.vx; t.y += t.vy;
      bounce(t, "x", "vx", BOUNDS.x0, BOUNDS.x1);
      bounce(t, "y", "vy", BOUNDS.y0, BOUNDS.y1);
      t.age += 1;
      t.r = R0 * (LIFE_TICKS - t.age) / LIFE_TICKS;
      if (t.age >= LIFE_TICKS) {
        s.target = null; s.gap = GAP_TICKS; s.expiries += 1;
        events.push({ type: "expire" });
        loseLife(s, events);
      }
    } else if (had) {
      // removed by a hit THIS tick: the gap starts counting next tick, so a hit, an expiry and the start
      // of a game all leave exactly GAP_TICKS drawn frames without a target
    } else {
      s.gap -= 1;
      if (s.gap <= 0) events.push(spawn(s));
    }
    if (s.mode === "play" && s.tick >= GAME_TICKS) {
      s.mode = "over"; s.over = "time"; events.push({ type: "over", reason: "time" });
    }
    return events;
  }

  // ---- drawing: a list of integer rects, clipped to the canvas ------------------------------------
  function pushRect(out, x, y, w, h, c, clip) {
    const c0 = clip || [0, 0, W, H];
    const x0 = Math.max(x, c0[0]), y0 = Math.max(y, c0[1]);
    const x1 = Math.min(x + w, c0[0] + c0[2]), y1 = Math.min(y + h, c0[1] + c0[3]);
    if (x1 > x0 && y1 > y0) out.push([x0, y0, x1 - x0, y1 - y0, c]);
  }

  // Text as one (scale x scale) rect per lit font pixel; `advance` is the glyph pitch in canvas px.
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

  // A filled disc as one 1-px-tall span per row: half-width floor(sqrt(R^2 - dy^2)), no anti-aliasing.
  function discRects(out, cx, cy, R, color, clip) {
    for (let dy = -R; dy <= R; dy++) {
      const hw = Math.floor(Math.sqrt(R * R - dy * dy));
      pushRect(out, cx - hw, cy + dy, 2 * hw + 1, 1, color, clip);
    }
  }

  // view: {mode: "start"|"play"|"over" (defaults to the state's), mouse: null | [x, y]}.
  function drawRects(s, view) {
    const mode = (view && view.mode) || s.mode;
    const mouse = view && view.mouse;
    const out = [];
    const play = [0, HUD_H, W, H - HUD_H];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, 0, HUD_H, W, H - HUD_H, COLORS.play);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    if (s.target && s.target.r > 0) {
      // Math.round is round-half-up, the same as floor(v + 0.5) for these positive values
      discRects(out, Math.round(s.target.x), Math.round(s.target.y), Math.ceil(s.target.r), COLORS.target, play);
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
    W, H, HUD_H, GAME_TICKS, LIVES, GAP_TICKS, LIFE_TICKS, R0, SPEED, SPAWN, BOUNDS, HIT_SLACK,
    COLORS, SCORE, LIVES_BAR, TIME_BAR, OVERLAY, CROSS_ARM, FONT,
    gameSeed, newGame, tick, timeLeft, clickHits, drawRects, textRects, textWidth,
  });
})();

if (typeof module !== "undefined" && module.exports) module.exports = PopCore;

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
  let games = 0;                 // games started on this page
  let state = PopCore.newGame(pageSeed);  // before the first game: a fresh game, shown under the start overlay
  let mode = "start";            // "start" | "play" | "over"
  let mouse = null;              // last [x, y] inside the canvas, canvas px; null until the mouse enters
  let pending = [];              // clicks since the last tick, judged at the next tick (tick-exact logic)
  let drawn = false;

  function startGame() {
    state = PopCore.newGame(PopCore.gameSeed(pageSeed, games));
    games += 1;
    pending = [];
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of PopCore.drawRects(state, { mode, mouse })) {
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
      PopCore.tick(state, pending);
      pending = [];
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  // offsetX/Y are relative to the canvas's top-left; the canvas has no border, padding or CSS scaling,
  // so they are canvas px. Floor them: a screen pixel is an integer position.
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
      mode, score: state.score, lives: state.lives, time_left: PopCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed,
      target: state.target ? { x: state.target.x, y: state.target.y, r: state.target.r } : null,
      hits: state.hits, misses: state.misses, expiries: state.expiries, clicks: state.clicks,
      mouse: mouse ? [mouse[0], mouse[1]] : null,
    }),
  });

  if (params.get("autostart") !== "0") startGame();
  draw();
  drawn = false;  // ready() waits for the first animation frame, when the canvas is really on screen
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
