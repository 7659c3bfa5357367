// Node side of the rules-parity harness (tests/test_duel_rules.py drives it).
// usage: node tests/duel_parity.js JOB_DIR
//   JOB_DIR/job.json : {"rules": {...}, "tiers": [F], "seeds": [F], "ticks": T}
//   JOB_DIR/keys.bin : uint8 [F, T]  key bitmask per fight per tick
// writes
//   JOB_DIR/states.bin : int32 [F, T+1, STATE_FIELDS]  (rng as its int32 bit pattern), record 0 = newState
//   JOB_DIR/rects.bin  : int16 [F, T+1, N_RECTS, 5]     drawRects after each record
"use strict";
const fs = require("fs");
const path = require("path");
const DuelCore = require(path.join(__dirname, "..", "hakisa", "games", "duel", "web", "core.js"));

const dir = process.argv[2];
const job = JSON.parse(fs.readFileSync(path.join(dir, "job.json"), "utf8"));
const keys = fs.readFileSync(path.join(dir, "keys.bin"));
const F = job.seeds.length, T = job.ticks, NF = DuelCore.STATE_FIELDS.length, R = DuelCore.N_RECTS;
const states = new Int32Array(F * (T + 1) * NF);
const rects = new Int16Array(F * (T + 1) * R * 5);

for (let f = 0; f < F; f++) {
  const s = DuelCore.newState(job.rules, job.tiers[f], job.seeds[f]);
  for (let t = 0; t <= T; t++) {
    if (t > 0) DuelCore.step(job.rules, s, keys[f * T + t - 1]);
    const base = (f * (T + 1) + t) * NF;
    for (let i = 0; i < NF; i++) states[base + i] = s[DuelCore.STATE_FIELDS[i]] | 0;
    const rs = DuelCore.drawRects(job.rules, s);
    if (rs.length !== R) throw new Error("drawRects returned " + rs.length + " slots");
    const rb = (f * (T + 1) + t) * R * 5;
    for (let j = 0; j < R; j++) for (let k = 0; k < 5; k++) rects[rb + j * 5 + k] = rs[j][k];
  }
}
fs.writeFileSync(path.join(dir, "states.bin"), Buffer.from(states.buffer));
fs.writeFileSync(path.join(dir, "rects.bin"), Buffer.from(rects.buffer));
