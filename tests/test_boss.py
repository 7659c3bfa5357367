"""The learned boss: integer brains bit-identical in numpy and Node, self-play that learns, promotion, ratings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hakisa.games.duel import league
from hakisa.games.duel.brain import (
    FEATURES,
    N_OUT,
    BrainPool,
    features,
    infer,
    load_brain,
    new_brain,
    save_brain,
    with_brain,
)
from hakisa.games.duel.sim import STATE_FIELDS, DuelSim, load_rules

sys.path.insert(0, str(Path(__file__).parent))
from test_duel_rules import node, parity_batches  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "hakisa" / "games" / "duel" / "web" / "core.js"


def passive_brain() -> dict:
    """A brain that never swings: it idles, strikes a started swing on time and never chains (biases only)."""
    b = new_brain(8, seed=0, name="passive")
    b["w1"] = np.zeros((8, len(FEATURES)), int).tolist()
    b["w2"] = np.zeros((N_OUT, 8), int).tolist()
    b["b2"] = [1, 0, 0, 0, 0, 1, 0, 1, 0]
    return b


@node
def test_integer_inference_is_identical_in_numpy_and_node(tmp_path):
    """brainFeatures + brainChoose (core.js) against features + infer (brain.py) on 3,000 random states."""
    rng = np.random.default_rng(0)
    rules = load_rules()
    sim = DuelSim(3000, seed=1)
    s = sim.state
    for f, hi in (("kx", 640 * 16), ("bx", 640 * 16), ("k_hp", 141), ("b_hp", 161), ("k_st", 101), ("k_act", 5),
                  ("k_t", 70), ("k_dir", 2), ("b_cd", 81), ("b_combo", 4), ("tick", 3300)):
        s[f][:] = rng.integers(0, hi, 3000)
    s["k_dir"] = s["k_dir"] * 2 - 1
    s["b_face"] = rng.choice([-1, 1], 3000)
    brain = new_brain(24, seed=5)
    kinds = rng.integers(0, 3, 3000)
    states = [{f: int(s[f][i]) for f in STATE_FIELDS} for i in range(3000)]
    (tmp_path / "job.json").write_text(json.dumps({"rules": with_brain(rules, brain), "states": states,
                                                   "kinds": kinds.tolist()}))
    js = ("const C = require(process.argv[1]); const job = JSON.parse(require('fs').readFileSync(process.argv[2]));"
          "const out = job.states.map((s, i) => [C.brainFeatures(job.rules, s, job.kinds[i]),"
          " C.brainChoose(job.rules, s, job.kinds[i], null)]);"
          "process.stdout.write(JSON.stringify(out));")
    out = json.loads(subprocess.run(["node", "-e", js, str(CORE), str(tmp_path / "job.json")], check=True,
                                    capture_output=True, text=True, timeout=60).stdout)
    for kind in range(3):
        sel = np.flatnonzero(kinds == kind)
        x = features(rules, {k: v[sel] for k, v in s.items()}, kind)
        assert np.array_equal(x, np.array([out[i][0] for i in sel])), "features differ"
        py = infer(brain["w1"], brain["b1"], brain["w2"], brain["b2"], x, kind)
        assert np.array_equal(py, [out[i][1] for i in sel]), f"decisions of kind {kind} differ"
        assert len(set(py.tolist())) > 1, "a brain that always answers the same proves little"


@node
def test_rules_parity_1000_fights_with_a_learned_boss(tmp_path):
    """The parity harness (1,000 fights x 600 ticks, every state field and draw rect every tick) with a learned
    brain in the rules, which core.js and sim.py both play."""
    winners = parity_batches(tmp_path, n_fights=1000, ticks=600, seed=2, brain=new_brain(24, seed=7))
    assert (winners == 1).sum() >= 20 and (winners == 2).sum() >= 20, np.bincount(winners)


def test_a_brain_changes_the_boss_and_scripted_is_unchanged():
    keys = np.random.default_rng(0).integers(0, 32, (400, 64))
    runs = {}
    for name, rules in (("scripted", load_rules()), ("none", with_brain(load_rules(), None)),
                        ("passive", with_brain(load_rules(), passive_brain()))):
        sim = DuelSim(64, tier="hard", seed=3, rules=rules)
        for k in keys:
            sim.step(k)
        runs[name] = {f: v.copy() for f, v in sim.state.items()}
    assert all(np.array_equal(runs["scripted"][f], runs["none"][f]) for f in STATE_FIELDS)
    assert (runs["passive"]["k_hp"] >= runs["scripted"]["k_hp"]).all()  # a boss that never swings hurts nobody
    assert (runs["passive"]["k_hp"] > runs["scripted"]["k_hp"]).sum() > 20


def test_brain_files_are_checked(tmp_path):
    b = new_brain(8, seed=1)
    assert load_brain(save_brain(b, tmp_path / "b.json")) == b
    assert load_brain("scripted") is None
    bad = dict(b, w1=[[200] * len(FEATURES)] * 8)
    with pytest.raises(ValueError, match="int8"):
        load_brain(save_brain(bad, tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="not a boss brain"):
        load_brain(save_brain({"format": "x"}, tmp_path / "x.json"))
    with pytest.raises(FileNotFoundError, match="scripted"):
        load_brain("no-such-brain")


def test_a_pool_gives_each_fight_its_brain():
    from hakisa.games.duel.env import DuelVecEnv

    env = DuelVecEnv(4, seed=0, boss=["scripted", passive_brain(), "scripted", passive_brain()])
    assert env.fights.sim.brains.idx.tolist() == [0, 1, 0, 1]
    assert env.fights.sim.brains.uses_brain().tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match="3 brains for 4 fights"):
        DuelVecEnv(4, boss=["scripted"] * 3)


def test_clone_of_the_scripted_brain_agrees_with_it():
    brain, agree = league.clone_scripted(16, fights=6, steps=300, seed=0)
    assert agree > 0.9, agree
    pool = BrainPool([brain], 1)
    assert pool.uses_brain().all()


def test_self_play_learns_to_fight_and_promotion_refuses_a_loser():
    """ES from a boss that never swings, against the reference expert: its fitness must rise (it learns to
    cleave). Promotion then refuses the passive brain against the scripted one and accepts the reverse."""
    a = league.Args(es_iters=5, pop_size=8, fights=3, sigma=8.0, lr=4.0)
    expert = [league.EXPERTS[1]]  # the lagging expert: the scripted boss beats it often, so there is room
    start = passive_brain()
    before = league.boss_fitness(league.play(expert, [0] * 16, [start], [0] * 16, np.arange(16))).mean()
    trained, curve = league.train_boss(start, expert, a, "t", seed=0)
    after = league.boss_fitness(league.play(expert, [0] * 16, [trained], [0] * 16, np.arange(16))).mean()
    assert after > before + 0.2, (before, after, curve)

    lose = league.compare(start, None, expert, 400, seed=1)
    assert not lose["promoted"] and lose["new_takes"] < 0.5 and lose["decisive"] > 0, lose
    win = league.compare(None, start, expert, 400, seed=1)
    assert win["promoted"] and win["wilson_lower"] > 0.5, win
    assert win["new_win_rate"] > win["old_win_rate"] and win["decisive"] == lose["decisive"], win
    same = league.compare(None, None, expert, 400, seed=1)  # a boss never beats itself: no decisive pair
    assert same["decisive"] == 0 and not same["promoted"], same


def test_ratings_anchor_scripted_and_rank_a_passive_boss_lower():
    table = league.ratings({"scripted": None, "passive": passive_brain()}, league.EXPERTS[:2], 12, seed=0)
    elo = table["elo"]
    assert elo["scripted"] == 1000.0
    assert elo["passive"] < elo["scripted"] - 50, elo
    assert set(elo) == {"scripted", "passive", "expert", "expert-m4-lag4"}


def test_boss_elo_cli_reads_a_league(tmp_path):
    lg = league.League(tmp_path / "lg")
    lg.add_boss(dict(passive_brain(), name="gen1"), {"gen": 1})
    out = subprocess.run([sys.executable, "-m", "hakisa.cli", "duel", "boss-elo", "--league", str(tmp_path / "lg"),
                          "--fights", "6", "--pixel-knights", "", "--json"], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    elo = json.loads(out.stdout.strip().splitlines()[-1])["elo"]
    assert elo["scripted"] == 1000.0 and "gen1" in elo and "expert" in elo


def _logged_fights(n: int, seed: int) -> list[dict]:
    """Fights as the page logs them (fightlog's format), played by the lagging expert against the scripted
    boss in the sim: the keys of every tick, held for 4 ticks like an agent's."""
    from hakisa.games.duel.expert import expert_keys

    rules = load_rules()
    sim = DuelSim(n, tier="normal", seed=seed)
    keys, cur = [], np.zeros(n, np.int64)
    while not sim.done.all():
        if len(keys) % 4 == 0:
            cur = expert_keys(sim.state, roll_margin=4).astype(np.int64)
        keys.append(cur.copy())
        sim.step(cur)
    keys = np.array(keys)
    s = sim.state
    return [{"format": "hakisa-duel-fight", "rules_version": rules["version"], "seed": seed + i, "tier": "normal",
             "boss": "scripted", "brain_sha": None, "keys": keys[: int(s["tick"][i]), i].tolist(),
             "ticks": int(s["tick"][i]), "winner": int(s["winner"][i]), "knight_hp": int(s["k_hp"][i]),
             "boss_hp": int(s["b_hp"][i])} for i in range(n)]


def test_boss_learn_clones_the_page_knight_and_decides_with_numbers(tmp_path):
    """boss-learn on logged fights: the fights replay, their knight is cloned from the state (an expert is a
    function of the state, so the clone must follow it closely), and the new brain is promoted or rejected
    on a paired test whose numbers are recorded in the league."""
    logs = tmp_path / "fights.jsonl"
    logs.write_text("\n".join(json.dumps(f) for f in _logged_fights(6, seed=40)) + "\n")
    a = league.Args(es_iters=2, pop_size=4, fights=2, promote_fights=100, pixel_knights="", clone_fights=6,
                    clone_steps=300)
    entry = league.learn_from_fights(tmp_path / "lg", [str(logs)], a)
    assert entry["source"]["fights"] == 6 and entry["source"]["train_accuracy"] > 0.7, entry["source"]
    assert entry["test"]["pairs"] >= 100 and 0 <= entry["test"]["new_takes"] <= 1
    assert not entry["test"]["promoted"]  # fewer than 400 pairs never promote, whatever they say
    doc = json.loads((tmp_path / "lg" / "league.json").read_text())
    assert doc["log"][-1]["test"] == entry["test"] and doc["bosses"] == []
    assert doc["knights"][-1]["name"] == "page0" and (tmp_path / "lg/knights/page0/model.safetensors").exists()


def test_each_generation_trains_an_exploiter_that_es_and_promotion_meet(tmp_path, monkeypatch):
    """A generation first trains an exploiter knight against the boss to beat alone; ES fights it and the
    promotion test counts it. A rerun after a failed generation keeps that exploiter instead of a second one."""
    from hakisa.games.duel.league import folder

    met = []
    es = league.train_boss
    monkeypatch.setattr(folder, "train_boss", lambda start, knights, *rest: met.append([k.name for k in knights])
                        or es(start, knights, *rest))
    a = league.Args(generations=1, tries=1, es_iters=1, pop_size=4, fights=2, promote_fights=60, knight_seconds=0,
                    exploiter_seconds=2, knight_envs=8, pixel_knights="", clone_fights=4, clone_steps=50,
                    progress=False)
    for _ in range(2):
        doc = league.train_league(tmp_path / "lg", a)
    ex = [k for k in doc["knights"] if k.get("role") == "exploiter"]
    assert [(k["name"], k["vs"]) for k in ex] == [("exploiter-gen1", ["scripted"])], doc["knights"]
    assert (tmp_path / "lg/knights/exploiter1/model.safetensors").exists() and ex[0]["global_step"] > 0
    assert met == [["expert", "expert-m4-lag4", "expert-seen-m2", "exploiter-gen1"]] * 2, met
    assert [g["gen"] for g in doc["log"]] == [1, 1] and not doc["bosses"]  # 60 pairs never promote
