// Hakisa data view: the episode list of a store and a scrubber over one episode, with the action drawn on
// each stored frame. Everything comes from the local server (hakisa/data/view.py): the list first, then one
// episode's arrays and raw frames when it is opened, so a big store opens as fast as a small one.
"use strict";

const $ = (id) => document.getElementById(id);
// Marker colours: none of them is a gray, so on a gray observation a marker's pixels are its own
// (tests/test_data_view.py finds the click marker by its colour in a screenshot).
const COLOR = { click_left: "#ff00ff", click_right: "#ff8000", move: "#00e5ff", over: "#ff3030" };
const V = {
  meta: null, rows: [], order: [], sortKey: "episode", sortDir: 1,
  pos: -1, ep: null, frames: null, images: [], t: 0, playing: false, loading: false,
  scale: 1, off: null, offCtx: null, tl: null, epToken: 0, painted: 0,
};

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

// ---- the episode list ---------------------------------------------------------------------------
function columns() {
  const c = [["episode", "ep"], ["frames", "frames"], ["duration_s", "duration"]];
  if (V.rows.some((r) => r.score !== null && r.score !== undefined)) c.push(["score", "score"]);
  c.push(["outcome", "outcome"], ["return", "return"]);
  if (V.rows.some((r) => r.actor)) c.push(["who", "who acted"]);
  c.push(["dropped", "dropped"]);
  return c;
}

function who(r) {
  if (!r.actor) return "";
  const names = Object.keys(r.actor);
  if (names.length === 1) return names[0];
  const total = names.reduce((s, k) => s + r.actor[k], 0);
  return names.map((k) => `${k} ${Math.round(100 * r.actor[k] / total)}%`).join(", ");
}

function cell(r, key) {
  const v = key === "who" ? who(r) : r[key];
  if (v === null || v === undefined) return "-";
  if (key === "duration_s") return v.toFixed(1) + " s";
  if (typeof v === "number" && !Number.isInteger(v)) return String(+v.toPrecision(4));
  return String(v);
}

function sortValue(r, key) {
  const v = key === "who" ? who(r) : r[key];
  return v === null || v === undefined ? -Infinity : v;
}

function renderList() {
  const cols = columns();
  const head = document.querySelector("#episodes thead tr");
  head.innerHTML = "";
  for (const [key, label] of cols) {
    const th = document.createElement("th");
    th.textContent = label;
    th.dataset.key = key;
    if (key === V.sortKey) th.className = V.sortDir > 0 ? "asc" : "desc";
    th.onclick = () => { sortBy(key); };
    head.appendChild(th);
  }
  const body = document.querySelector("#episodes tbody");
  body.innerHTML = "";
  V.order.forEach((i, k) => {
    const r = V.rows[i];
    const tr = document.createElement("tr");
    tr.dataset.pos = i;
    if (i === V.pos) tr.className = "current";
    for (const [key] of cols) {
      const td = document.createElement("td");
      td.textContent = cell(r, key);
      if (key === "outcome" || key === "who") td.className = "text";
      tr.appendChild(td);
    }
    tr.onclick = () => openEpisode(i);
    body.appendChild(tr);
  });
}

function sortBy(key) {
  V.sortDir = key === V.sortKey ? -V.sortDir : 1;
  V.sortKey = key;
  V.order.sort((a, b) => {
    const x = sortValue(V.rows[a], key), y = sortValue(V.rows[b], key);
    return (x < y ? -1 : x > y ? 1 : a - b) * V.sortDir;
  });
  renderList();
}

// ---- one episode ----------------------------------------------------------------------------------
async function openEpisode(i) {
  if (i < 0 || i >= V.rows.length) return;
  const token = ++V.epToken;  // a later request wins over one still in flight
  V.loading = true;
  V.playing = false;
  const [ep, buf] = await Promise.all([
    getJSON(`api/episode/${i}.json`),
    fetch(`api/frames/${i}.bin`).then((r) => { if (!r.ok) throw new Error(`frames ${i}: HTTP ${r.status}`); return r.arrayBuffer(); }),
  ]);
  if (token !== V.epToken) return;
  V.pos = i;
  V.ep = ep;
  V.frames = new Uint8Array(buf);
  V.images = new Array(ep.actions.length);
  V.t = 0;
  $("scrub").max = Math.max(0, ep.actions.length - 1);
  drawTimeline();
  renderList();
  const row = document.querySelector("#episodes tbody tr.current");
  if (row) row.scrollIntoView({ block: "nearest" });
  V.loading = false;
  show(0);
}

