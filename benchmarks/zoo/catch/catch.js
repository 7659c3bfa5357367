// Zoo Catch: move the paddle with the held LEFT/RIGHT arrow keys; catch green squares (+1), dodge red ones
// (a red one caught costs one of 3 lives). A green one missed costs nothing. At most 20 s a game; R restarts.
//
// CatchCore (pure, no DOM): newGame(seed) -> state; tick(state, input) MUTATES state; drawRects(state, mode)
// -> [[x, y, w, h, "#rrggbb"], ...]. Every shape is an integer fillRect (no text, arcs or smoothing), so a
// screenshot equals the rect list pixel for pixel, and hakisa.state() lists objects exactly as drawn.
const CatchCore = (function () {
  "use strict";

  const W = 480, H = 320, HUD_H = 28;
  const GAME_TICKS = 20 * 60;                     // 20 s at 60 Hz
  const LIVES = 3;
  const PADDLE = { y: 294, w: 72, h: 12, speed: 5 };   // 300 px/s while a key is held
  const ITEM = 16;                                // items are 16x16 squares
  const FALL = { min: 1.6, max: 2.6 };            // px per tick: 96..156 px/s
  const GAP = { first: 20, min: 24, max: 48 };    // ticks between spawns
  const P_BAD = 0.35;
  const COLORS = {
    hud: "#202838", play: "#101820", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    paddle: "#d0d8e8", good: "#60f060", bad: "#f03030", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };

  // 5x7 bitmap font, bit 4 is the LEFT column (the same glyphs as Hakisa Pop, so readers see familiar digits)
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

  // mulberry32 with its word in the state, so a game is plain data and `?seed=N` replays it
  function rand(s) {
    s.rng = (s.rng + 0x6D2B79F5) >>> 0;
    let t = s.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  const gameSeed = (pageSeed, k) => ((pageSeed >>> 0) + Math.imul(7919, k)) >>> 0;

  function newGame(seed) {
    return {
      seed: seed >>> 0, rng: seed >>> 0, mode: "play", over: null,
      tick: 0, score: 0, lives: LIVES, gap: GAP.first, nextId: 1,
      paddleX: (W - PADDLE.w) / 2,
      items: [],                       // {id, bad, x, y, vy}: x integer, y float (top edge)
      caught: 0, hurt: 0, missed: 0,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;
  const overlaps = (a0, a1, b0, b1) => a0 < b1 && b0 < a1;

  // One 60 Hz tick. input: {left, right} held keys. The paddle moves first, then items fall; an item is
  // caught on the tick its bottom edge crosses the paddle's top edge while they overlap horizontally.
  function tick(s, input) {
    if (s.mode !== "play") return;
    s.tick += 1;
    const dir = (input.right ? 1 : 0) - (input.left ? 1 : 0);
    s.paddleX = Math.min(W - PADDLE.w, Math.max(0, s.paddleX + dir * PADDLE.speed));
    const px = Math.round(s.paddleX);
    const keep = [];
    for (const it of s.items) {
      const before = it.y + ITEM;
      it.y += it.vy;
      const after = it.y + ITEM;
      if (before <= PADDLE.y && after > PADDLE.y && overlaps(it.x, it.x + ITEM, px, px + PADDLE.w)) {
        if (it.bad) { s.hurt += 1; s.lives -= 1; } else { s.caught += 1; s.score += 1; }
        continue;
      }
      if (it.y >= H) { if (!it.bad) s.missed += 1; continue; }
      keep.push(it);
    }
    s.items = keep;
    if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; return; }
    s.gap -= 1;
    if (s.gap <= 0) {
      const x = Math.floor(rand(s) * (W - ITEM + 1));
      const vy = FALL.min + (FALL.max - FALL.min) * rand(s);
      const bad = rand(s) < P_BAD;
      s.items.push({ id: s.nextId++, bad, x, y: HUD_H - ITEM, vy });
      s.gap = GAP.min + Math.floor(rand(s) * (GAP.max - GAP.min + 1));
    }
    if (s.tick >= GAME_TICKS) { s.mode = "over"; s.over = "time"; }
  }

  // The items and paddle as drawn: integer rects clipped to the play area; items not yet visible are absent.
  function visible(s) {
    const items = [];
    for (const it of s.items) {
      const y = Math.round(it.y);
      const y0 = Math.max(y, HUD_H), y1 = Math.min(y + ITEM, H);
      if (y1 > y0) items.push({ id: it.id, kind: it.bad ? "bad" : "good", x: it.x, y: y0, w: ITEM, h: y1 - y0 });
    }
    return { items, paddle: { x: Math.round(s.paddleX), y: PADDLE.y, w: PADDLE.w, h: PADDLE.h } };
  }

  function pushRect(out, x, y, w, h, c) {
    const x0 = Math.max(x, 0), y0 = Math.max(y, 0), x1 = Math.min(x + w, W), y1 = Math.min(y + h, H);
    if (x1 > x0 && y1 > y0) out.push([x0, y0, x1 - x0, y1 - y0, c]);
  }

  function textRects(out, str, x, y, scale, advance, color) {
    for (let i = 0; i < str.length; i++) {
      const rows = FONT[str[i]];
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (rows[row] & (0b10000 >> col)) pushRect(out, x + i * advance + col * scale, y + row * scale, scale, scale, color);
        }
      }
    }
  }

  function drawRects(s, mode) {
    const out = [];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, 0, HUD_H, W, H - HUD_H, COLORS.play);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    const v = visible(s);
    for (const it of v.items) pushRect(out, it.x, it.y, it.w, it.h, it.kind === "bad" ? COLORS.bad : COLORS.good);
    pushRect(out, v.paddle.x, v.paddle.y, v.paddle.w, v.paddle.h, COLORS.paddle);
    if (mode !== "play") {
      pushRect(out, 0, OVERLAY.y, W, OVERLAY.h, COLORS.overlay);
      const lines = mode === "start" ? ["PRESS R"] : ["GAME OVER", "R: AGAIN"];
      const lineH = 7 * OVERLAY.scale;
      let y = OVERLAY.y + Math.floor((OVERLAY.h - (lines.length * lineH + (lines.length - 1) * OVERLAY.lineGap)) / 2);
      for (const line of lines) {
        const x = Math.floor((W - ((line.length - 1) * OVERLAY.advance + 5 * OVERLAY.scale)) / 2);
        textRects(out, line, x, y, OVERLAY.scale, OVERLAY.advance, COLORS.text);
        y += lineH + OVERLAY.lineGap;
      }
    }
    return out;
  }

  return Object.freeze({ W, H, HUD_H, GAME_TICKS, LIVES, gameSeed, newGame, tick, timeLeft, visible, drawRects });
})();

