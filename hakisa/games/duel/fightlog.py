"""Tick logs of real fights on the duel page, and their bit-exact replay in DuelSim.

The page (web/page.js) records every fight it plays as one JSON object and POSTs it to the server, which
appends it as one line to LOGDIR/fights.jsonl (`hakisa duel serve --league DIR` / `--log-dir DIR`):

    {"format": "hakisa-duel-fight", "rules_version": 2, "seed": 123, "tier": "normal", "boss": "gen3",
     "brain_sha": "<sha256 hex of the brain JSON text as served, or null for scripted>",
     "keys": [0, 2, 2, 8, ...],          # the key bitmask DuelCore.step got on each tick, in order
     "ticks": 1234, "winner": 1, "knight_hp": 40, "boss_hp": 0,
     "final": {"tick": 1234, "rng": ..., "kx": ...}}   # the whole end state (DuelCore's fields), optional

The rules are deterministic, so seed + tier + brain + keys ARE the fight:

    fights = load_fights(["league/fights.jsonl"])
    r = replay(fights[0], brain.load_brain("league/bosses/gen3.json"))
    r["states"]["kx"]      # int64 [T+1]: the state before tick 1 .. after the last tick
    r["keys"]              # int64 [T]: the knight's keys on each tick
    rs = replay_many(fights, brains)   # the same, batched: brains one per fight (or one for all)

A log names its brain (`boss`, `brain_sha`) but does not hold it: the caller finds the brain file (the league's
bosses/NAME.json; hashlib.sha256 of its bytes is the log's brain_sha while that file is unchanged).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hakisa.games.duel.sim import STATE_FIELDS, DuelSim, load_rules

FORMAT = "hakisa-duel-fight"
INT_FIELDS = ("rules_version", "seed", "ticks", "winner", "knight_hp", "boss_hp")


def check_fight(fight, where: str = "fight", rules_version: int | None = None) -> dict:
    """The fight itself if it is a well-formed log (and of `rules_version`, when given), else ValueError
    naming `where`."""
    if not isinstance(fight, dict) or fight.get("format") != FORMAT:
        got = fight.get("format") if isinstance(fight, dict) else type(fight).__name__
        raise ValueError(f"{where}: not a duel fight log (format {got!r}, expected {FORMAT!r})")
    bad = [k for k in INT_FIELDS if not isinstance(fight.get(k), int)]
    if not isinstance(fight.get("tier"), str):
        bad.append("tier")
    keys = fight.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, int) and 0 <= k < 32 for k in keys):
        bad.append("keys")
    if "final" in fight and not (isinstance(fight["final"], dict)
                                 and all(isinstance(v, int) for v in fight["final"].values())):
        bad.append("final")
    if bad:
        raise ValueError(f"{where}: fight log fields missing or malformed: {', '.join(bad)}")
    if rules_version is not None and fight["rules_version"] != rules_version:
        raise ValueError(f"{where}: the fight was played under rules version {fight['rules_version']}, "
                         f"this sim's rules are version {rules_version}; it cannot be replayed")
    return fight


def _files(paths) -> list[Path]:
    out = []
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix in (".jsonl", ".json"))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no fight log {p}")
    return out


def load_fights(paths) -> list[dict]:
    """Every fight in `paths` (.jsonl files of one fight a line, .json files of one fight or a list, or folders
    of them), checked against this sim's rules version. Errors name the file and line."""
    version = load_rules()["version"]
    fights = []
    for f in _files(paths):
        if f.suffix == ".jsonl":
            items = [(f"{f}:{i}", line) for i, line in enumerate(f.read_text().splitlines(), 1) if line.strip()]
        else:
            items = [(str(f), f.read_text())]
        for where, text in items:
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e})") from None
            for j, fight in enumerate(doc if isinstance(doc, list) else [doc]):
                fights.append(check_fight(fight, where if not isinstance(doc, list) else f"{where}[{j}]", version))
    return fights


def replay(fight: dict, brain: dict | None) -> dict:
    """Replay the fight's keys in DuelSim with the boss `brain` (None: scripted). Returns {"winner", "ticks",
    "keys": int64 [T], "states": {field: int64 [T+1]}} (row 0: the new fight, row t: after tick t). Raises
    ValueError when the replay does not end as the log did (another brain, or other rules)."""
    return replay_many([fight], [brain])[0]


def replay_many(fights: list[dict], brains, chunk: int = 256) -> list[dict]:
    """`replay` for many fights at once, `chunk` per batched DuelSim (a tick costs about the same for 1 fight
    as for hundreds). brains: one brain (or None) for all, or a list aligned with fights."""
    brains = list(brains) if isinstance(brains, (list, tuple)) else [brains] * len(fights)
    if len(brains) != len(fights):
        raise ValueError(f"{len(fights)} fights but {len(brains)} brains")
    out = []
    for c in range(0, len(fights), chunk):
        out += _replay_batch(fights[c:c + chunk], brains[c:c + chunk], c)
    return out


def _replay_batch(fights: list[dict], brains: list, offset: int) -> list[dict]:
    for i, f in enumerate(fights):
        check_fight(f, f"fight {offset + i}")
    n = len(fights)
    pool, idx = [], []  # each distinct brain once; fight i plays pool[idx[i]]
    for br in brains:
        j = next((j for j, b in enumerate(pool) if b is br), None)
        if j is None:
            pool.append(br)
            j = len(pool) - 1
        idx.append(j)
    sim = DuelSim(n, tier=[f["tier"] for f in fights])
    sim.reset(seeds=np.array([f["seed"] for f in fights], np.int64) & 0xFFFFFFFF)
    sim.set_brains(pool, idx)
    lens = [len(f["keys"]) for f in fights]
    keys = np.zeros((max(lens), n), np.int64)  # a shorter fight is over (frozen) when the others go on
    for i, f in enumerate(fights):
        keys[: lens[i], i] = f["keys"]
    hist = {k: np.empty((len(keys) + 1, n), np.int64) for k in STATE_FIELDS}
    for t in range(len(keys) + 1):
        for k in STATE_FIELDS:
            hist[k][t] = sim.state[k]
        if t < len(keys):
            sim.step(keys[t])
    out = []
    for i, f in enumerate(fights):
        end = {k: int(hist[k][lens[i], i]) for k in STATE_FIELDS}
        want = dict(f.get("final") or {})  # the whole end state, when logged: a wrong brain shows up at once
        want.update(winner=f["winner"], tick=f["ticks"], k_hp=f["knight_hp"], b_hp=f["boss_hp"])
        diff = {k: (end[k], v) for k, v in want.items() if end.get(k) != v}
        if diff:
            name = "scripted" if brains[i] is None else brains[i].get("name")
            raise ValueError(f"fight {offset + i} (seed {f['seed']}, boss {f.get('boss')!r}) does not replay with "
                             f"brain {name!r}: (here, in the log) {diff}")
        out.append({"winner": end["winner"], "ticks": end["tick"], "keys": keys[: lens[i], i].copy(),
                    "states": {k: v[: lens[i] + 1, i].copy() for k, v in hist.items()}})
    return out