function frameImage(t) {
  // raw [T,C,H,W] uint8 -> RGBA, made once per frame when it is first shown
  if (V.images[t]) return V.images[t];
  const [c, h, w] = V.meta.frame_shape;
  const n = h * w, base = t * c * n;
  const img = new ImageData(w, h);
  const d = img.data, f = V.frames;
  for (let p = 0; p < n; p++) {
    const q = p * 4;
    if (c === 1) { const g = f[base + p]; d[q] = g; d[q + 1] = g; d[q + 2] = g; }
    else { d[q] = f[base + p]; d[q + 1] = f[base + n + p]; d[q + 2] = f[base + 2 * n + p]; }
    d[q + 3] = 255;
  }
  V.images[t] = img;
  return img;
}

function describe(a) {
  const imap = V.meta.meta.input_map;
  const cmd = imap.commands[a[0]] || { name: `#${a[0]}`, kind: "noop", keys: [] };
  return cmd;
}

function cellCentre(x, y) {
  // the centre of mouse cell (x, y) in canvas pixels: cells divide the capture region, the frame shows
  // frame_box of it (all of it unless the observation is a crop)
  const imap = V.meta.meta.input_map, [, h, w] = V.meta.frame_shape, b = V.meta.frame_box;
  const fx = ((x + 0.5) / imap.x_bins - b[0]) / (b[2] - b[0]);
  const fy = ((y + 0.5) / imap.y_bins - b[1]) / (b[3] - b[1]);
  return [fx * w * V.scale, fy * h * V.scale];
}

function label(ctx, text, x, y, color) {
  ctx.font = "bold 14px system-ui, sans-serif";
  const w = ctx.measureText(text).width + 8;
  ctx.fillStyle = "rgba(0,0,0,0.7)";
  ctx.fillRect(x, y, w, 20);
  ctx.fillStyle = color;
  ctx.fillText(text, x + 4, y + 15);
  return w;
}

function drawAction(ctx, a) {
  const cmd = describe(a), imap = V.meta.meta.input_map;
  const [, h, w] = V.meta.frame_shape;
  const b = V.meta.frame_box;
  if (cmd.kind === "keys" || cmd.kind === "tap") {
    let x = 4;
    for (const k of cmd.keys) x += label(ctx, cmd.kind === "tap" ? `tap ${k}` : k, x, 4, "#ffe066") + 4;
  } else if (cmd.kind === "move" || cmd.kind === "click_left" || cmd.kind === "click_right") {
    // the label in white: the marker's colour stays the marker's alone
    label(ctx, `${cmd.name} (${a[1]}, ${a[2]})`, 4, 4, "#ffffff");
    const [cx, cy] = cellCentre(a[1], a[2]);
    const cw = w * V.scale / ((b[2] - b[0]) * imap.x_bins), ch = h * V.scale / ((b[3] - b[1]) * imap.y_bins);
    const color = COLOR[cmd.kind];
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.strokeRect(cx - cw / 2, cy - ch / 2, cw, ch);
    ctx.beginPath();
    if (cmd.kind === "move") {
      ctx.arc(cx, cy, 6, 0, 2 * Math.PI);
      ctx.stroke();
    } else {
      ctx.fillStyle = color;
      ctx.arc(cx, cy, 7, 0, 2 * Math.PI);
      ctx.fill();
    }
  } else if (cmd.kind === "rel_move") {
    label(ctx, `${cmd.name} bins (${a[1]}, ${a[2]})`, 4, 4, "#00e5ff");
  }
}

function show(t) {
  if (!V.ep) return;
  const n = V.ep.actions.length;
  t = Math.max(0, Math.min(n - 1, t));
  V.t = t;
  const ctx = $("frame").getContext("2d");
  const [, h, w] = V.meta.frame_shape;
  ctx.imageSmoothingEnabled = false;
  if (n === 0) { ctx.clearRect(0, 0, w * V.scale, h * V.scale); return; }
  V.offCtx.putImageData(frameImage(t), 0, 0);
  ctx.drawImage(V.off, 0, 0, w * V.scale, h * V.scale);
  const a = V.ep.actions[t];
  drawAction(ctx, a);
  const s = V.ep.series;
  const r = s.rewards ? s.rewards[t] : 0;
  if (r) label(ctx, (r > 0 ? "+" : "") + r, w * V.scale - 60, 4, r > 0 ? "#7dff7d" : "#ff6b6b");
  if (s.dones && s.dones[t]) {
    ctx.strokeStyle = COLOR.over;
    ctx.lineWidth = 4;
    ctx.strokeRect(2, 2, w * V.scale - 4, h * V.scale - 4);
    label(ctx, "GAME OVER", w * V.scale / 2 - 45, 4, COLOR.over);
  }
  $("scrub").value = t;
  $("pos").textContent = `${t + 1} / ${n}`;
  const cmd = describe(a);
  const readings = Object.keys(s).map((k) => `${k}=${s[k][t] === null ? "-" : s[k][t]}`).join("  ");
  $("now").textContent = `episode ${V.ep.episode}  frame ${t}  t=${V.ep.t[t].toFixed(2)} s  ` +
    `action ${cmd.name} [${a.join(", ")}]\n${readings}`;
  drawCursor();
  V.painted++;
}

