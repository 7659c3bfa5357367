"""Generate notebooks/*.ipynb (without outputs) from the cell sources below.

    .venv/bin/python scripts/make_notebooks.py        # rewrite all four
    .venv/bin/python scripts/make_notebooks.py --check  # exit 1 if a committed notebook differs

The notebooks are written from here so a review reads plain Python, not JSON. Every code cell calls
the same public functions as the CLI (hakisa.algos.ppo.train, hakisa.arena.run_arena,
hakisa.plot.plot_runs, hakisa.diagnose.diagnose, hakisa.phases.study.study, ...). HAKISA_NB_SMALL=1
shrinks every budget so CI runs all four in a few minutes; without it they do real (longer) runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"

SETUP = '''\
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display

SMALL = os.environ.get("HAKISA_NB_SMALL") == "1"  # CI: tiny budgets, same code path
# Small batches (one observation per env) gain nothing from a second thread, and on a busy machine
# spinning threads made each forward ~15x slower. Full runs use torch's default.
torch.set_num_threads(1 if SMALL else max(1, min(2, os.cpu_count() or 1)))
RUNS = Path("runs/notebooks")
print("small budget" if SMALL else "full budget", "| outputs under", RUNS.resolve())'''


def nb01() -> list:
    return [
        new_markdown_cell("""\
# 01 · Quickstart: the duel

Make the duel env, look at what the agent sees, train PPO briefly, put the agent in the arena against
every boss tier, and look inside it: learning curves, action distribution, saliency.

Set `HAKISA_NB_SMALL=1` for a CI-sized run (a couple of thousand steps: the agent will not win yet).
The CLI equivalents are shown in each section."""),
        new_code_cell(SETUP),
        new_markdown_cell("""\
## The env
`make_vec` is what `hakisa train` uses: a numpy-batched duel with Gymnasium's SAME_STEP autoreset.
Observations are uint8 stacks of 4 gray 160x90 frames (`ObsSpec`); actions are `[command, x, y]` triples
of the duel input map (x/y have one bin: keyboard only)."""),
        new_code_cell('''\
from hakisa.envs.make import make_vec
from hakisa.games.duel import DUEL_ID

envs = make_vec(DUEL_ID, 8, seed=0, tier="normal", render_mode="rgb_array")
print(envs.single_observation_space, envs.single_action_space)
print("commands:", [c.name for c in envs.input_map.commands])
obs, info = envs.reset(seed=0)
for _ in range(30):  # a few random steps so something has happened
    obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
print({k: info[k][:4] for k in ("knight_hp", "boss_hp", "stamina", "ticks")})'''),
        new_markdown_cell("What a person sees (the canvas) and what the agent sees (the stack, oldest frame first):"),
        new_code_cell('''\
fig, axes = plt.subplots(1, 5, figsize=(17, 2.6))
axes[0].imshow(envs.render()[0]); axes[0].set_title("canvas 640x360")
for k in range(4):
    axes[k + 1].imshow(obs[0, k], cmap="gray"); axes[k + 1].set_title(f"obs[{k}] (t-{3 - k})")
for ax in axes:
    ax.axis("off")
plt.show()
envs.close()'''),
        new_markdown_cell("""\
## Train briefly
The same function `hakisa train --algo ppo` calls. It writes `runs/notebooks/duel-ppo/` (config,
TensorBoard events, `checkpoint/` and `best/`)."""),
        new_code_cell('''\
from hakisa.algos import ppo

run = RUNS / "duel-ppo"
envs = make_vec(DUEL_ID, 8 if SMALL else 16, seed=0, tier="normal")
args = ppo.Args(total_steps=2048 if SMALL else 400_000, num_steps=32 if SMALL else 128, progress=not SMALL,
                threads=1 if SMALL else 0)
metrics = ppo.train(envs, args, run)
envs.close()
print({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))})'''),
        new_markdown_cell("""\