if (typeof module !== "undefined" && module.exports) module.exports = CatchCore;

// ---- the page: a fixed 60 Hz loop, held arrow keys, fillRect painting, window.hakisa -------------
if (typeof window !== "undefined" && typeof document !== "undefined") (function () {
  "use strict";
  const TICK_MS = 1000 / 60;
  const MAX_TICKS_PER_FRAME = 10;  // a stalled tab drops time instead of fast-forwarding the game
  const params = new URLSearchParams(location.search);
  const canvas = document.getElementById("game");
  const ctx = canvas.getContext("2d", { alpha: false });
  ctx.imageSmoothingEnabled = false;

  const parsed = params.has("seed") ? Number(params.get("seed")) : NaN;
  const pageSeed = Number.isFinite(parsed) ? parsed >>> 0 : (Math.random() * 0x100000000) >>> 0;
  let games = 0;
  let state = CatchCore.newGame(pageSeed);
  let mode = "start";
  const held = { left: false, right: false };
  let drawn = false;

  function startGame() {
    state = CatchCore.newGame(CatchCore.gameSeed(pageSeed, games));
    games += 1;
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of CatchCore.drawRects(state, mode)) {
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
      CatchCore.tick(state, held);
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  const ARROWS = { ArrowLeft: "left", ArrowRight: "right" };
  window.addEventListener("keydown", (e) => {
    if (ARROWS[e.code]) { e.preventDefault(); held[ARROWS[e.code]] = true; return; }
    if (e.code !== "KeyR") return;
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });
  window.addEventListener("keyup", (e) => { if (ARROWS[e.code]) { e.preventDefault(); held[ARROWS[e.code]] = false; } });
  window.addEventListener("blur", () => { held.left = held.right = false; });  // keys released while away

  window.hakisa = Object.freeze({
    ready: () => drawn,
    mode: () => mode,
    state: () => {
      const v = CatchCore.visible(state);
      return {
        mode, score: state.score, lives: state.lives, time_left: CatchCore.timeLeft(state), tick: state.tick,
        games, seed: state.seed, items: v.items, paddle: v.paddle,
        caught: state.caught, hurt: state.hurt, missed: state.missed, held: { left: held.left, right: held.right },
      };
    },
  });

  if (params.get("autostart") !== "0") startGame();
  draw();
  drawn = false;  // ready() waits for the first animation frame, when the canvas is really on screen
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
