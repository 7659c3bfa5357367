"""plot, diagnose and arena on real runs made by `hakisa train` (tiny budgets: they test the tools, not learning)."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hakisa.arena import leaderboard, run_arena, wilson
from hakisa.diagnose import collect_observations, dead_units, diagnose
from hakisa.input_map import InputMap
from hakisa.model import find_checkpoint, load_checkpoint
from hakisa.plot import plot_runs, read_scalars

DUEL_COMMANDS = [c.name for c in InputMap.load("duel").commands]


def _train(runs_dir, name: str, algo: str, steps: int, num_envs: int, *sets: str) -> str:
    cmd = [
        sys.executable,
        "-m",
        "hakisa.cli",
        "train",
        "--game",
        "duel",
        "--algo",
        algo,
        "--steps",
        str(steps),
        "--num-envs",
        str(num_envs),
        "--run",
        name,
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
        "--set",
        "threads=1",
    ]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return str(runs_dir / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    ppo = _train(d, "ppo-tiny", "ppo", 2048, 8, "num_steps=32")
    # 224 gradient steps: DQN logs its losses every 100, so this gives two points per loss
    dqn = _train(
        d, "dqn-tiny", "dqn", 1024, 4, "learning_starts=128", "train_every=4", "batch_size=16", "buffer_size=2048"
    )
    return {"ppo": ppo, "dqn": dqn}


def _sidecar(png):
    return json.loads(png.with_suffix(".json").read_text())


def test_plot_overlays_runs_with_expected_panels(runs, tmp_path):
    torch.set_num_threads(1)
    files = plot_runs([runs["ppo"], runs["dqn"]], tmp_path, action_obs=32)
    names = sorted(f.name for f in files)
    assert names == ["actions_dqn-tiny.png", "actions_ppo-tiny.png", "curves.png", "grad_norm.png"]
    for f in files:
        assert Image.open(f).size[0] > 100  # a real PNG
    ppo_tags, dqn_tags = set(read_scalars(runs["ppo"])), set(read_scalars(runs["dqn"]))

    curves = _sidecar(tmp_path / "curves.png")
    titles = [p["title"] for p in curves["panels"]]
    assert curves["axes"] == len(titles)  # counted on the figure itself
    assert titles[0] == "charts/episodic_return"
    # every loss either learner logged gets a panel, and no grad-norm panel sneaks in
    expected = {t for t in ppo_tags | dqn_tags if t.startswith("losses/")}
    assert {"losses/value_loss", "losses/policy_loss", "losses/td_loss"} <= expected <= set(titles)
    assert not any("grad_norm" in t for t in titles)
    panel = {p["title"]: p for p in curves["panels"]}
    assert panel["charts/episodic_return"]["runs"] == ["ppo-tiny", "dqn-tiny"]  # overlaid
    assert panel["losses/td_loss"]["runs"] == ["dqn-tiny"]

    grads = _sidecar(tmp_path / "grad_norm.png")
    assert [p["title"] for p in grads["panels"]] == ["charts/grad_norm"] and grads["axes"] == 1
    assert grads["panels"][0]["runs"] == ["ppo-tiny", "dqn-tiny"]

    act = _sidecar(tmp_path / "actions_ppo-tiny.png")
    assert [p["title"] for p in act["panels"]] == ["command"]  # duel x/y heads have one bin: no panel
    assert act["panels"][0]["labels"] == DUEL_COMMANDS
    assert abs(sum(act["panels"][0]["mean"]) - 1) < 1e-3


def test_plot_reads_logged_action_histograms(tmp_path):
    """A run without a checkpoint: the action panel comes from its logged `actions/*` histograms,
    and TensorBoard's 10%-growing buckets must map back to the exact integer counts."""
    from torch.utils.tensorboard import SummaryWriter

    counts = np.array([5, 0, 17, 3, 40, 1, 9, 25, 2, 11, 4, 6])  # 12 commands: indices up to 11 share no bucket
    actions = np.repeat(np.arange(len(counts)), counts)
    w = SummaryWriter(str(tmp_path / "run"))
    w.add_histogram("actions/command", np.zeros(3, np.int64), 0)  # an older step: only the last one counts
    w.add_histogram("actions/command", actions, 100)
    w.add_scalar("charts/episodic_return", 1.0, 100)
    w.close()
    files = plot_runs([tmp_path / "run"], tmp_path / "out", action_obs=0)
    assert sorted(f.name for f in files) == ["actions_run.png", "curves.png"]
    panel = _sidecar(tmp_path / "out" / "actions_run.png")["panels"][0]
    assert panel["title"] == "command"
    assert np.allclose(panel["mean"], counts / counts.sum(), atol=1e-5)


