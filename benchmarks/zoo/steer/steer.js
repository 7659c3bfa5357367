// Zoo Steer: a snake on a grid of 16 px cells moves one cell every 8 ticks in its heading; the arrow keys
// turn it (a tap or a hold sets the heading; turning back on itself is ignored). Eating the white food
// scores +1 and grows the snake by one cell; the next food appears at once on an empty cell. Running into
// a wall or into itself costs one of 3 lives and restarts a short snake in the middle (the food stays),
// still for half a second. A game lasts at most 20 s. R starts the next game.
//
// Two parts in one file, as Hakisa Pop: SteerCore (pure, no DOM: newGame, tick, drawRects) and the page
// (browser only: a fixed 60 Hz loop, keyboard input, fillRect painting, window.hakisa). Every shape is an
// integer fillRect, so a screenshot equals the rect list, pixel for pixel.
const SteerCore = (function () {
  "use strict";

  // ---- geometry and timing (canvas px, 60 Hz ticks) -----------------------------------------------
  const W = 480, H = 320;
  const HUD_H = 28;
  const PLAY = [0, HUD_H, W, H - HUD_H];
  const CELL = 16, COLS = 29, ROWS = 18;
  const GRID = { x: 8, y: 30 };                   // 464 x 288 px of cells; the wall is the border around them
  const GAME_TICKS = 20 * 60;
  const LIVES = 3;
  const MOVE_TICKS = 8;                           // 7.5 cells per second
  const START_LEN = 3;
  const RESPAWN_TICKS = 30;                       // a new snake waits 0.5 s before it moves
  const SEG = 14, FOOD = 12;                      // drawn sizes inside a 16 px cell (centred)
  const DIRS = { up: [0, -1], down: [0, 1], left: [-1, 0], right: [1, 0] };
  const COLORS = {
    hud: "#202838", play: "#101820", wall: "#404858", text: "#ffffff", lives: "#ff4060", time: "#40c0ff",
    head: "#60e060", body: "#308050", food: "#ffffff", overlay: "#6030c0",
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

  const gameSeed = (pageSeed, k) => ((pageSeed >>> 0) + Math.imul(7919, k)) >>> 0;

  // a short snake in the middle, heading right; cells are [col, row], head first
  function startSnake() {
    const row = Math.floor(ROWS / 2), head = Math.floor(COLS / 2);
    const cells = [];
    for (let i = 0; i < START_LEN; i++) cells.push([head - i, row]);
    return cells;
  }

  const onSnake = (cells, c, r) => cells.some(([x, y]) => x === c && y === r);

  // a uniformly drawn empty cell (the snake is at most a few dozen of the 522 cells)
  function placeFood(s) {
    for (;;) {
      const c = Math.floor(rand(s) * COLS), r = Math.floor(rand(s) * ROWS);
      if (!onSnake(s.snake, c, r)) { s.food = [c, r]; return; }
    }
  }

  function newGame(seed) {
    const s = {
      seed: seed >>> 0, rng: seed >>> 0, mode: "play", over: null,
      tick: 0, score: 0, lives: LIVES, crashes: 0,
      snake: startSnake(), heading: "right", moveClock: 0, wait: RESPAWN_TICKS, food: null,
    };
    placeFood(s);
    return s;
  }

  const timeLeft = (s) => Math.max(GAME_TICKS - s.tick, 0) / 60;
  const reverse = (a, b) => DIRS[a][0] === -DIRS[b][0] && DIRS[a][1] === -DIRS[b][1];

  function crash(s) {
    s.lives -= 1; s.crashes += 1;
    if (s.lives <= 0) { s.lives = 0; s.mode = "over"; s.over = "lives"; return; }
    s.snake = startSnake(); s.heading = "right"; s.moveClock = 0; s.wait = RESPAWN_TICKS;
    if (onSnake(s.snake, s.food[0], s.food[1])) placeFood(s);  // food stays, unless the new snake covers it
  }

  // One 60 Hz tick. turns: the headings asked for, best first (the page: the latest key pressed since the
  // last move, then the latest key still held); at a move the first that is not a reversal is taken.
  function tick(s, turns) {
    if (s.mode !== "play") return false;
    s.tick += 1;
    let moved = false;
    if (s.wait > 0) s.wait -= 1;
    else if (++s.moveClock >= MOVE_TICKS) {
      s.moveClock = 0;
      moved = true;
      const turn = (turns || []).find((d) => d && !reverse(d, s.heading));
      if (turn) s.heading = turn;
      const [c, r] = s.snake[0], [dc, dr] = DIRS[s.heading];
      const nc = c + dc, nr = r + dr;
      const eats = s.food && nc === s.food[0] && nr === s.food[1];
      const body = eats ? s.snake : s.snake.slice(0, -1);  // the tail moves out of the way unless it grows
      if (nc < 0 || nc >= COLS || nr < 0 || nr >= ROWS || onSnake(body, nc, nr)) crash(s);
      else {
        s.snake.unshift([nc, nr]);
        if (eats) { s.score += 1; placeFood(s); } else s.snake.pop();
      }
    }
    if (s.mode === "play" && s.tick >= GAME_TICKS) { s.mode = "over"; s.over = "time"; }
    return moved;
  }

  // ---- drawing: integer rects clipped to the canvas ------------------------------------------------
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
  const textWidth = (str, scale, advance) => (str.length - 1) * advance + 5 * scale;

  // the canvas rect of a thing of side `size` centred in cell (c, r)
  function cellRect(c, r, size) {
    const pad = (CELL - size) / 2;
    return { x: GRID.x + c * CELL + pad, y: GRID.y + r * CELL + pad, w: size, h: size };
  }

  // What is on screen now, in canvas px: the grid's geometry, the snake's cells head first, the food.
  function visible(s) {
    return {
      grid: { x: GRID.x, y: GRID.y, cell: CELL, cols: COLS, rows: ROWS },
      snake: s.snake.map(([c, r]) => cellRect(c, r, SEG)),
      food: s.food ? cellRect(s.food[0], s.food[1], FOOD) : null,
    };
  }

  function drawRects(s, view) {
    const mode = (view && view.mode) || s.mode;
    const out = [];
    pushRect(out, 0, 0, W, HUD_H, COLORS.hud);
    pushRect(out, ...PLAY, COLORS.wall);
    pushRect(out, GRID.x, GRID.y, COLS * CELL, ROWS * CELL, COLORS.play);
    textRects(out, String(s.score), SCORE.x, SCORE.y, SCORE.scale, SCORE.advance, COLORS.text);
    pushRect(out, LIVES_BAR.x, LIVES_BAR.y, LIVES_BAR.w * s.lives, LIVES_BAR.h, COLORS.lives);
    pushRect(out, TIME_BAR.x, TIME_BAR.y, Math.round(TIME_BAR.w * timeLeft(s) * 60 / GAME_TICKS), TIME_BAR.h, COLORS.time);
    const v = visible(s);
    if (v.food) pushRect(out, v.food.x, v.food.y, FOOD, FOOD, COLORS.food);
    for (let i = v.snake.length - 1; i >= 0; i--) {
      const seg = v.snake[i];
      pushRect(out, seg.x, seg.y, SEG, SEG, i === 0 ? COLORS.head : COLORS.body);
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
    }
    return out;
  }

  return Object.freeze({
    W, H, HUD_H, CELL, COLS, ROWS, GRID, GAME_TICKS, LIVES, MOVE_TICKS, RESPAWN_TICKS, COLORS, DIRS,
    gameSeed, newGame, tick, timeLeft, visible, drawRects,
  });
})();

if (typeof module !== "undefined" && module.exports) module.exports = SteerCore;

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
  let state = SteerCore.newGame(pageSeed);
  let mode = "start";              // "start" | "play" | "over"
  const ARROWS = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" };
  let pressed = null;              // the latest arrow pressed since the last move: a quick tap still turns
  let held = [];                   // arrows held now, latest last: a hold keeps asking for its heading
  let shown = null;                // what the last draw put on the canvas (the hook reports this)

  function startGame() {
    state = SteerCore.newGame(SteerCore.gameSeed(pageSeed, games));
    games += 1;
    pressed = null;
    mode = "play";
  }

  function draw() {
    for (const [x, y, w, h, c] of SteerCore.drawRects(state, { mode })) {
      ctx.fillStyle = c;
      ctx.fillRect(x, y, w, h);
    }
    shown = {
      mode, score: state.score, lives: state.lives, time_left: SteerCore.timeLeft(state), tick: state.tick,
      games, seed: state.seed, crashes: state.crashes, waiting: state.wait > 0, ...SteerCore.visible(state),
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
      if (SteerCore.tick(state, [pressed, held[held.length - 1]])) pressed = null;
      if (state.mode === "over") mode = "over";
    }
    if (acc >= TICK_MS) acc = 0;
    draw();
    requestAnimationFrame(frame);
  }

  window.addEventListener("keydown", (e) => {
    const d = ARROWS[e.code];
    if (d) {
      e.preventDefault();
      if (e.repeat) return;
      pressed = d;
      held = held.filter((k) => k !== d).concat([d]);
      return;
    }
    if (e.code !== "KeyR") return;
    e.preventDefault();
    if (mode === "over" || mode === "start") startGame();
  });
  window.addEventListener("keyup", (e) => { const d = ARROWS[e.code]; if (d) held = held.filter((k) => k !== d); });
  window.addEventListener("blur", () => { held = []; });  // no key stuck down

  // the read-only test hook (tests and a scripted teacher; an agent only sees pixels)
  window.hakisa = Object.freeze({
    ready: () => shown !== null,
    mode: () => mode,
    state: () => JSON.parse(JSON.stringify(shown)),
  });

  if (params.get("autostart") !== "0") startGame();
  requestAnimationFrame((now) => { last = now; draw(); requestAnimationFrame(frame); });
})();
