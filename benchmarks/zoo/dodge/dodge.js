// Zoo Dodge: steer a small white ship with the arrow keys (held) through many small red hazards that fly
// across the play area in straight lines, and pick up the yellow coins that appear for a few seconds.
// +1 per coin, +1 per 2 s survived; a hazard that touches the ship costs one of 3 lives (then the ship blinks,
// untouchable, for 1.5 s). A game lasts at most 20 s. R starts the next game.
//
// Two parts in one file, as Hakisa Pop: DodgeCore (pure, no DOM: newGame, tick, drawRects) and the page
// (browser only: a fixed 60 Hz loop, keyboard input, fillRect painting, window.hakisa). Every shape is an
// integer fillRect, so a screenshot equals the rect list, pixel for pixel.
const DodgeCore = (function () {
  "use strict";

  // ---- geometry and timing (canvas px, 60 Hz ticks) -----------------------------------------------
  const W = 480, H = 320;
  const HUD_H = 28;
  const PLAY = [0, HUD_H, W, H - HUD_H];          // [x, y, w, h]
  const GAME_TICKS = 20 * 60;
  const LIVES = 3;
  const SHIP = 14, SHIP_SPEED = 3;                // px, px per tick (180 px/s), integer so the ship stays on pixels
  const INVULN_TICKS = 90;                        // 1.5 s untouchable after a hit
  const BLINK_TICKS = 6;                          // the ship is drawn 6 ticks, hidden 6 ticks, while untouchable
  const HAZ_MIN = 8, HAZ_MAX = 10;                // hazard side, px
  const HAZ_SPEED = [1.5, 3];                     // px per tick (90..180 px/s)
  const HAZ_GAP = [10, 18];                       // ticks between two hazard spawns
  const AIM = { x0: 60, x1: 420, y0: 70, y1: 280 };  // a hazard flies toward a point here, so it crosses the area
  const COIN = 12, COIN_TICKS = 180, COIN_GAP = 30;  // a coin stays 3 s; the next comes 0.5 s later
  const COIN_AREA = { x0: 16, x1: W - 16 - COIN, y0: HUD_H + 12, y1: H - 12 - COIN };
  const SURVIVE_TICKS = 120;                      // +1 per 2 s
  const COLORS = {
    hud: "#202838", play: "#101820", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    ship: "#ffffff", hazard: "#ff3030", coin: "#e0c020", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };

  // ---- 5x7 bitmap font (Hakisa Pop's): 7 rows per glyph, bit 4 is the LEFT column -------------------
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

  // mulberry32 with its word kept in the state, so a state is plain, copyable data
  function rand(s) {
    s.rng = (s.rng + 0x6D2B79F5) >>> 0;
    let t = s.rng;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  const uniform = (s, a, b) => a + (b - a) * rand(s);

  // the k-th game of a page with seed `pageSeed`: game 0 is newGame(pageSeed) itself
  const gameSeed = (pageSeed, k) => ((pageSeed >>> 0) + Math.imul(7919, k)) >>> 0;

  function newGame(seed) {
    return {
      seed: seed >>> 0, rng: seed >>> 0, mode: "play", over: null,
      tick: 0, score: 0, lives: LIVES, coins: 0, hits: 0,
      ship: { x: Math.round((W - SHIP) / 2), y: HUD_H + Math.round((H - HUD_H - SHIP) / 2) },
      invuln: 0,
      hazards: [],              // {id, x, y, vx, vy, size}: floats; drawn at rounded x, y
      nextId: 1, hazGap: 20,
      coin: null,               // {x, y, age}: integer position
      coinGap: COIN_GAP,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;
  const hazRect = (h) => [Math.round(h.x), Math.round(h.y), h.size, h.size];
  const overlaps = (a, b) => a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];

  // A hazard starts just outside one edge of the play area and flies toward a point of AIM.
  function spawnHazard(s) {
    const size = HAZ_MIN + Math.floor(rand(s) * (HAZ_MAX - HAZ_MIN + 1));
    const edge = Math.floor(rand(s) * 4), along = rand(s);
    let x, y;
    if (edge === 0) { x = -size; y = HUD_H + along * (H - HUD_H - size); }
    else if (edge === 1) { x = W; y = HUD_H + along * (H - HUD_H - size); }
    else if (edge === 2) { x = along * (W - size); y = HUD_H - size; }
    else { x = along * (W - size); y = H; }
    const tx = uniform(s, AIM.x0, AIM.x1), ty = uniform(s, AIM.y0, AIM.y1);
    const dx = tx - x, dy = ty - y, d = Math.hypot(dx, dy) || 1, v = uniform(s, HAZ_SPEED[0], HAZ_SPEED[1]);
    s.hazards.push({ id: s.nextId++, x, y, vx: v * dx / d, vy: v * dy / d, size });
  }

  // out of the play area for good: past an edge and moving away from it
  function gone(h) {
    return (h.x + h.size <= 0 && h.vx <= 0) || (h.x >= W && h.vx >= 0) ||
      (h.y + h.size <= HUD_H && h.vy <= 0) || (h.y >= H && h.vy >= 0);
  }

  function loseLife(s) {
    s.lives -= 1; s.hits += 1;
    s.invuln = INVULN_TICKS;
    if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; }
  }

  // One 60 Hz tick. keys: {up, down, left, right} booleans held now. Order: the ship moves, hazards move and
  // spawn, then contacts are judged on the rects as they will be drawn, then the coin and survival clocks.
  function tick(s, keys) {
    if (s.mode !== "play") return;
    s.tick += 1;
    const k = keys || {};
    const dx = (k.right ? 1 : 0) - (k.left ? 1 : 0), dy = (k.down ? 1 : 0) - (k.up ? 1 : 0);
    s.ship.x = Math.min(Math.max(s.ship.x + dx * SHIP_SPEED, 0), W - SHIP);
    s.ship.y = Math.min(Math.max(s.ship.y + dy * SHIP_SPEED, HUD_H), H - SHIP);

    for (const h of s.hazards) { h.x += h.vx; h.y += h.vy; }
    s.hazards = s.hazards.filter((h) => !gone(h));
    if (--s.hazGap <= 0) {
      spawnHazard(s);
      s.hazGap = HAZ_GAP[0] + Math.floor(rand(s) * (HAZ_GAP[1] - HAZ_GAP[0] + 1));
    }

    const ship = [s.ship.x, s.ship.y, SHIP, SHIP];
    if (s.invuln > 0) s.invuln -= 1;
    else {
      const i = s.hazards.findIndex((h) => overlaps(ship, hazRect(h)));
      if (i >= 0) { s.hazards.splice(i, 1); loseLife(s); }
    }
    if (s.mode !== "play") return;

    if (s.coin) {
      s.coin.age += 1;
      if (overlaps(ship, [s.coin.x, s.coin.y, COIN, COIN])) {
        s.score += 1; s.coins += 1; s.coin = null; s.coinGap = COIN_GAP;
      } else if (s.coin.age >= COIN_TICKS) { s.coin = null; s.coinGap = COIN_GAP; }
    } else if (--s.coinGap <= 0) {
      s.coin = {
        x: Math.floor(uniform(s, COIN_AREA.x0, COIN_AREA.x1 + 1)),
        y: Math.floor(uniform(s, COIN_AREA.y0, COIN_AREA.y1 + 1)), age: 0,
      };
    }
    if (s.tick % SURVIVE_TICKS === 0) s.score += 1;
    if (s.tick >= GAME_TICKS) { s.mode = "over"; s.over = "time"; }
  }

  // ---- drawing: integer rects clipped to the canvas (objects also to the play area) ----------------
  function pushRect(out, x, y, w, h, c, clip) {
    const c0 = clip || [0, 0, W, H];
    const x0 = Math.max(x, c0[0]), y0 = Math.max(y, c0[1]);
    const x1 = Math.min(x + w, c0[0] + c0[2]), y1 = Math.min(y + h, c0[1] + c0[3]);
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
  const textWidth = (str, scale, advance) => (str.length - 1) * advance + 5 * scale;

  const shipVisible = (s) => s.invuln === 0 || Math.floor(s.invuln / BLINK_TICKS) % 2 === 0;

  // What is on screen now, in canvas px: the objects as drawn (a hazard only once part of it is inside
  // the play area; its rect is where it is drawn, before the play area cuts it).
  function visible(s) {
    return {
      ship: { x: s.ship.x, y: s.ship.y, w: SHIP, h: SHIP, drawn: shipVisible(s) },
      hazards: s.hazards.map((h) => ({ id: h.id, rect: hazRect(h) }))
        .filter((h) => overlaps(h.rect, PLAY))
        .map(({ id, rect }) => ({ id, x: rect[0], y: rect[1], w: rect[2], h: rect[3] })),
      coin: s.coin ? { x: s.coin.x, y: s.coin.y, w: COIN, h: COIN } : null,
    };
  }

  function drawRects(s, view) {
    const mode = (view && view.mode) || s.mode;
    const out = [];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, ...PLAY, COLORS.play);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    const v = visible(s);
    if (v.coin) pushRect(out, v.coin.x, v.coin.y, COIN, COIN, COLORS.coin, PLAY);
    for (const h of v.hazards) pushRect(out, h.x, h.y, h.w, h.h, COLORS.hazard, PLAY);
    if (v.ship.drawn) pushRect(out, v.ship.x, v.ship.y, SHIP, SHIP, COLORS.ship, PLAY);
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
    W, H, HUD_H, PLAY, GAME_TICKS, LIVES, SHIP, SHIP_SPEED, COIN, COLORS,
    gameSeed, newGame, tick, timeLeft, visible, drawRects,
  });
})();