## The arena: every tier, with confidence intervals
`hakisa arena runs/notebooks/duel-ppo --episodes N`. The scripted expert and a random agent are the
baselines; win rates carry 95% Wilson intervals, so a handful of fights reads as what it is."""),
        new_code_cell('''\
from hakisa.arena import print_leaderboard, run_arena

board = run_arena([run], episodes=4 if SMALL else 100, settings=("easy", "normal", "hard"),
                  num_envs=4 if SMALL else 16, out=RUNS / "arena-01")
print_leaderboard(board)'''),
        new_markdown_cell("""\
## Learning curves, action distribution, gradient norms
`hakisa plot runs/notebooks/duel-ppo --out …`: the policy heads are evaluated on real observations of
the checkpoint playing its env."""),
        new_code_cell('''\
from hakisa.plot import plot_runs

files = plot_runs([run], RUNS / "plots-01", action_obs=64 if SMALL else 512)
for f in files:
    print(f)
    display(Image(str(f)))'''),
        new_markdown_cell("""\
## Inside the network
`hakisa diagnose runs/notebooks/duel-ppo`: dead units per layer, gradient norms of one sample update,
entropy per head, and where the chosen command's logit is sensitive to the pixels (saliency)."""),
        new_code_cell('''\
from hakisa.diagnose import diagnose

report = diagnose(run, RUNS / "diagnose-01", n_obs=64 if SMALL else 512, frames=2)
print("dead units:", {k: f"{v['dead']}/{v['units']}" for k, v in report["dead_units"].items()})
print("entropy (command):", round(report["entropy"]["command"]["mean"], 3), "nats")
print("flags:", report["flags"] or "none")
for s in report["saliency"]:
    display(Image(s["file"]))'''),
        new_markdown_cell("""\
Next: `hakisa play --game duel --live --checkpoint runs/notebooks/duel-ppo` plays the real browser page through
the screen (it brings up its own Xvfb when there is no display)."""),
    ]