// ---- the timeline: reward and every per-frame series, game over marked, the cursor on top -----------
const ROW = 34, LABEL = 70;

function drawTimeline() {
  const s = V.ep.series, names = ["actions", ...Object.keys(s)];
  const cv = $("timeline");
  cv.width = Math.max(400, $("frame").width);
  cv.height = ROW * names.length + 4;
  const off = document.createElement("canvas");
  off.width = cv.width; off.height = cv.height;
  const ctx = off.getContext("2d");
  const n = V.ep.actions.length, pw = cv.width - LABEL;
  const X = (t) => LABEL + (n > 1 ? t / (n - 1) : 0) * (pw - 1);
  ctx.fillStyle = "#1b1f25";
  ctx.fillRect(0, 0, cv.width, cv.height);
  ctx.font = "11px system-ui, sans-serif";
  const ncmd = V.meta.meta.input_map.commands.length;
  names.forEach((name, row) => {
    const y0 = row * ROW + 2, mid = y0 + ROW / 2;
    ctx.fillStyle = "#8a94a0";
    ctx.fillText(name, 4, mid + 4);
    ctx.strokeStyle = "#2a3038";
    ctx.strokeRect(LABEL, y0, pw, ROW - 4);
    if (name === "actions") {  // one colour per command
      for (let t = 0; t < n; t++) {
        const c = V.ep.actions[t][0];
        ctx.fillStyle = V.meta.meta.input_map.commands[c].kind === "noop" ? "#333a44" : `hsl(${(360 * c) / ncmd}, 70%, 55%)`;
        ctx.fillRect(X(t), y0 + 4, Math.max(1, pw / n), ROW - 12);
      }
      return;
    }
    const v = s[name], vals = v.filter((x) => x !== null);
    if (!vals.length) return;
    let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
    if (hi === lo) hi = lo + 1;
    const Y = (x) => y0 + ROW - 6 - ((x - lo) / (hi - lo)) * (ROW - 10);
    if (name === "rewards" || name === "dones") {  // sparse: bars from zero
      for (let t = 0; t < n; t++) {
        if (!v[t]) continue;
        ctx.fillStyle = name === "dones" ? COLOR.over : v[t] > 0 ? "#7dff7d" : "#ff6b6b";
        ctx.fillRect(X(t) - 1, Math.min(Y(0), Y(v[t])), 2, Math.max(2, Math.abs(Y(v[t]) - Y(0))));
      }
    } else {
      ctx.strokeStyle = "#6fb7ff";
      ctx.beginPath();
      let pen = false;
      for (let t = 0; t < n; t++) {
        if (v[t] === null) { pen = false; continue; }
        if (pen) ctx.lineTo(X(t), Y(v[t])); else ctx.moveTo(X(t), Y(v[t]));
        pen = true;
      }
      ctx.stroke();
    }
    ctx.fillStyle = "#5d6670";
    ctx.fillText(`${+hi.toPrecision(3)}`, LABEL + pw - 40, y0 + 11);
  });
  if (s.dones) {  // game over across every row
    ctx.fillStyle = "rgba(255,48,48,0.35)";
    s.dones.forEach((d, t) => { if (d) ctx.fillRect(X(t) - 1, 0, 3, cv.height); });
  }
  V.tl = { off, X, n };
}

