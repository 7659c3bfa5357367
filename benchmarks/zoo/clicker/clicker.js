// Zoo Clicker: discs rise from the bottom of a light canvas. Left-click a bright-coloured disc (+1); a dark
// disc clicked costs one of 3 lives. A click on nothing, or a disc that rises away, costs nothing. At most 20 s
// a game; R restarts.
//
// ClickerCore (pure, no DOM): newGame(seed) -> state; tick(state, clicks) MUTATES state; drawRects(state, view)
// -> [[x, y, w, h, "#rrggbb"], ...]. Every shape is an integer fillRect (discs as 1-px spans, no arcs or
// smoothing), so a screenshot equals the rect list, and a click hits exactly the pixels drawn.
const ClickerCore = (function () {
  "use strict";

  const W = 480, H = 320, HUD_H = 28;
  const GAME_TICKS = 20 * 60;                     // 20 s at 60 Hz
  const LIVES = 3;
  const R = { min: 16, max: 19 };                 // disc radius, px (32..38 px across)
  const RISE = { min: 40 / 60, max: 80 / 60 };    // px per tick: 40..80 px/s
  const GAP = { first: 10, min: 18, max: 36 };    // ticks between spawns
  const P_DARK = 0.35;
  const BRIGHT = ["#ff8020", "#20b0ff", "#ff40c0"];
  const DARK = ["#283040", "#402818"];
  const COLORS = {
    hud: "#202838", play: "#e8e4d8", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    cross: "#101010", overlay: "#6030c0",
  };
  const SCORE = { x: 8, y: 4, scale: 3, advance: 21 };
  const LIVES_BAR = { x: 300, y: 8, w: 30, h: 12 };
  const TIME_BAR = { x: 404, y: 8, w: 68, h: 12 };
  const OVERLAY = { y: 120, h: 80, scale: 2, advance: 14, lineGap: 10 };
  const CROSS_ARM = 4;

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
      discs: [],                        // {id, dark, color, x, y, r, vy}: x, r integers, y float; oldest first
      hits: 0, bad: 0, misses: 0, escaped: 0,
    };
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;

  // A click hits a disc when it falls on one of the disc's drawn pixels (see discRects), inside the play area.
  function onDisc(d, x, y) {
    const cy = Math.round(d.y), dy = y - cy;
    if (y < HUD_H || Math.abs(dy) > d.r) return false;
    return Math.abs(x - d.x) <= Math.floor(Math.sqrt(d.r * d.r - dy * dy));
  }

  // One 60 Hz tick. clicks: [[x, y], ...] canvas px since the last tick, judged FIRST against the discs as they
  // were drawn (the topmost, i.e. newest, disc under the click); then the discs rise and a new one may spawn.
  function tick(s, clicks) {
    if (s.mode !== "play") return;
    s.tick += 1;
    for (const [x, y] of clicks || []) {
      if (s.mode !== "play") break;
      let hit = -1;
      for (let i = s.discs.length - 1; i >= 0; i--) if (onDisc(s.discs[i], x, y)) { hit = i; break; }
      if (hit < 0) { s.misses += 1; continue; }
      const d = s.discs.splice(hit, 1)[0];
      if (d.dark) {
        s.bad += 1; s.lives -= 1;
        if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; }
      } else { s.hits += 1; s.score += 1; }
    }
    if (s.mode !== "play") return;
    const keep = [];
    for (const d of s.discs) {
      d.y -= d.vy;
      if (Math.round(d.y) + d.r < HUD_H) { if (!d.dark) s.escaped += 1; continue; }  // gone under the HUD
      keep.push(d);
    }
    s.discs = keep;
    s.gap -= 1;
    if (s.gap <= 0) {
      const r = R.min + Math.floor(rand(s) * (R.max - R.min + 1));
      const x = r + 2 + Math.floor(rand(s) * (W - 2 * r - 3));
      const vy = RISE.min + (RISE.max - RISE.min) * rand(s);
      const dark = rand(s) < P_DARK;
      const pal = dark ? DARK : BRIGHT;
      const color = pal[Math.floor(rand(s) * pal.length)];
      s.discs.push({ id: s.nextId++, dark, color, x, y: H + r, r, vy });  // starts just below the canvas
      s.gap = GAP.min + Math.floor(rand(s) * (GAP.max - GAP.min + 1));
    }
    if (s.tick >= GAME_TICKS) { s.mode = "over"; s.over = "time"; }
  }

  // The discs as drawn, oldest first (the last one is on top): integer centre and radius; a disc with no pixel
  // in the play area is not listed.
  function visible(s) {
    const out = [];
    for (const d of s.discs) {
      const cy = Math.round(d.y);
      if (cy - d.r < H && cy + d.r >= HUD_H) out.push({ id: d.id, kind: d.dark ? "dark" : "bright", x: d.x, y: cy, r: d.r });
    }
    return out;
  }

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

  // A filled disc as one 1-px-tall span per row: half-width floor(sqrt(r^2 - dy^2)), as onDisc judges clicks.
  function discRects(out, cx, cy, r, color, clip) {
    for (let dy = -r; dy <= r; dy++) {
      const hw = Math.floor(Math.sqrt(r * r - dy * dy));
      pushRect(out, cx - hw, cy + dy, 2 * hw + 1, 1, color, clip);
    }
  }

  // view: {mode, mouse: null | [x, y]}
  function drawRects(s, view) {
    const mode = view.mode, out = [], play = [0, HUD_H, W, H - HUD_H];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, 0, HUD_H, W, H - HUD_H, COLORS.play);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    for (const d of s.discs) discRects(out, d.x, Math.round(d.y), d.r, d.color, play);
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
    } else if (view.mouse) {
      // the crosshair last, on top of everything (the page hides the system cursor)
      const [mx, my] = view.mouse;
      pushRect(out, mx - CROSS_ARM, my, 2 * CROSS_ARM + 1, 1, COLORS.cross);
      pushRect(out, mx, my - CROSS_ARM, 1, 2 * CROSS_ARM + 1, COLORS.cross);
    }
    return out;
  }

  return Object.freeze({ W, H, HUD_H, GAME_TICKS, LIVES, gameSeed, newGame, tick, timeLeft, onDisc, visible, drawRects });
})();

