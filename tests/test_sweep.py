"""`hakisa sweep`: the search space, a real tiny sweep, resume after kill -9, reward coefficients in the sim.

Everything here is real: Optuna, its journal file, `hakisa sweep` / `hakisa train` subprocesses. The sweeps run
on Toy/KeyPress-v0 (a trial is a second or two of PPO); the reward test steps the duel simulator.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed: pip install 'hakisa[sweep]'")

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hakisa.game import Game, GameFileError  # noqa: E402
from hakisa.sweep.space import parse_param, parse_space  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOY = ["--env", "Toy/KeyPress-v0", "--num-envs", "4", "--set", "num_steps=32", "--eval-episodes", "8",
       "--eval-envs", "4", "--eval-seed", "777", "--no-progress"]


def hakisa(*args, **kw):
    return subprocess.run([sys.executable, "-m", "hakisa.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=kw.pop("timeout", 180), **kw)


def load(journal: Path, name: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))


# ---- the space ----------------------------------------------------------------------------------
def test_param_types_log_and_categorical():
    p = parse_param("ppo.lr=1e-4:3e-3:log", "ppo")
    assert (p.kind, p.key, p.name) == ("learner", "lr", "ppo.lr")
    assert isinstance(p.dist, FloatDistribution) and p.dist.log and p.dist.low == 1e-4 and p.dist.high == 3e-3
    p = parse_param("update_epochs=1:4", "ppo")  # a bare field; an int field with int ends: an int range
    assert p.name == "ppo.update_epochs" and isinstance(p.dist, IntDistribution) and (p.dist.low, p.dist.high) == (1, 4)
    p = parse_param("ppo.ent_coef=0:0.05", "ppo")
    assert isinstance(p.dist, FloatDistribution) and not p.dist.log
    p = parse_param("ppo.norm_adv=true,false", "ppo")
    assert isinstance(p.dist, CategoricalDistribution) and p.dist.choices == (True, False)
    p = parse_param("ppo.encoder=small,nature", "ppo")
    assert p.dist.choices == ("small", "nature")
    p = parse_param("dqn.train_every=4,8,16", "dqn")
    assert p.dist.choices == (4, 8, 16)


def test_reward_paths_and_aliases():
    duel = Game.load("duel")
    p = parse_param("reward.dealt=0.1:1.0", "ppo", duel)
    assert (p.kind, p.key, p.name) == ("reward", "dealt", "reward.dealt") and p.dist.low == 0.1
    assert duel.reward_path("dealt") == ("deltas.boss_hp", -1.0)
    assert parse_param("reward.deltas.boss_hp=-1:-0.1", "ppo", duel).key == "deltas.boss_hp"
    assert parse_param("reward.knight_hp=0.05:0.5", "ppo", duel).key == "knight_hp"  # short for deltas.knight_hp
    assert parse_param("reward.win=1:20", "ppo", duel).key == "win"
    with pytest.raises(GameFileError, match=r"no reward coefficient 'stamina'.*deltas\.boss_hp.*dealt"):
        parse_param("reward.stamina=0:1", "ppo", duel)
    with pytest.raises(SystemExit, match="need a game file"):
        parse_param("reward.win=1:2", "ppo", None)


@pytest.mark.parametrize("text, msg", [
    ("dqn.lr=1e-4:1e-3", "trains ppo"),
    ("ppo.nope=1:2", r"'nope' is not a field of ppo Args \(fields: total_steps"),
    ("ppo.lr=1e-3:1e-4", "LOW < HIGH"),
    ("ppo.lr=0:1e-3:log", "LOW > 0"),
    ("ppo.lr=1:2:cubic", "LOW:HIGH or LOW:HIGH:log"),
    ("ppo.update_epochs=1:2.5", "int field"),
    ("ppo.norm_adv=0:1", "list of values"),
    ("ppo.lr", "NAME=LOW:HIGH"),
    ("foo.bar=1:2", "NAME is ppo"),
])
def test_bad_params_say_why(text, msg):
    with pytest.raises(SystemExit, match=msg):
        parse_param(text, "ppo")


def test_space_file_is_the_same_as_params(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("ppo.lr: 1e-4:3e-3:log\nppo.update_epochs: [1, 2, 4]\nreward.win: '1:20'\n")
    from_file = parse_space(None, str(f), "ppo", Game.load("duel"))
    from_flags = parse_space(["ppo.lr=1e-4:3e-3:log", "ppo.update_epochs=1,2,4", "reward.win=1:20"], None, "ppo",
                             Game.load("duel"))
    assert [(p.name, p.dist) for p in from_file] == [(p.name, p.dist) for p in from_flags]
    with pytest.raises(SystemExit, match="nothing to search"):
        parse_space([], None, "ppo")


# ---- reward coefficients reach the simulator ----------------------------------------------------
def test_reward_override_changes_what_the_sim_pays():
    duel = Game.load("duel")
    p = parse_param("reward.dealt=0.1:1.0", "ppo", duel)
    patched = duel.with_reward({p.key: 1.0, "win": 3.0})
    assert patched.rules["reward"]["deltas"]["boss_hp"] == -1.0 and duel.rules["reward"]["deltas"]["boss_hp"] == -0.3
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 8, size=(400, 8))
    runs = []
    for g in (duel, patched):
        env = g.sim_vec(8, seed=5)
        env.reset(seed=5)
        rew, hp = [], []
        for a in actions:
            _, r, _, _, info = env.step(a)
            rew.append(r.copy())
            hp.append(np.stack([info["boss_hp"], info["knight_hp"]]))
        runs.append((np.array(rew), np.array(hp)))
    (r0, hp0), (r1, hp1) = runs
    assert np.array_equal(hp0, hp1)  # the same fights: only what they pay differs
    assert not np.allclose(r0, r1)
    hit = r0 > 1  # steps where the knight dealt damage (3 points a hit at 0.3): they pay 10/3 as much at 1.0
    assert hit.any() and np.allclose(r1[hit & (np.abs(r0) < 9)], r0[hit & (np.abs(r0) < 9)] / 0.3, rtol=0.2)


def test_reward_flags_refuse_a_sim_that_ignores_them(tmp_path):
    from hakisa.recipe import reward_overrides

    doc = json.loads((ROOT / "hakisa/games/duel.json").read_text())
    doc["sim"].pop("reward")
    doc["window"]["launch"] = {"url": "http://127.0.0.1:1"}  # the copy has no web folder beside it
    doc["rules"]["refs"] = {k: str((ROOT / "hakisa/games" / v).resolve()) for k, v in doc["rules"]["refs"].items()}
    f = tmp_path / "duel-copy.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="does not pay the file's reward"):
        reward_overrides(Game.load(f), ["win=1"])
    g = reward_overrides(Game.load("duel"), ["reward.dealt=0.5", "win=2"])
    assert g.sim_vec(1).fights.coef == (0.5, 0.1, 2.0, 10.0)


# ---- a real sweep -------------------------------------------------------------------------------
def test_tiny_sweep_writes_results_and_best_config_reproduces(tmp_path):
    runs = tmp_path / "runs"
    t = time.time()
    r = hakisa("sweep", *TOY, "--param", "ppo.lr=3e-4:3e-3:log", "--param", "ppo.update_epochs=1,2", "--trials", "3",
               "--steps", "1024", "--evals", "2", "--runs-dir", str(runs), "--name", "tiny")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    out = runs / "sweeps" / "tiny"
    assert summary["finished"] == 3 and summary["complete"] + summary["pruned"] == 3
    assert "tiny: top" in r.stdout  # the leaderboard
    for f in ("sweep.csv", "best.json", "history.png", "importance.png", "journal.log"):
        assert (out / f).is_file(), f
    rows = (out / "sweep.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,value") and "params_ppo.lr" in rows[0]
    best = json.loads((out / "best.json").read_text())
    study = load(out / "journal.log", "tiny")
    assert best["_sweep"]["value"] == study.best_value and best["_sweep"]["objective"] == "mean_return"
    assert all((out / f"trial-{k}" / "checkpoint").is_dir() for k in range(3))
    print(f"sweep of 3 trials: {time.time() - t:.1f} s")

    # `hakisa train --config best.json` trains what the best trial trained: same Args, same weights, same score
    r = hakisa("train", "--config", str(out / "best.json"), "--runs-dir", str(runs), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    args = json.loads((runs / "tiny-best" / "config.json").read_text())["args"]
    assert args["lr"] == study.best_params["ppo.lr"] and args["update_epochs"] == study.best_params["ppo.update_epochs"]
    assert (args["num_steps"], args["total_steps"], args["seed"]) == (32, 1024, 0)
    r = hakisa("play", "--env", "Toy/KeyPress-v0", "--checkpoint", str(runs / "tiny-best" / "checkpoint"),
               "--episodes", "8", "--num-envs", "4", "--seed", "777")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["mean_return"] == pytest.approx(study.best_value)

    # flags given on the command line win over the file
    r = hakisa("train", "--config", str(out / "best.json"), "--runs-dir", str(runs), "--seed", "3", "--run", "s3",
               "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((runs / "s3" / "config.json").read_text())["args"]["seed"] == 3


def test_resume_after_kill_9_loses_and_double_counts_nothing(tmp_path):
    runs, n = tmp_path / "runs", 4
    cmd = [sys.executable, "-m", "hakisa.cli", "sweep", *TOY, "--param", "ppo.lr=3e-4:3e-3:log", "--trials", str(n),
           "--steps", "3072", "--evals", "2", "--pruner", "none", "--runs-dir", str(runs), "--name", "resume"]
    journal = runs / "sweeps" / "resume" / "journal.log"
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed, seen, t0 = None, "no journal yet", time.monotonic()
    try:
        # 16 s on an idle machine; CI, loaded, once saw no window in 120 s (stop 51). The per-test timeout is 600 s.
        deadline = t0 + 300
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if not journal.is_file():
                continue
            try:
                trials = load(journal, "resume").get_trials()
            except KeyError:  # the study is not created yet
                continue
            seen = f"{time.monotonic() - t0:.0f} s: " + ", ".join(
                f"#{t.number} {t.state.name} {len(t.intermediate_values)} evals" for t in trials)
            done = [t for t in trials if t.state.is_finished()]
            # a trial early in its training (no evaluation yet): it will not finish before the kill lands
            running = [t for t in trials if t.state == TrialState.RUNNING and "owner" in t.user_attrs
                       and not t.intermediate_values]
            if done and running:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                killed = running[0]
                break
    finally:
        exited = proc.poll()
        if exited is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert killed is not None, (f"never saw a finished and a running trial (last seen at {seen}; the sweep "
                                f"{'was still running' if exited is None else f'had exited with {exited}'}): "
                                f"{proc.stdout.read()[-2000:]!r}")
    before = load(journal, "resume").get_trials()
    assert [t.state for t in before if t.number == killed.number] == [TrialState.RUNNING]  # left as kill -9 left it
    n_done_before = sum(t.state.is_finished() for t in before)

    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    trials = load(journal, "resume").get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n  # exactly --trials, the killed one not counted
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    dead = next(t for t in trials if t.number == killed.number)
    assert dead.state == TrialState.FAIL and "is gone" in dead.user_attrs["failed_because"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params and retry[0] in finished  # not lost: re-run
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed.number]
    assert len(trials) == n_done_before + 1 + (n - n_done_before)  # the finished, the killed, the rest
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert (summary["finished"], summary["failed"], summary["retried"]) == (n, 1, 1)


def test_trials_as_ray_tasks_share_one_journal(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'hakisa[ray]'")
    runs = tmp_path / "runs"
    r = hakisa("sweep", *TOY, "--param", "ppo.lr=3e-4:3e-3:log", "--trials", "3", "--steps", "512", "--evals", "1",
               "--jobs", "2", "--ray", "--runs-dir", str(runs), "--name", "onray", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    study = load(runs / "sweeps" / "onray" / "journal.log", "onray")
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 3 and len({t.number for t in study.trials}) == len(study.trials)
    assert "Started a local Ray instance" in r.stderr  # the trials ran as Ray tasks, not in this process