if (typeof module !== "undefined" && module.exports) module.exports = DodgeCore;

// ---- the page ------------------------------------------------------------------------------------
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
  let state = DodgeCore.newGame(pageSeed);
  let mode = "start";              // "start" | "play" | "over"
  const keys = { up: false, down: false, left: false, right: false };
  const ARROWS = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" };
  let shown = null;                // what the last draw put on the canvas (the hook reports this)

  function startGame() {
    state = DodgeCore.newGame(DodgeCore.gameSeed(pageSeed, games));
    games += 1;
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of DodgeCore.drawRects(state, { mode })) {
      ctx.fillStyle = c;
      ctx.fillRect(x, y, w, h);
    }
    shown = {
      mode, score: state.score, lives: state.lives, time_left: DodgeCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed, invulnerable: state.invuln > 0, coins: state.coins, hits: state.hits,
      ...DodgeCore.visible(state),
    };
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
      DodgeCore.tick(state, keys);
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  window.addEventListener("keydown", (e) => {
    if (ARROWS[e.code]) { e.preventDefault(); keys[ARROWS[e.code]] = true; return; }
    if (e.code !== "KeyR") return;
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });
  window.addEventListener("keyup", (e) => { if (ARROWS[e.code]) keys[ARROWS[e.code]] = false; });
  window.addEventListener("blur", () => { for (const k in keys) keys[k] = false; });  // no key stuck down

  // the read-only test hook (tests and a scripted teacher; an agent only sees pixels)
  window.hakisa = Object.freeze({
    ready: () => shown !== null,
    mode: () => mode,
    state: () => JSON.parse(JSON.stringify(shown)),
  });

  if (params.get("autostart") !== "0") startGame();
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