if (typeof module !== "undefined" && module.exports) module.exports = ClickerCore;

// ---- the page: a fixed 60 Hz loop, mouse and R, fillRect painting, window.hakisa ----------------
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
  let state = ClickerCore.newGame(pageSeed);
  let mode = "start";
  let mouse = null;     // last [x, y] inside the canvas; null until the pointer enters
  let pending = [];     // clicks since the last tick, judged at the next tick
  let drawn = false;

  function startGame() {
    state = ClickerCore.newGame(ClickerCore.gameSeed(pageSeed, games));
    games += 1;
    pending = [];
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of ClickerCore.drawRects(state, { mode, mouse })) {
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
      ClickerCore.tick(state, pending);
      pending = [];
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  // the canvas has no border, padding or CSS scaling, so offsetX/Y (floored) are canvas px
  const canvasPos = (e) => [Math.floor(e.offsetX), Math.floor(e.offsetY)];
  canvas.addEventListener("mousemove", (e) => { mouse = canvasPos(e); });
  canvas.addEventListener("mousedown", (e) => {
    mouse = canvasPos(e);
    if (e.button !== 0 || mode !== "play") return;
    pending.push(mouse);
  });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  window.addEventListener("keydown", (e) => {
    if (e.code !== "KeyR") return;
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });

  window.hakisa = Object.freeze({
    ready: () => drawn,
    mode: () => mode,
    state: () => ({
      mode, score: state.score, lives: state.lives, time_left: ClickerCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed, targets: ClickerCore.visible(state),
      hits: state.hits, bad: state.bad, misses: state.misses, escaped: state.escaped,
      mouse: mouse ? [mouse[0], mouse[1]] : null,
    }),
  });

  if (params.get("autostart") !== "0") startGame();
  draw();
  drawn = false;  // ready() waits for the first animation frame, when the canvas is really on screen
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