def nb02() -> list:
    return [
        new_markdown_cell("""\
# 02 · Teacher and study

A teacher plays, Hakisa watches, then studies (behaviour cloning). The dataset is an episode store
(`hakisa.data`): frames, `[command, x, y]` actions, rewards, dones, timestamps and the meta they were
recorded with.

* With a display (or Xvfb + Chromium) and `HAKISA_NB_RECORD=1`, the scripted teacher plays the **real
  page** through X key events while `hakisa record` watches the screen (`benchmarks/teacher_duel.py`).
* Otherwise (CI) the same scripted expert plays the **sim** and its fights are written in the same
  format through `EpisodeWriter`, by the arena's expert baseline (`hakisa.arena.play_expert`)."""),
        new_code_cell(SETUP),
        new_code_cell("""\
import subprocess
import sys

import hakisa
from hakisa.arena import play_expert
from hakisa.preprocess import ObsSpec
from hakisa.data import EpisodeStore, EpisodeWriter
from hakisa.input_map import InputMap

data = Path("datasets/notebooks/teacher-duel")
fights = 8 if SMALL else 100
if os.environ.get("HAKISA_NB_RECORD") == "1":  # the real page, real X events, a separate recorder
    script = Path(hakisa.__file__).resolve().parents[1] / "benchmarks" / "teacher_duel.py"
    subprocess.run([sys.executable, str(script), "--fights", str(fights), "--out", str(data)], check=True)
elif not (data / "meta.json").exists():
    # 80x45: the duel recipe's frames, and what the shipped perception encoder (below) was trained on
    spec = ObsSpec(width=80, height=45)
    meta = {"input_map": InputMap.load("duel"), "obs_spec": spec, "fps": 15, "source": "teacher", "game": "duel-sim"}
    with EpisodeWriter(data, meta, chunk_frames=256) as writer:
        teacher = play_expert(fights, settings=("normal",), seed=0, num_envs=4, game="duel", collect=writer,
                              obs_spec=spec)
    print("teacher win rate while recording:", teacher[0]["win_rate"])
store = EpisodeStore(data)
print(len(store.episodes), "episodes,", store.num_frames, "frames; meta source:", store.meta["source"])"""),
        new_markdown_cell("## Inspect the episodes"),
        new_code_cell("""\
ep = store.episode(0)
print({k: v.shape for k, v in ep.items()})
print("return of episode 0:", float(ep["rewards"].sum()), "| length:", len(ep["actions"]))
names = [c.name for c in store.input_map.commands]
picks = np.linspace(0, len(ep["frames"]) - 1, 5).astype(int)
fig, axes = plt.subplots(1, 5, figsize=(16, 2.2))
for ax, t in zip(axes, picks):
    ax.imshow(ep["frames"][t, 0], cmap="gray"); ax.set_title(f"t={t}: {names[ep['actions'][t, 0]]}"); ax.axis("off")
plt.show()"""),
        new_markdown_cell("Action histogram of the whole store, drawn by the same function `hakisa plot` uses:"),
        new_code_cell("""\
from hakisa.plot import head_labels, plot_action_heads

hist = store.action_histogram()
print(dict(zip(names, hist.tolist())))
png = plot_action_heads({"command": hist}, head_labels(store.input_map), RUNS / "plots-02" / "teacher_actions.png",
                        "teacher's commands")
display(Image(str(png)))"""),
        new_markdown_cell("""\
## Study
`hakisa study datasets/notebooks/teacher-duel --out runs/notebooks/duel-bc --init pretrained:duel-perception`: cross-entropy on the
factorised heads, validation on held-out episodes, early stopping."""),
        new_code_cell("""\
from hakisa.phases.study import StudyArgs, study

bc_run = RUNS / "duel-bc"
# A few dozen fights are too few frames to learn both to SEE and to DECIDE: start from the encoder that
# `hakisa duel perception` trained to read the fight's state off sim frames (state labels, never actions).
result = study(StudyArgs(dataset=str(data), out=str(bc_run), epochs=3 if SMALL else 30,
                         init="pretrained:duel-perception", threads=1 if SMALL else 0, progress=not SMALL))
print({k: v for k, v in result.items() if not isinstance(v, (list, dict))})"""),
        new_markdown_cell("""\
## Studied agent vs teacher vs random
The arena plays all three on the same fixed seeds. (In CI the budget is tiny, so expect the studied
agent near random; the full run is what the bar in the study issue is about.)"""),
        new_code_cell("""\
from hakisa.arena import print_leaderboard, run_arena

board = run_arena([bc_run], episodes=8 if SMALL else 100, settings=("normal",), num_envs=8 if SMALL else 16,
                  baselines=("random", "expert"), out=RUNS / "arena-02")
print_leaderboard(board)"""),
        new_code_cell("""\
from hakisa.plot import plot_runs

for f in plot_runs([bc_run], RUNS / "plots-02", action_obs=64 if SMALL else 512):
    display(Image(str(f)))"""),
    ]


def nb03() -> list:
    return [
        new_markdown_cell("""\
# 03 · stable-retro: Airstriker

The same phases on a console game shipped with stable-retro (`Airstriker-Genesis-v0`, ROM included).
The retro adapter turns the game into the Hakisa contract: frames through the shared `preprocess`,
the pad's buttons as an input map of chords, and the reward from the score's RAM delta. Each emulator
runs in its own process."""),
        new_code_cell(SETUP),
        new_code_cell("""\
from hakisa.envs.make import make_vec

GAME = "Airstriker-Genesis-v0"
# in CI, cut episodes short: a full game is thousands of steps
env_kw = {"max_episode_steps": 150} if SMALL else {}
envs = make_vec(GAME, 2 if SMALL else 4, seed=0, **env_kw)
print(envs.single_observation_space, "| commands:", [c.name for c in envs.input_map.commands])
obs, info = envs.reset(seed=0)
for _ in range(40):
    obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
fig, axes = plt.subplots(1, obs.shape[1], figsize=(14, 3))
for k, ax in enumerate(axes):
    ax.imshow(obs[0, k], cmap="gray"); ax.set_title(f"obs[{k}]"); ax.axis("off")
plt.show()
print("score so far:", info.get("game_score"))"""),
        new_markdown_cell("## Train PPO briefly (`hakisa train --env Airstriker-Genesis-v0`)"),
        new_code_cell("""\
from hakisa.algos import ppo

run = RUNS / "airstriker-ppo"
args = ppo.Args(total_steps=256 if SMALL else 200_000, num_steps=64 if SMALL else 128, progress=not SMALL,
                threads=1 if SMALL else 0)
metrics = ppo.train(envs, args, run)
envs.close()
print({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))})"""),
        new_markdown_cell("""\
## Score vs random on fixed seeds
`hakisa play` / `hakisa arena` use `hakisa.evaluate.evaluate`; a random agent is the same loop with
epsilon = 1 (every action uniformly random)."""),
        new_code_cell("""\
from hakisa.model import find_checkpoint, load_checkpoint
from hakisa.evaluate import evaluate

episodes = 2 if SMALL else 10
net, _ = load_checkpoint(find_checkpoint(run))
scores = {}
for name, eps in (("ppo", 0.0), ("random", 1.0)):
    env = make_vec(GAME, 2, seed=123, **env_kw)
    scores[name] = evaluate(net, env, episodes, "sample", seed=123, epsilon=eps)
    env.close()
print(json.dumps(scores, indent=1))"""),
        new_code_cell("""\
from hakisa.arena import print_leaderboard, run_arena

board = run_arena([run], episodes=episodes, num_envs=2, baselines=(), out=RUNS / "arena-03", env_kwargs=env_kw)
print_leaderboard(board)"""),
        new_code_cell("""\
from hakisa.plot import plot_runs

for f in plot_runs([run], RUNS / "plots-03", action_obs=32 if SMALL else 256):
    display(Image(str(f)))"""),
    ]


