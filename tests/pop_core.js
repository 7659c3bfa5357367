// Node checks of Hakisa Pop's pure core (hakisa/games/pop/pop.js); tests/test_pop_page.py runs it.
// usage: node tests/pop_core.js   -> one JSON line {"ok": true, ...}; exit 1 on the first failure.
"use strict";
const path = require("path");
const Pop = require(path.join(__dirname, "..", "hakisa", "games", "pop", "pop.js"));

let checks = 0;
function check(cond, msg) {
  checks++;
  if (!cond) throw new Error("check failed: " + msg);
}
const eq = (a, b, msg) => check(a === b, `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);

// Tick until a target is on screen (or the game ends); returns the ticks run.
function untilTarget(s) {
  let n = 0;
  while (!s.target && s.mode === "play") { Pop.tick(s, []); n++; }
  return n;
}

// Rasterize a rect list to a W*H array of colours (later rects paint over earlier ones, like the canvas).
// px.get("x,y") reads one pixel.
function raster(rects) {
  const buf = new Array(Pop.W * Pop.H).fill(undefined);
  for (const [x, y, w, h, c] of rects) {
    check([x, y, w, h].every(Number.isInteger) && w > 0 && h > 0, "integer non-empty rect " + JSON.stringify([x, y, w, h]));
    check(x >= 0 && y >= 0 && x + w <= Pop.W && y + h <= Pop.H, "rect inside the canvas " + JSON.stringify([x, y, w, h]));
    for (let j = y; j < y + h; j++) buf.fill(c, j * Pop.W + x, j * Pop.W + x + w);
  }
  return {
    buf,
    get(key) { const [x, y] = key.split(",").map(Number); return buf[y * Pop.W + x]; },
  };
}

// The pixels a string should light, built from the FONT table independently of textRects.
function expectedText(str, x0, y0, scale, advance) {
  const want = new Set();
  for (let i = 0; i < str.length; i++) {
    const rows = Pop.FONT[str[i]];
    for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) {
      if (!((rows[r] >> (4 - c)) & 1)) continue;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
        want.add((x0 + i * advance + c * scale + dx) + "," + (y0 + r * scale + dy));
      }
    }
  }
  return want;
}

// The set of "x,y" keys in [x0, x1) x [y0, y1) painted `colour`.
function pixelsOf(px, colour, x0, y0, x1, y1) {
  const got = new Set();
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (px.buf[y * Pop.W + x] === colour) got.add(x + "," + y);
  return got;
}
const sameSet = (a, b) => a.size === b.size && [...a].every((k) => b.has(k));

const stats = {};

// ---- the font table: every glyph the page draws, 7 rows of 5-bit masks -------------------------
for (const ch of "0123456789GAMEOVRPSTIN :") {
  const g = Pop.FONT[ch];
  check(Array.isArray(g) && g.length === 7 && g.every((m) => Number.isInteger(m) && m >= 0 && m < 32), "glyph " + ch);
}
// a hand-written "4", so the table itself is pinned too
eq(JSON.stringify(Pop.FONT["4"]), JSON.stringify([2, 6, 10, 18, 31, 2, 2]), "glyph 4");

// ---- determinism: same seed => identical target sequence; another seed => another one ----------
// Play a whole game by clicking each target's centre on the tick after it appears (never loses a life).
function perfectGame(seed) {
  const s = Pop.newGame(seed);
  const spawns = [];
  while (s.mode === "play") {
    const clicks = s.target ? [[s.target.x, s.target.y]] : [];
    for (const e of Pop.tick(s, clicks)) if (e.type === "spawn") spawns.push([e.x, e.y]);
  }
  return { s, spawns };
}
{
  const a = perfectGame(12345), b = perfectGame(12345), c = perfectGame(12346);
  eq(JSON.stringify(a.spawns), JSON.stringify(b.spawns), "same seed, same targets");
  check(JSON.stringify(a.spawns) !== JSON.stringify(c.spawns), "another seed, other targets");
  check(a.spawns.length > 30, "many targets in a perfect game: " + a.spawns.length);
  for (const [x, y] of a.spawns) {
    check(x >= Pop.SPAWN.x0 && x <= Pop.SPAWN.x1 && y >= Pop.SPAWN.y0 && y <= Pop.SPAWN.y1, "spawn in range");
  }
  // ... and the game ends by time at exactly 1200 ticks with all lives
  eq(a.s.mode, "over", "perfect game over");
  eq(a.s.over, "time", "perfect game ends by time");
  eq(a.s.tick, 1200, "perfect game length");
  eq(Pop.timeLeft(a.s), 0, "no time left");
  eq(a.s.lives, 3, "perfect game keeps its lives");
  eq(a.s.score, a.s.hits, "score = hits");
  eq(a.s.misses, 0, "perfect game: no miss");
  // spawns at 20, 41, 62, ...; each is hit on the next tick (21, 42, ...) and leaves a 20-tick gap
  eq(a.s.hits, Math.floor((1200 - 21) / 21) + 1, "perfect game score");
  stats.perfect_score = a.s.score;
  // a finished game ignores clicks and time
  const before = JSON.stringify(a.s);
  eq(Pop.tick(a.s, [[100, 100]]).length, 0, "no events after the end");
  eq(JSON.stringify(a.s), before, "a finished game does not change");
}

// ---- the first gap, motion, shrinking and expiry ------------------------------------------------
{
  const s = Pop.newGame(7);
  eq(untilTarget(s), 20, "first target after a 20-tick gap");
  eq(s.tick, 20, "spawn tick");
  const t = s.target;
  eq(t.r, 34, "radius at spawn");
  const speed = Math.hypot(t.vx, t.vy) * 60;
  check(Math.abs(speed - 45) < 1e-9, "45 px/s, got " + speed);
  let ticks = 0, minX = 1e9, maxX = -1e9, minY = 1e9, maxY = -1e9;
  while (s.target) {
    const ev = Pop.tick(s, []);
    ticks++;
    if (ticks === 90) check(Math.abs(s.target.r - 17) < 1e-9, "linear shrink: r=17 at half-life, got " + s.target.r);
    if (s.target) {
      minX = Math.min(minX, s.target.x); maxX = Math.max(maxX, s.target.x);
      minY = Math.min(minY, s.target.y); maxY = Math.max(maxY, s.target.y);
    } else {
      check(ev.some((e) => e.type === "expire"), "expire event");
    }
  }
  eq(ticks, 180, "an unclicked target expires after 180 ticks");
  eq(s.lives, 2, "an expiry costs a life");
  eq(s.expiries, 1, "expiries");
  eq(s.misses, 0, "an expiry is not a miss");
  check(minX >= 34 && maxX <= 446 && minY >= 62 && maxY <= 292, "centre stays in bounds");
  eq(untilTarget(s), 20, "20-tick gap after an expiry");
  // three expiries end the game
  while (s.mode === "play") Pop.tick(s, []);
  eq(s.expiries, 3, "three expiries");
  eq(s.lives, 0, "no lives left");
  eq(s.over, "lives", "the game ends at 0 lives");
  eq(s.tick, 20 + 180 + 20 + 180 + 20 + 180, "ended on the third expiry");
  stats.expiry_game_ticks = s.tick;
}

// ---- bouncing: run many targets to their end and keep the centre inside the box --------------
{
  let bounced = 0;
  for (let seed = 0; seed < 40; seed++) {
    const s = Pop.newGame(seed);
    untilTarget(s);
    let vx = s.target.vx, vy = s.target.vy;
    while (s.target) {
      check(s.target.x >= 34 && s.target.x <= 446 && s.target.y >= 62 && s.target.y <= 292, "in bounds, seed " + seed);
      if (s.target.vx !== vx || s.target.vy !== vy) bounced++;
      vx = s.target.vx; vy = s.target.vy;
      Pop.tick(s, []);
    }
  }
  check(bounced > 0, "some target bounced");
  stats.bounces = bounced;
}

// ---- clicks: a hit at the centre, a miss beside it, a miss in the gap ---------------------------
{
  const s = Pop.newGame(99);
  // a click during the first gap costs a life
  Pop.tick(s, [[240, 160]]);
  eq(s.lives, 2, "a click in the gap costs a life");
  eq(s.misses, 1, "gap click is a miss");
  eq(s.clicks, 1, "processed clicks");
  untilTarget(s);
  const { x, y, r } = s.target;
  // far off target: a miss, and the target stays
  const offX = x < 240 ? x + r + 3 : x - r - 3;
  let ev = Pop.tick(s, [[offX, y]]);
  check(ev.some((e) => e.type === "miss"), "miss event");
  eq(s.lives, 1, "a click beside the target costs a life");
  check(s.target !== null, "a miss leaves the target");
  // the centre: a hit
  const T = s.tick + 1;
  ev = Pop.tick(s, [[s.target.x, s.target.y]]);
  check(ev.some((e) => e.type === "hit"), "hit event");
  eq(s.score, 1, "a hit scores");
  eq(s.hits, 1, "hits");
  eq(s.target, null, "a hit removes the target");
  eq(s.lives, 1, "a hit costs nothing");
  eq(untilTarget(s), 20, "20 frames without a target after a hit");
  eq(s.tick, T + 20, "spawn 20 ticks after the hit tick");
  // clicks in one tick are judged in order: hit first, then the same spot is a gap click
  const c = s.target;
  ev = Pop.tick(s, [[c.x, c.y], [c.x, c.y]]);
  eq(ev.map((e) => e.type).join(","), "hit,miss,over", "clicks in order");
  eq(s.mode, "over", "the game ends at 0 lives");
  eq(s.over, "lives", "over by lives");
  eq(s.score, 2, "score at the end");
  stats.click_game = { score: s.score, misses: s.misses, clicks: s.clicks };
}
{
  // once lives reach 0 the remaining clicks of that tick are not processed
  const s = Pop.newGame(5);
  Pop.tick(s, [[1, 100], [2, 100], [3, 100], [4, 100], [5, 100]]);
  eq(s.mode, "over", "three gap clicks end the game");
  eq(s.clicks, 3, "clicks after the end are not processed");
  eq(s.misses, 3, "three misses");
  eq(s.tick, 1, "ended on tick 1");
}

// ---- every drawn target pixel is a hit; a click r+3 from the centre is not -----------------------
{
  const s = Pop.newGame(2024);
  untilTarget(s);
  let tested = 0;
  for (let k = 0; k < 170; k += 13) {
    while (s.target && s.target.age < k) Pop.tick(s, []);
    const t = s.target;
    const px = raster(Pop.drawRects(s, { mouse: null }));
    const disc = pixelsOf(px, Pop.COLORS.target, 0, 0, Pop.W, Pop.H);
    check(disc.size > 0, "the disc is drawn");
    for (const key of disc) {
      const [x, y] = key.split(",").map(Number);
      check(Pop.clickHits(t, x, y), `drawn pixel ${key} hits (target ${t.x},${t.y} r ${t.r})`);
      tested++;
    }
    check(!Pop.clickHits(t, t.x + t.r + 3, t.y), "r+3 is a miss");
    // the disc is centred on the rounded centre with radius ceil(r): its row span at the centre row
    const R = Math.ceil(t.r), cx = Math.round(t.x), cy = Math.round(t.y);
    check(disc.has((cx - R) + "," + cy) && disc.has((cx + R) + "," + cy) && !disc.has((cx + R + 1) + "," + cy), "disc extent");
    check(disc.has(cx + "," + (cy - R)) && disc.has(cx + "," + (cy + R)) && !disc.has(cx + "," + (cy - R - 1)), "disc height");
  }
  stats.disc_pixels_tested = tested;
}

// ---- the HUD layout: score digits, lives bar, time bar ------------------------------------------
{
  const s = Pop.newGame(1);
  s.score = 407; s.lives = 2; s.tick = 300;          // 15 s left
  const rects = Pop.drawRects(s, { mouse: null });
  const px = raster(rects);
  // score: glyph i at (8 + 21 i, 4), 15x21, 3x3 font pixels, white
  const white = pixelsOf(px, "#ffffff", 0, 0, Pop.W, Pop.HUD_H);
  check(sameSet(white, expectedText("407", 8, 4, 3, 21)), "score 407 pixels");
  for (const k of white) {
    const [x, y] = k.split(",").map(Number);
    const i = Math.floor((x - 8) / 21);
    check(i >= 0 && i < 3 && x - 8 - 21 * i < 15 && y >= 4 && y < 25, "score pixel " + k + " inside its glyph box");
  }
  // the score's own rects: exactly 3x3, on the 3-px grid of their glyph
  const scoreRects = rects.filter((r) => r[4] === "#ffffff");
  check(scoreRects.every(([x, y, w, h]) => w === 3 && h === 3 && (x - 8) % 21 % 3 === 0 && (y - 4) % 3 === 0), "score rects on the font grid");
  // "0" for zero, no leading zeros
  const z = Pop.newGame(1);
  check(sameSet(pixelsOf(raster(Pop.drawRects(z, {})), "#ffffff", 0, 0, Pop.W, Pop.HUD_H), expectedText("0", 8, 4, 3, 21)), "score 0");
  // lives: [300, 8, 30 * lives, 12]; the rest of [300, 8, 90, 12] is HUD colour
  for (let y = 0; y < 28; y++) for (let x = 296; x < 396; x++) {
    const inBar = x >= 300 && x < 360 && y >= 8 && y < 20;
    eq(px.get(x + "," + y), inBar ? "#ff4060" : "#202838", "lives pixel " + x + "," + y);
  }
  // time: [404, 8, round(68 * 15 / 20) = 51, 12]
  for (let y = 0; y < 28; y++) for (let x = 400; x < 480; x++) {
    const inBar = x >= 404 && x < 404 + 51 && y >= 8 && y < 20;
    eq(px.get(x + "," + y), inBar ? "#40c0ff" : "#202838", "time pixel " + x + "," + y);
  }
  // full bars at the start of a game
  const full = raster(Pop.drawRects(Pop.newGame(3), {}));
  eq(full.get("389,19"), "#ff4060", "3 lives reach x=389"); eq(full.get("390,8"), "#202838", "lives end at 390");
  eq(full.get("471,19"), "#40c0ff", "full time reaches x=471"); eq(full.get("472,8"), "#202838", "time ends at 472");
  // play area background below the HUD
  eq(px.get("0,28"), "#101820", "play area starts at row 28"); eq(px.get("479,319"), "#101820", "play area bottom-right");
  eq(px.get("0,27"), "#202838", "HUD ends at row 27");
}

// ---- the crosshair (play only, on top) and the overlays --------------------------------------------
{
  const s = Pop.newGame(11);
  untilTarget(s);
  const cx = Math.round(s.target.x), cy = Math.round(s.target.y);
  const rects = Pop.drawRects(s, { mouse: [cx, cy] });
  const px = raster(rects);
  const green = pixelsOf(px, "#80ff80", 0, 0, Pop.W, Pop.H);
  eq(green.size, 17, "a 9+9 px plus sharing its centre");
  for (let d = -4; d <= 4; d++) check(green.has((cx + d) + "," + cy) && green.has(cx + "," + (cy + d)), "crosshair arm " + d);
  eq(rects[rects.length - 1][4], "#80ff80", "the crosshair is drawn last");
  eq(pixelsOf(raster(Pop.drawRects(s, { mouse: null })), "#80ff80", 0, 0, Pop.W, Pop.H).size, 0, "no crosshair without a mouse");

  for (const [mode, lines] of [["over", ["GAME OVER", "R: AGAIN"]], ["start", ["PRESS R"]]]) {
    const ov = raster(Pop.drawRects(s, { mode, mouse: [100, 150] }));
    eq(pixelsOf(ov, "#80ff80", 0, 0, Pop.W, Pop.H).size, 0, "no crosshair in " + mode);
    const want = new Set();
    const total = lines.length * 14 + (lines.length - 1) * 10;
    let y = 120 + Math.floor((80 - total) / 2);
    for (const line of lines) {
      const w = (line.length - 1) * 14 + 10;
      const x = Math.floor((480 - w) / 2);
      check(Math.abs(x - (480 - x - w)) <= 1, "centred " + line);
      for (const k of expectedText(line, x, y, 2, 14)) want.add(k);
      y += 24;
    }
    const got = pixelsOf(ov, "#ffffff", 0, 120, Pop.W, 200);
    check(sameSet(got, want), mode + " overlay text pixels");
    for (let x = 0; x < 480; x += 7) {
      eq(ov.get(x + ",120"), "#6030c0", "band top row"); eq(ov.get(x + ",199"), "#6030c0", "band bottom row");
    }
    eq(ov.get("0,119") === "#6030c0" || ov.get("0,200") === "#6030c0", false, "band is rows 120..199");
    check(pixelsOf(ov, "#ffffff", 0, 0, Pop.W, Pop.HUD_H).size > 0, "HUD stays visible under the overlay");
  }
}

// ---- the seed sequence of a page: game 0 uses the page seed ---------------------------------------
eq(Pop.gameSeed(1, 0), 1, "first game = page seed");
eq(Pop.gameSeed(1, 2), 1 + 2 * 7919, "game k = seed + 7919 k");
eq(Pop.gameSeed(0xFFFFFFFF, 1), 7918, "wraps to 32 bits");

console.log(JSON.stringify(Object.assign({ ok: true, checks }, stats)));
