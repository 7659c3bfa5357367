// The playable page: DuelCore (core.js, the same rules as sim.py) at a fixed 60 Hz, drawn on a 640x360 canvas.
//
// Timing: requestAnimationFrame feeds a fixed-timestep accumulator, so the fight advances exactly one
// DuelCore.step per 1/60 s of wall time whatever the display's refresh rate (capped so a hidden tab does
// not fast-forward). Pixels: clear to palette[0], then fillRect every DuelCore.drawRects slot with
// integer coordinates and no smoothing or DPR scaling, which is exactly what render.py rasterizes.
// Text lives in the DOM (HUD, overlays), never on the canvas.
//
// The boss's brain: "scripted" (rules.json's policy) or a learned one, bosses/NAME.json (?boss=NAME, or the
// brain selector; bosses/index.json lists the choices). DuelCore plays rules.brain, so a learned brain is a
// copy of the pristine rules with `brain` set. Every fight is logged tick by tick (the key bitmask each
// DuelCore.step got: with seed, tier and brain that IS the fight) and, when it ends, POSTed to `fights`
// (the server appends it to a fights.jsonl; a static server refuses, which is fine) and kept for the
// "fights" download link. hakisa/games/duel/fightlog.py reads and replays these logs.
(function () {
  "use strict";
  const TICK_MS = 1000 / 60;
  const params = new URLSearchParams(location.search);
  const canvas = document.getElementById("game");
  const ctx = canvas.getContext("2d", { alpha: false });
  ctx.imageSmoothingEnabled = false;
  const $ = (id) => document.getElementById(id);
  const tierSel = $("tier"), bossSel = $("boss");

  let rules = null, pristine = null, palette = null, state = null;
  let bossName = "scripted", brainSha = null;  // the brain playing now, and the sha256 of its file's bytes
  const brains = new Map();      // name -> {brain, sha}: each brain file is fetched once per page load
  let fightKeys = [], logged = false;  // this fight's keys, tick by tick; whether it was logged already
  const fights = [];             // this session's finished fights (the download)
  let mode = "start";            // "start" | "play" | "over"
  let paused = false;            // the test hook's freeze
  let seed = 0, liveTicks = 0, wins = 0, losses = 0, popUntil = 0;
  const best = {};               // fastest win per tier, in ticks (a reason for one more fight)
  const held = new Set(), pressed = new Set();  // pressed: went down since the last tick (a quick tap still counts)

  const KEYMAP = { ArrowLeft: 1, ArrowRight: 2, Space: 4, KeyJ: 8, KeyK: 16 };

  function keysMask() {
    let m = 0;
    for (const code of held) m |= KEYMAP[code] || 0;
    for (const code of pressed) m |= KEYMAP[code] || 0;
    return m;
  }

  function newFight(s, tier) {
    seed = s >>> 0;
    state = DuelCore.newState(rules, tier, seed);
    fightKeys = [];
    logged = false;
    tierSel.value = rules.tier_order[state.tier];
    $("result").classList.add("hidden");
    draw();
  }

  function restart() {
    newFight((Math.random() * 0x100000000) >>> 0, tierSel.value);
    mode = "play";
    $("start").classList.add("hidden");
  }

  // The one place the fight advances: what step gets is what the log keeps (a finished fight does not step).
  function stepFight(keys) {
    if (state.done) return;
    DuelCore.step(rules, state, keys);
    fightKeys.push(keys);
  }

  function tick() {
    const before = { k: state.k_hp, b: state.b_hp };
    stepFight(keysMask());
    pressed.clear();
    liveTicks++;
    if (state.b_hp < before.b) { pop("HIT  -" + (before.b - state.b_hp), 500); flash("flash-hit"); }
    if (state.k_hp < before.k) { pop("OUCH -" + (before.k - state.k_hp), 500); flash("flash-hurt"); }
    if (state.done) finish();
  }

  function finish() {
    mode = "over";
    logFight();
    const won = state.winner === 1;
    if (won) wins++; else losses++;
    const band = $("result-band");
    band.className = "band " + (won ? "victory" : "defeat");
    $("result-text").textContent = won ? "VICTORY" : (state.k_hp > 0 ? "TIME UP" : "DEFEAT");
    const secs = (state.tick / 60).toFixed(1);
    const tier = rules.tier_order[state.tier];
    if (won && (!best[tier] || state.tick < best[tier])) best[tier] = state.tick;
    $("result-sub").textContent = (won ? `${tier} boss down in ${secs} s` : `the ${tier} boss had ${state.b_hp} HP left`)
      + (best[tier] ? ` (best ${(best[tier] / 60).toFixed(1)} s)` : "") + " \u2014 R or Enter for a rematch";
    $("result").classList.remove("hidden");
  }

  function logFight() {
    if (logged) return;
    logged = true;
    const fight = {
      format: "hakisa-duel-fight", rules_version: rules.version, seed, tier: rules.tier_order[state.tier],
      boss: bossName, brain_sha: brainSha, keys: fightKeys.slice(), ticks: state.tick, winner: state.winner,
      knight_hp: state.k_hp, boss_hp: state.b_hp, final: copy(state),
    };
    fights.push(fight);
    offerDownload();
    fetch("fights", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(fight) })
      .catch(() => {});  // no log server (a static one, or offline): the download link still has it
  }

  // The "fights (N)" link: all of this session's fights as JSONL, a fresh Blob URL after each fight.
  function offerDownload() {
    const a = $("download-fights");
    if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
    const lines = fights.map((f) => JSON.stringify(f) + "\n");
    a.href = URL.createObjectURL(new Blob(lines, { type: "application/x-ndjson" }));
    a.textContent = `fights (${fights.length})`;
  }

  // ---- the boss's brain ----------------------------------------------------------------------
  async function sha256(buf) {
    if (!(window.crypto && crypto.subtle)) return null;  // not a secure context (a LAN address): no hash
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
    return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function fetchBrain(name) {
    if (!brains.has(name)) {
      const r = await fetch("bosses/" + encodeURIComponent(name) + ".json");
      if (!r.ok) throw new Error("HTTP " + r.status);
      const buf = await r.arrayBuffer();
      const brain = JSON.parse(new TextDecoder().decode(buf));
      if (brain.format !== "hakisa-duel-boss-brain") throw new Error("not a boss brain");
      brains.set(name, { brain, sha: await sha256(buf) });
    }
    return brains.get(name);
  }

  function addBossOption(name) {
    if (![...bossSel.options].some((o) => o.value === name)) bossSel.add(new Option(name, name));
  }

  // Play `name` from the next fight on; a brain that cannot be loaded falls back to scripted, and says so.
  async function useBoss(name) {
    let b = null, note = "";
    if (name !== "scripted") {
      try { b = await fetchBrain(name); } catch (err) { note = `no brain "${name}" (${err.message}): playing scripted`; }
    }
    bossName = b ? name : "scripted";
    brainSha = b ? b.sha : null;
    rules = b ? Object.assign({}, pristine, { brain: b.brain }) : pristine;
    addBossOption(bossName);
    bossSel.value = bossName;
    $("boss-note").textContent = note;
    $("boss-note").title = note;  // the header cuts a long note short
    $("boss-note").classList.toggle("hidden", !note);
    $("hud-boss").textContent = bossName;
    return bossName;
  }

  // A new brain is a new fight (same seed and tier), as a new tier is.
  async function changeBoss(name) {
    const used = await useBoss(name);
    if (state) { newFight(seed, tierSel.value); if (mode === "over") mode = "play"; }
    return used;
  }

  // Hit feedback lives OUTSIDE the canvas (a frame around it), so the canvas pixels stay the shared draw list.
  const stage = document.getElementById("stage");
  let flashTimer = 0;
  function flash(cls) {
    stage.classList.remove("flash-hit", "flash-hurt");
    void stage.offsetWidth;  // restart the CSS transition
    stage.classList.add(cls);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => stage.classList.remove(cls), 140);
  }

  function pop(text, ms) {
    $("hud-pop").textContent = text;
    popUntil = performance.now() + ms;
  }

  function draw() {
    const rects = DuelCore.drawRects(rules, state);
    ctx.fillStyle = palette[0];
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const [x, y, w, h, c] of rects) {
      if (w > 0 && h > 0) { ctx.fillStyle = palette[c]; ctx.fillRect(x, y, w, h); }
    }
    $("hud-khp").textContent = state.k_hp;
    $("hud-st").textContent = state.k_st;
    $("hud-bhp").textContent = state.b_hp;
    $("hud-time").textContent = (Math.max(rules.time_limit - state.tick, 0) / 60).toFixed(1);
    $("hud-tier").textContent = rules.tier_order[state.tier];
    $("hud-record").textContent = wins + " - " + losses;
    if (popUntil && performance.now() > popUntil) { $("hud-pop").textContent = ""; popUntil = 0; }
  }

  let acc = 0, last = 0;
  function frame(now) {
    acc += Math.min(now - last, 250);  // after a stall, drop time rather than fast-forward
    last = now;
    while (acc >= TICK_MS) {
      acc -= TICK_MS;
      if (mode === "play" && !paused) tick();
    }
    draw();
    requestAnimationFrame(frame);
  }

  // ---- input ---------------------------------------------------------------------------------
  const GAME_KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Space", "KeyJ", "KeyK", "KeyR", "Enter"]);
  window.addEventListener("keydown", (e) => {
    if ((e.target === tierSel || e.target === bossSel) && !GAME_KEYS.has(e.code)) return;
    if (GAME_KEYS.has(e.code)) e.preventDefault();  // no scrolling, no select changes, no button presses
    if (e.code === "KeyR" || e.code === "Enter") {  // rematch (or start, for a player that already has focus)
      if (!e.repeat) restart();
      return;
    }
    if (!held.has(e.code)) pressed.add(e.code);
    held.add(e.code);
  });
  window.addEventListener("keyup", (e) => { held.delete(e.code); });
  window.addEventListener("blur", () => { held.clear(); pressed.clear(); });

  function focusGame() { canvas.focus(); tierSel.blur(); bossSel.blur(); }
  $("start").addEventListener("click", () => { focusGame(); restart(); });
  canvas.tabIndex = 0;
  canvas.addEventListener("click", focusGame);
  tierSel.addEventListener("change", () => {
    focusGame();  // give the keys back to the game at once
    if (state) { newFight(seed, tierSel.value); if (mode === "over") mode = "play"; $("result").classList.add("hidden"); }
  });
  bossSel.addEventListener("change", () => { focusGame(); changeBoss(bossSel.value); });

  // ---- the read-only test hook (tests, teacher recording, live play) -------------------------
  const copy = (o) => JSON.parse(JSON.stringify(o));
  window.hakisa = Object.freeze({
    ready: () => state !== null,
    state: () => copy(state),
    drawRects: () => DuelCore.drawRects(rules, state),
    get tier() { return rules ? rules.tier_order[state.tier] : null; },
    mode: () => mode,
    seed: () => seed,
    boss: () => bossName,         // the brain playing: "scripted" or a learned brain's name
    fightLog: () => copy(fights), // this session's finished fights, as POSTed (hakisa-duel-fight)
    // Play brain `name` (a new fight, same seed and tier); resolves to the brain in use (scripted if missing).
    setBoss: (name) => changeBoss(name),
    ticks: () => liveTicks,       // ticks stepped by the live loop since load
    record: () => ({ wins, losses }),
    keys: () => keysMask(),       // the key bitmask the next tick will see
    // Start fight `seed` at `tier` (as DuelSim(seed=...) / DuelCore.newState) and put the page in play mode.
    loadSeed(s, tier) { newFight(s, tier || tierSel.value); mode = "play"; $("start").classList.add("hidden"); return copy(state); },
    // Step the current fight through a list of key bitmasks at once (no waiting), then draw it.
    loadTrace(keys) { for (const k of keys) stepFight(k); if (state.done) finish(); draw(); return copy(state); },
    pause() { paused = true; },   // freeze the live loop (keys are then ignored) so pixels stay put
    resume() { paused = false; },
  });

  const names = fetch("bosses/index.json").then((r) => (r.ok ? r.json() : ["scripted"])).catch(() => ["scripted"]);
  fetch("rules.json").then((r) => r.json()).then(async (r) => {
    rules = pristine = r;
    palette = rules.palette.map(([R, G, B]) => `rgb(${R},${G},${B})`);
    for (const name of await names) addBossOption(name);
    await useBoss(params.get("boss") || "scripted");
    const t = params.get("tier") || "normal";
    newFight(params.has("seed") ? Number(params.get("seed")) : (Math.random() * 0x100000000) >>> 0, t);
    if (params.get("autostart") === "1") { mode = "play"; $("start").classList.add("hidden"); }
    requestAnimationFrame((now) => { last = now; requestAnimationFrame(frame); });
  });
})();