def nb04() -> list:
    return [
        new_markdown_cell("""\
# 04 · Rewards from pixels

A real game has no API: reward and "episode over" must be read from the screen. Here we build readers
for the duel from a few screenshots, then check them against the truth on recorded frames.
The frames come from the sim, which renders exactly the page's canvas pixels; with a display, the same
readers run on screen grabs of the page (`hakisa play --game duel --live` does)."""),
        new_code_cell(SETUP),
        new_markdown_cell("## Record frames with the truth beside them"),
        new_code_cell("""\
from hakisa.preprocess import rgb_to_bgra
from hakisa.games.duel.expert import expert_keys
from hakisa.games.duel.sim import COMMAND_KEYS
from hakisa.envs.make import make_env
from hakisa.games.duel import DUEL_ID

env = make_env(DUEL_ID, tier="normal", render_mode="rgb_array")
sim = env.unwrapped.fights.sim  # the truth, to check the readers against; the readers never see it
to_cmd = {int(k): i for i, k in enumerate(COMMAND_KEYS)}
obs, info = env.reset(seed=3)
frames, truth, env_rewards = [], [], []
for t in range(150 if SMALL else 1500):
    obs, r, term, trunc, info = env.step([to_cmd[int(expert_keys(sim.state)[0])], 0, 0])
    if term:
        break
    frames.append(rgb_to_bgra(env.render()))  # BGRA, as a screen grab gives
    truth.append(info)
    env_rewards.append(r)
print(len(frames), "frames;", "last truth:", truth[-1])"""),
        new_markdown_cell("""\
## Build bar readers from a screenshot
Find each HUD bar's colour by sampling the screenshot itself (the most common colour in the bar's box
on a frame where the bar is full), then a `BarReader` counts the filled columns."""),
        new_code_cell("""\
from hakisa.games.duel.sim import load_rules
from hakisa.rewards import BarReader

rules = load_rules()
shot = frames[0]
hud = rules["hud"]
boxes = {"knight_hp": hud["knight_hp"], "boss_hp": hud["boss_hp"], "stamina": hud["knight_stamina"]}
totals = {"knight_hp": rules["knight"]["hp"], "boss_hp": rules["boss"]["hp"], "stamina": rules["knight"]["stamina"]}
readers = {}
fig, axes = plt.subplots(1, 3, figsize=(14, 1.6))
for ax, (name, (x, y, w, h)) in zip(axes, boxes.items()):
    crop_bgr = shot[y:y + h, x:x + w, :3].reshape(-1, 3)
    colours, counts = np.unique(crop_bgr, axis=0, return_counts=True)
    rgb = tuple(int(v) for v in colours[counts.argmax()][::-1])
    readers[name] = BarReader(region=(x, y, w, h), color=rgb, scale=totals[name])
    ax.imshow(shot[y:y + h, x:x + w, 2::-1]); ax.set_title(f"{name}: rgb{rgb}"); ax.axis("off")
plt.show()"""),
        new_markdown_cell("## Check them on the recorded frames"),
        new_code_cell("""\
errors = {}
fig, axes = plt.subplots(1, 3, figsize=(15, 3))
truth_key = {"knight_hp": "knight_hp", "boss_hp": "boss_hp", "stamina": "stamina"}
for ax, (name, reader) in zip(axes, readers.items()):
    read = np.array([reader.read(f) for f in frames])
    true = np.array([i[truth_key[name]] for i in truth], dtype=float)
    errors[name] = float(np.abs(read - true).mean())
    ax.plot(true, label="truth"); ax.plot(read, "--", label="read from pixels"); ax.set_title(name); ax.legend()
plt.show()
print("mean absolute error (game units):", {k: round(v, 2) for k, v in errors.items()})
# the HUD is drawn on a 4-px grid, so a bar reads to within a few units
assert all(errors[k] <= 0.05 * totals[k] for k in errors), errors"""),
        new_markdown_cell("""\
## The shipped screen rules: delta reward, done, in-play
`Game.load("duel").judge()` is the duel game file's screen rules, which `hakisa play --game duel --live` uses. Its reward is a **delta**
of readings (HP lost by the boss minus HP lost by the knight), so it should track the sim's own reward
step by step (the sim adds a win/loss bonus at the end, which the page shows as a result band)."""),
        new_code_cell("""\
from hakisa.game import Game

judge = Game.load("duel").judge()
judge.reset(frames[0])
pixel_rewards = [judge.step(f)[0] for f in frames[1:]]
sim_rewards = np.array(env_rewards[1:len(frames)])
print("sum of rewards  from pixels:", round(sum(pixel_rewards), 2), "| sim:", round(float(sim_rewards.sum()), 2))
if np.std(sim_rewards) > 0:
    print("per-step correlation:", round(float(np.corrcoef(pixel_rewards, sim_rewards)[0, 1]), 3))
print("in play:", judge.in_play(), "| done:", judge.is_done())"""),
        new_markdown_cell("""\
## Digits by template matching
Score counters need a digit reader. `DigitReader.fit` learns templates from a few labelled crops (here a
score drawn the way many games draw it), then reads numbers it has never seen."""),
        new_code_cell("""\
import cv2

from hakisa.rewards import DigitReader


def score_crop(value: int) -> np.ndarray:
    img = np.zeros((24, 90, 3), np.uint8)
    cv2.putText(img, str(value), (2, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (240, 240, 240), 2, cv2.LINE_8)
    return img


train_values = [1234567890, 9876543210, 13579, 24680]  # every digit, a few times
reader = DigitReader(fg_tol=60).fit([score_crop(v) for v in train_values], train_values)
rng = np.random.default_rng(0)
test_values = rng.integers(0, 100000, 20 if SMALL else 200)
reads = [reader.read_crop(score_crop(int(v))) for v in test_values]
acc = float(np.mean([r == v for r, v in zip(reads, test_values)]))
print("templates:", sorted(reader.templates), "| held-out accuracy:", acc)
display(Image(cv2.imencode(".png", np.vstack([score_crop(int(v)) for v in test_values[:4]]))[1].tobytes()))"""),
        new_markdown_cell("""\
Where hand-written readers fail (textured bars, animated HUDs), `hakisa.rewards.RewardNet` learns a
reading from labelled crops instead (a small CNN with a validation split)."""),
    ]


NOTEBOOKS = {
    "01_quickstart_duel.ipynb": nb01,
    "02_teacher_and_study.ipynb": nb02,
    "03_retro_airstriker.ipynb": nb03,
    "04_rewards_from_pixels.ipynb": nb04,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"  # stable ids: regenerating leaves an unchanged notebook byte-identical
    return nb


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a notebook on disk differs from its generator")
    a = p.parse_args()
    OUT.mkdir(exist_ok=True)
    stale = []
    for name in NOTEBOOKS:
        text = nbformat.writes(build(name)) + "\n"
        path = OUT / name
        if a.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(path)
    if stale:
        print("out of date (run scripts/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