function drawCursor() {
  const cv = $("timeline"), ctx = cv.getContext("2d");
  ctx.drawImage(V.tl.off, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(V.tl.X(V.t) - 1, 0, 2, cv.height);
}

// ---- playing and keys -----------------------------------------------------------------------------
let lastTick = 0, carry = 0;

function loop(now) {
  if (V.playing && V.ep) {
    const fps = (V.meta.meta.fps || 15) * parseFloat($("speed").value);
    carry += (now - lastTick) / 1000 * fps;
    const k = Math.floor(carry);
    if (k > 0) {
      carry -= k;
      if (V.t + k >= V.ep.actions.length - 1) { show(V.ep.actions.length - 1); setPlaying(false); }
      else show(V.t + k);
    }
  }
  lastTick = now;
  requestAnimationFrame(loop);
}

function setPlaying(on) {
  if (on && V.ep && V.t >= V.ep.actions.length - 1) show(0);
  V.playing = on && !!V.ep;
  carry = 0;
  $("play").textContent = V.playing ? "pause" : "play";
}

function step(k) { setPlaying(false); show(V.t + k); }

function nextEpisode(d) {
  const k = V.order.indexOf(V.pos) + d;
  if (k >= 0 && k < V.order.length) openEpisode(V.order[k]);
}

window.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  const act = {
    " ": () => setPlaying(!V.playing),
    ArrowRight: () => step(e.shiftKey ? 10 : 1),
    ArrowLeft: () => step(e.shiftKey ? -10 : -1),
    Home: () => step(-V.t),
    End: () => step(V.ep ? V.ep.actions.length : 0),
    n: () => nextEpisode(1),
    p: () => nextEpisode(-1),
  }[e.key];
  if (!act) return;
  e.preventDefault();  // the slider or a button would act on the same key as well
  act();
}, true);

$("play").onclick = () => setPlaying(!V.playing);
$("scrub").oninput = (e) => { setPlaying(false); show(parseInt(e.target.value, 10)); };
$("timeline").onmousedown = (e) => {
  if (!V.tl) return;
  const seek = (ev) => {
    const x = ev.clientX - $("timeline").getBoundingClientRect().left;
    const pw = $("timeline").width - LABEL;
    step(Math.round(((x - LABEL) / pw) * (V.tl.n - 1)) - V.t);
  };
  seek(e);
  const up = () => { window.removeEventListener("mousemove", seek); window.removeEventListener("mouseup", up); };
  window.addEventListener("mousemove", seek);
  window.addEventListener("mouseup", up);
};

// ---- start ----------------------------------------------------------------------------------------
async function main() {
  V.meta = await getJSON("api/meta.json");
  V.rows = V.meta.episodes;
  V.order = V.rows.map((_, i) => i);
  const m = V.meta.meta, [, h, w] = V.meta.frame_shape;
  const frames = V.rows.reduce((s, r) => s + r.frames, 0);
  $("head").textContent = `${V.meta.path} · ${m.source} · ${m.game || "no game"} · ${m.fps} Hz · ` +
    `${V.rows.length} episodes · ${frames} frames · ${w}×${h}`;
  document.title = `Hakisa data view: ${V.meta.path}`;
  V.scale = Math.max(1, Math.floor(Math.min(640 / w, 420 / h)));  // the frame, its controls and timeline fit a laptop screen
  $("frame").width = w * V.scale;
  $("frame").height = h * V.scale;
  V.off = document.createElement("canvas");
  V.off.width = w; V.off.height = h;
  V.offCtx = V.off.getContext("2d");
  renderList();
  requestAnimationFrame(loop);
  // ?episode=ID&frame=F (`hakisa data view --episode --frame`, the study report's links): open there
  const q = new URLSearchParams(location.search);
  const want = q.has("episode") ? V.rows.findIndex((r) => String(r.episode) === q.get("episode")) : 0;
  if (q.has("episode") && want < 0) $("head").textContent += ` · no episode ${q.get("episode")} in this store`;
  if (V.rows.length) {
    await openEpisode(Math.max(0, want));
    if (want >= 0 && q.has("frame")) show(parseInt(q.get("frame"), 10) || 0);
  }
  V.ready = true;
}

// the test hook (tests and benchmarks read it; a person never needs it)
window.viewer = {
  ready: () => !!V.ready && !V.loading,
  state: () => ({
    pos: V.pos, episode: V.ep ? V.ep.episode : null, frame: V.t, frames: V.ep ? V.ep.actions.length : 0,
    playing: V.playing, loading: V.loading, scale: V.scale, painted: V.painted,
    action: V.ep && V.ep.actions.length ? V.ep.actions[V.t] : null,
  }),
  rows: () => Array.from(document.querySelectorAll("#episodes tr")).map(
    (tr) => Array.from(tr.children).map((c) => c.textContent)),
};

main().catch((e) => { $("head").textContent = "error: " + e.message; console.error(e); });