def test_plot_cli_prints_files(runs, tmp_path, capsys):
    from hakisa.cli import main

    assert main(["plot", runs["ppo"], "--out", str(tmp_path), "--action-obs", "0"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "curves.png") in printed and str(tmp_path / "grad_norm.png") in printed
    assert main(["plot", str(tmp_path / "no-such-run"), "--out", str(tmp_path)]) == 2


def test_diagnose_report(runs, tmp_path):
    r = diagnose(runs["ppo"], tmp_path, n_obs=64, frames=2, num_envs=4)
    assert r["env"] == "duel" and r["observations"] == 64  # the checkpoint's game, found from its input map
    net, _ = load_checkpoint(find_checkpoint(runs["ppo"]))
    assert r["params"] == sum(p.numel() for p in net.parameters())
    # one entry per ReLU of the small encoder + trunk, with the real unit counts
    assert [v["units"] for v in r["dead_units"].values()] == [16, 32, 32, 256]
    g = r["gradients"]["layers"]
    assert g["pi_x"]["status"] == "unused" and g["adv_y"]["status"] == "unused"  # 1-bin heads: zero grad by design
    assert g["pi_x"]["grad_norm"] == 0.0
    for layer in ("encoder.0", "trunk.0", "pi_cmd", "v", "adv_cmd"):
        assert g[layer]["status"] == "ok" and g[layer]["grad_norm"] > 0
    e = r["entropy"]["command"]
    assert e["bins"] == 8 and 0 < e["mean"] <= math.log(8) + 1e-6
    assert len(r["saliency"]) == 2
    for s in r["saliency"]:
        png = tmp_path / s["file"].split("/")[-1]
        assert png.exists() and _sidecar(png)["panels"][1]["title"].startswith("saliency: ")
        assert s["command"] in DUEL_COMMANDS
    assert json.loads((tmp_path / "diagnose.json").read_text())["flags"] == r["flags"]


def test_dead_unit_detection_finds_killed_units(runs):
    """Kill 10 trunk units (huge negative bias): the detector must count exactly 10 more dead ones."""
    torch.set_num_threads(1)
    net, cfg = load_checkpoint(find_checkpoint(runs["ppo"]))
    obs = torch.from_numpy(collect_observations(cfg, 48, net=net, num_envs=4)["obs"])
    key = next(k for k in dead_units(net, obs) if k.startswith("trunk.0"))
    before = dead_units(net, obs)[key]["dead"]
    with torch.no_grad():
        h = net.encoder(obs.float() / 255)
        fires = (net.trunk[0](h) > 0).any(0)
        alive = torch.nonzero(fires).flatten()[:10]
        net.trunk[0].bias[alive] = -1e6
    after = dead_units(net, obs)[key]["dead"]
    assert len(alive) == 10 and after == before + 10


def test_gradient_flags_fire_when_they_should(runs):
    """Healthy on the real checkpoint; 'exploding' with absurd returns; 'vanishing' below a zeroed trunk."""
    from hakisa.diagnose import sample_update_gradients

    torch.set_num_threads(1)
    net, cfg = load_checkpoint(find_checkpoint(runs["ppo"]))
    d = collect_observations(cfg, 32, net=net, num_envs=4)
    obs, acts, rets = torch.from_numpy(d["obs"]), torch.from_numpy(d["actions"]).long(), torch.from_numpy(d["returns"])
    status = lambda r: {k: v["status"] for k, v in r["layers"].items()}  # noqa: E731
    healthy = status(sample_update_gradients(net, obs, acts, rets))
    assert set(healthy.values()) == {"ok", "unused"}
    assert status(sample_update_gradients(net, obs, acts, rets * 1e7))["v"] == "exploding"
    with torch.no_grad():
        net.trunk[0].weight.zero_()
        net.trunk[0].bias.zero_()  # every trunk unit outputs 0: no gradient reaches the encoder
    dead = status(sample_update_gradients(net, obs, acts, rets))
    assert dead["encoder.0"] == dead["encoder.4"] == "vanishing"


def test_wilson_matches_reference_values():
    lo, hi = wilson(5, 10)  # statsmodels proportion_confint(5, 10, method="wilson")
    assert abs(lo - 0.2366) < 1e-4 and abs(hi - 0.7634) < 1e-4
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and abs(hi - 0.2775) < 1e-4
    lo, hi = wilson(10, 10)
    assert abs(lo - 0.7225) < 1e-4 and hi == 1.0


def test_arena_leaderboard(runs, tmp_path):
    doc = run_arena(
        [runs["ppo"], runs["dqn"]],
        episodes=4,
        settings=("easy",),
        num_envs=4,
        baselines=("random", "expert"),
        out=tmp_path,
    )
    rows = doc["boards"]["duel"]  # the checkpoints' game, found from their input map
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert {r["agent"] for r in rows} == {"ppo-tiny", "dqn-tiny", "random", "expert"}
    wr = [r["win_rate"] for r in rows]
    assert wr == sorted(wr, reverse=True)
    by = {r["agent"]: r for r in rows}
    assert by["expert"]["win_rate"] > by["random"]["win_rate"]  # the scripted expert wins easy fights; random doesn't
    for r in rows:
        c = r["cells"]["easy"]
        assert c["episodes"] >= 3 and c["ci_low"] <= c["win_rate"] <= c["ci_high"]
        assert c["steps_per_s"] > 0
    # the DQN checkpoint is played with its Q head, as `hakisa play` would
    assert by["dqn-tiny"]["cells"]["easy"]["mode"] == "q" and by["ppo-tiny"]["cells"]["easy"]["mode"] == "argmax"
    # champions are checkpoint dirs: the board links to loadable ones
    net, _ = load_checkpoint(by["ppo-tiny"]["checkpoint"])
    assert by["ppo-tiny"]["params"] == sum(p.numel() for p in net.parameters())
    with open(tmp_path / "leaderboard.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 4 and {l["agent"] for l in lines} == set(by)
    assert json.loads((tmp_path / "leaderboard.json").read_text())["boards"]["duel"][0]["rank"] == 1


def test_leaderboard_ranks_score_envs_by_return_and_score_games_by_score():
    cells = [
        {
            "agent": a,
            "env": "Airstriker-Genesis-v0",
            "setting": None,
            "mean_return": r,
            "steps_per_s": 1.0,
            "params": 1,
            "checkpoint": None,
        }
        for a, r in (("a", 10.0), ("b", 30.0), ("c", 20.0))
    ]
    rows = leaderboard(cells)["Airstriker-Genesis-v0"]
    assert [r["agent"] for r in rows] == ["b", "c", "a"] and rows[0]["win_rate"] is None
    assert np.isclose(rows[0]["mean_return"], 30.0)
    # a score game ranks by its score, whatever the shaped return says
    cells = [
        {
            "agent": a,
            "env": "pop",
            "setting": None,
            "mean_return": r,
            "mean_score": sc,
            "steps_per_s": 1.0,
            "params": 1,
            "checkpoint": None,
        }
        for a, r, sc in (("a", 9.0, 5.0), ("b", 1.0, 20.0))
    ]
    assert [r["agent"] for r in leaderboard(cells)["pop"]] == ["b", "a"]


def test_play_expert_writes_a_consistent_teacher_dataset(tmp_path):
    """The duel's expert baseline doubles as the sim teacher (notebook 02): its store must line up."""
    from hakisa.arena import play_expert
    from hakisa.data import EpisodeStore, EpisodeWriter
    from hakisa.preprocess import ObsSpec

    spec = ObsSpec(width=80, height=45)
    meta = {"input_map": InputMap.load("duel"), "obs_spec": spec, "fps": 15, "source": "teacher", "game": "duel-sim"}
    with EpisodeWriter(tmp_path / "ds", meta, chunk_frames=256) as w:
        cell = play_expert(3, settings=("easy",), seed=0, num_envs=2, game="duel", collect=w, obs_spec=spec)[0]
    store = EpisodeStore(tmp_path / "ds")
    assert len(store.episodes) == cell["episodes"] == 3
    returns, lengths = [], []
    for i in range(3):
        ep = store.episode(i)
        assert ep["frames"].shape[1:] == (1, 45, 80)
        assert ep["dones"][-1] and not ep["dones"][:-1].any()  # one fight per episode, ending on its last step
        assert (ep["actions"][:, 1:] == 0).all() and ep["actions"][:, 0].max() < 8
        returns.append(float(ep["rewards"].sum())), lengths.append(len(ep["actions"]))
    assert np.isclose(np.mean(returns), cell["mean_return"], atol=1e-3) and np.mean(lengths) == cell["mean_length"]
    assert (store.action_histogram() > 0).sum() >= 3  # the expert moves, attacks and defends
    # each fight's record says the setting it was fought at and who won it
    assert all(e.begin.get("tier") == "easy" and e.begin.get("winner") in (1, 2) for e in store.episodes)
    # frame times are the sim's clock (a frame every 1/15 s), so `data info` gives each fight its real length
    t = store.episode(0)["timestamps"]
    assert np.allclose(np.diff(t), 1 / 15, atol=1e-6), np.diff(t)[:5]


def _users_duel(tmp_path):
    """The duel as a user's own game file: an input map of its own name, so only the game file a run records
    tells which game it plays."""
    from hakisa.game import GAMES_DIR

    doc = json.loads((GAMES_DIR / "duel.json").read_text())
    doc["name"] = "my-duel"
    doc["rules"]["refs"] = {"rules": str((GAMES_DIR / "duel" / "rules.json").resolve())}
    doc.pop("window")
    doc.pop("train")
    doc["input_map"] = {**InputMap.load("duel").to_dict(), "name": "my-duel"}
    path = tmp_path / "my-duel.json"
    path.write_text(json.dumps(doc))
    return path


def _one_line_exit_2(argv, cwd):
    r = subprocess.run([sys.executable, "-m", "hakisa.cli", *argv], capture_output=True, text=True, cwd=cwd,
                       timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("hakisa: "), (argv, r.stderr[-2000:])
    return lines[0]


def _video_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of a video file, decoded with opencv."""
    import cv2

    assert path.exists(), path
    cap = cv2.VideoCapture(str(path))
    n, size = 0, (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, (frame.shape[1], frame.shape[0])
    cap.release()
    return n, size


def test_a_sim_run_of_a_users_game_file_plays_that_file(tmp_path):
    """`hakisa train --game FILE` in a simulator records FILE beside its run (game.json): plot, arena and
    diagnose play the user's file (its name, its rules), not the shipped game whose input map it shares."""
    from hakisa.cli import main

    game = _users_duel(tmp_path)
    cmd = [sys.executable, "-m", "hakisa.cli", "train", "--game", str(game), "--algo", "ppo", "--steps", "256",
           "--num-envs", "4", "--run", "mine", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
           "--set", "threads=1", "--set", "num_steps=32", "--replay"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    run = tmp_path / "runs" / "mine"
    # --replay: one fight of the run's agent filmed at the canvas's own size (issue 39 item 3: train at best/)
    ck = run / "best" if (run / "best" / "config.json").exists() else run / "checkpoint"
    assert f"train: replay of {ck.name}/" in out and _video_frames(ck / "replay.mp4")[0] > 10, out[-2000:]
    assert json.loads((run / "game.json").read_text())["game_file"] == str(game.resolve())
    torch.set_num_threads(1)
    assert main(["plot", str(run), "--out", str(tmp_path / "plot"), "--action-obs", "8"]) == 0
    assert (tmp_path / "plot" / "actions_mine.png").exists()
    assert diagnose(str(run), tmp_path / "diag", n_obs=8, frames=1, num_envs=2)["env"] == "my-duel"
    doc = run_arena([str(run)], episodes=1, settings=("easy",), num_envs=1, baselines=(), out=None)
    assert [row["agent"] for row in doc["boards"]["my-duel"]] == ["mine"]


@pytest.mark.x11
@pytest.mark.browser
@pytest.mark.long
def test_a_live_run_of_a_users_game_file_knows_its_game(xvfb, tmp_path):
    """A window-only game of the user's (tests/games/lights.json: no shipped game has its input map): its live
    run records the file in its config and its checkpoints, so plot, arena and diagnose need no --env. A run
    that recorded nothing (made before runs did) gets one line naming --env, exit 2, and nothing written."""
    import os

    lights = Path(__file__).parent / "games" / "lights.json"
    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "hakisa.cli", "train", "--game", str(lights), "--algo", "ppo", "--steps", "64",
           "--run", "lights", "--runs-dir", str(runs_dir), "--no-progress", "--set", "num_steps=32",
           "--set", "threads=1", "--replay"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ.copy(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = runs_dir / "lights"
    ck = run / "best" if (run / "best" / "config.json").exists() else run / "checkpoint"
    n, (w, h) = _video_frames(ck / "replay.mp4")
    assert n > 0 and (w, h) == tuple(json.loads(lights.read_text())["window"]["canvas"][2:]), (n, w, h)
    ckpts = [d / "config.json" for d in (run / "checkpoint", run / "best") if (d / "config.json").exists()]
    assert ckpts and all(json.loads(c.read_text())["algo"]["game_file"] == str(lights.resolve()) for c in ckpts)
    torch.set_num_threads(1)
    from hakisa.cli import main

    assert main(["plot", str(run), "--out", str(tmp_path / "plot"), "--action-obs", "4"]) == 0
    assert (tmp_path / "plot" / "actions_lights.png").exists()
    # sampled actions: a game ends after 20 presses, which a barely trained argmax may never make
    doc = run_arena([str(run)], episodes=1, num_envs=1, baselines=(), out=None, deterministic=False)
    assert [row["agent"] for row in doc["boards"]["lights"]] == ["lights"]
    for c in [run / "config.json", *ckpts]:  # as a run made before runs recorded their game file
        d = json.loads(c.read_text())
        d.pop("game_file", None)
        if isinstance(d.get("algo"), dict):
            d["algo"].pop("game_file", None)
        c.write_text(json.dumps(d))
    for argv in (["plot", str(run), "--out", str(tmp_path / "plot2")],
                 ["arena", str(run), "--episodes", "1", "--out", str(tmp_path / "arena2")],
                 ["diagnose", str(run), "--out", str(tmp_path / "diag2")]):
        line = _one_line_exit_2(argv, tmp_path)
        assert "cannot tell which game" in line and "--env" in line, (argv, line)
    assert not any((tmp_path / d).exists() for d in ("plot2", "arena2", "diag2"))
