"""Game files: loading, validation (one bad field per message), options, and the CLI's one-line errors."""
from __future__ import annotations

import concurrent.futures
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hakisa.game import GAMES_DIR, Game, GameFileError, find_game, parse_opts

POP = json.loads((GAMES_DIR / "pop.json").read_text())
LIVES_COLOUR = {("colour" if k == "color" else k): v for k, v in POP["rules"]["readers"]["lives"].items()}


def test_shipped_games_load_and_say_how_they_are_judged():
    pop, duel = Game.load("pop"), Game.load("duel")
    assert pop.sim is None and not pop.won_or_lost and pop.score == "score"
    assert pop.input_map.uses_xy.tolist() == [False, True, True] and (pop.input_map.x_bins, pop.input_map.y_bins) == (
        16,
        10,
    )
    assert duel.sim["env"] == "Hakisa/Duel-v0" and duel.won_or_lost
    assert set(duel.judge().readers) >= {"knight_hp", "boss_hp", "victory", "defeat"}
    assert find_game(GAMES_DIR / "pop.json") == GAMES_DIR / "pop.json"


def _write(tmp_path: Path, doc: dict) -> Path:
    p = tmp_path / "pop.json"
    p.write_text(json.dumps(doc))
    (tmp_path / "pop").symlink_to(GAMES_DIR / "pop")  # the page folder and digit templates, beside the file
    return p


def _set(doc: dict, path: str, value):
    d = doc
    keys = path.split(".")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    last = int(keys[-1]) if isinstance(d, list) else keys[-1]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value


BAD = [  # (field to change, new value, what the message must say)
    ("rules.readers.lives.region", [300, 8, 90], "rules.readers.lives.region: 4 numbers expected, got 3"),
    ("rules.readers.lives.type", "lifebar", "rules.readers.lives.type: 'lifebar' is not one of"),
    ("rules.readers.lives.color", KeyError, "rules.readers.lives.color: missing"),
    ("rules.readers.score.templates", "nowhere/digits", "rules.readers.score.templates: no templates 'nowhere/digits'"),
    ("rules.done.reading", "gameover", "rules.done.reading: 'gameover' is not one of the readers"),
    ("rules.done.op", "=>", "rules.done.op: '=>' is not one of"),
    ("rules.reward.deltas", {"points": 1}, "rules.reward.deltas.points: not one of the readers"),
    ("rules.navigation.restart", [{"press": "r"}], "rules.navigation.restart[0]: a step"),
    ("window.canvas", [0, 0, 480], "window.canvas: 4 numbers expected, got 3"),
    ("window.launch", {"web": "missing-folder"}, "window.launch.web: no folder 'missing-folder'"),
    ("window.titel", "Pop", "window.titel: unknown field"),
    ("obs.width", -5, "obs.width: a positive whole number expected"),
    ("hz", 0, "hz: decisions per second in (0, 240] expected"),
    ("input_map.commands.1.kind", "hover", "input_map.commands[1].kind: 'hover' is not one of"),
    ("input_map.x_bins", 0, "input_map.x_bins: a positive whole number expected"),
    ("score", "points", "score: 'points' is not one of the readers"),
    ("name", KeyError, "name: missing"),
    ("options.seed.default", 5, None),  # fine: no choices to check against
    # unknown fields at every level, each with the closest known one
    ("input_map.x_bin", 24, "input_map.x_bin: unknown field 'x_bin'; did you mean 'x_bins'?"),
    ("input_map.commands.1.kyes", ["a"], "input_map.commands[1].kyes: unknown field 'kyes'; did you mean 'keys'?"),
    ("rules.readers.lives", LIVES_COLOUR, "rules.readers.lives.colour: unknown field 'colour'; did you mean 'color'?"),
    ("rules.done_frame", 2, "rules.done_frame: unknown field 'done_frame'; did you mean 'done_frames'?"),
    ("rules.start_frames", "two", "rules.start_frames: 'two' is not a whole number of frames (1 or more)"),
    ("rules.start_frames", 2, None),
    ("rules.done.opp", ">", "rules.done.opp: unknown field 'opp'; did you mean 'op'?"),
    ("rules.reward.delta", {}, "rules.reward.delta: unknown field 'delta'; did you mean 'deltas'?"),
    ("rules.navigation.restart.1.timout", 5, "rules.navigation.restart[1].timout: unknown field 'timout'"),
    ("rules.probe", {"command": "click", "region": [0, 0, 9, 9], "treshold": 3}, "rules.probe.treshold: unknown field"),
    ("train", {"num_env": 8}, "train.num_env: unknown field 'num_env'; did you mean 'num_envs'?"),
    ("train", {"ppo": {}, "live": {"dqm": {}}}, "train.live.dqm: unknown field 'dqm'; did you mean 'dqn'?"),
    # key names, checked against the backends' key table when the file loads (no display needed)
    ("input_map.commands.0", {"name": "go", "kind": "keys", "keys": ["leftt"]},
     "input_map.commands[0].keys[0]: unknown key name 'leftt'; did you mean 'left'?"),
    ("rules.navigation.restart.0.key", "spcae", "rules.navigation.restart[0].key: unknown key name 'spcae'; "
     "did you mean 'space'?"),
    ("rules.kill_key", "f21", "rules.kill_key: unknown key name 'f21'"),
    ("input_map.commands.0", {"name": "go", "kind": "keys", "keys": ["J", "shift_l", "f20"]}, None),
]


@pytest.mark.parametrize("field,value,message", BAD, ids=[b[0] for b in BAD])
def test_one_bad_field_one_message_naming_file_and_field(tmp_path, field, value, message):
    doc = copy.deepcopy(POP)
    _set(doc, field, value)
    path = _write(tmp_path, doc)
    if message is None:
        Game.load(path)
        return
    with pytest.raises(GameFileError) as e:
        Game.load(path)
    text = str(e.value)
    assert text.startswith(str(path)) or text.startswith("pop.json"), text
    assert message in text, text
    assert "\n" not in text


def test_the_key_table_is_pynputs(xvfb):
    """Game files' keys are checked against input_map.KEY_NAMES, written out so that no display is needed:
    it must stay pynput's own table (pynput, which both backends press keys through, needs a display)."""
    import os

    from hakisa.input_map import KEY_NAMES

    r = subprocess.run([sys.executable, "-c", "from pynput.keyboard import Key; print(' '.join(Key.__members__))"],
                       capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(KEY_NAMES) == sorted(r.stdout.split())


def test_not_json_and_no_such_game(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x",')
    with pytest.raises(GameFileError, match="broken.json: not valid JSON"):
        Game.load(bad)
    with pytest.raises(GameFileError, match="shipped game: duel, pop"):
        Game.load("no-such-game")


def test_options_validate_and_comma_lists_give_each_sim_env_one_value():
    duel = Game.load("duel")
    assert duel.resolve_options({})["tier"] == "normal"
    assert duel.resolve_options({"tier": "easy,hard"})["tier"] == "easy,hard"
    with pytest.raises(GameFileError, match="option tier='brutal'"):
        duel.resolve_options({"tier": "brutal"})
    with pytest.raises(GameFileError, match="has no option 'speed'"):
        duel.resolve_options({"speed": 2})
    envs = duel.sim_vec(4, seed=1, opts={"tier": "easy,hard"})
    try:
        assert envs.fights.sim.state["tier"].tolist() == [0, 2, 0, 2]
    finally:
        envs.close()
    assert parse_opts(["tier=hard", "seed=3"]) == {"tier": "hard", "seed": 3}
    with pytest.raises(GameFileError, match="KEY=VALUE"):
        parse_opts(["tier"])


def test_a_game_without_a_simulator_says_so(tmp_path):
    pop = Game.load("pop")
    with pytest.raises(GameFileError, match="has no simulator"):
        pop.sim_vec(2)
    # (hakisa train learns on the window instead: tests/test_live_train.py)
    r = subprocess.run(
        [sys.executable, "-m", "hakisa.cli", "evolve", "--game", "pop", "--generations", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "no simulator" in r.stderr, r.stderr


def test_score_games_report_mean_score_and_won_games_win_rate():
    from hakisa.algos.common import EpisodeStats, summarize

    st = EpisodeStats(2)
    done = np.array([True, True])
    eps = st.update(np.array([1.0, 2.0]), done, done, {"score": np.array([3.0, 5.0]), "_score": done})
    s = summarize(eps)
    assert s["mean_score"] == 4.0 and s["score_ci95"] > 0 and "win_rate" not in s
    eps = st.update(np.array([1.0, 2.0]), done, done, {"winner": np.array([1, 2]), "_winner": done})
    assert summarize(eps)["win_rate"] == 0.5


def test_episode_stats_read_the_finished_episode_from_final_info():
    """Gymnasium's SyncVectorEnv (a window game's env) puts the NEXT episode's reset info at the top of the step
    that ends one, and the finished episode's in final_info: the score must come from there."""
    from hakisa.algos.common import EpisodeStats

    st = EpisodeStats(2)
    done = np.array([True, False])
    top = {"score": np.array([0.0, 7.0], object), "_score": np.array([True, True])}  # env 0: its new game's 0
    final = {"score": np.array([12.0, None], object), "_score": np.array([True, False])}
    (ep,) = st.update(np.array([1.0, 0.0]), done, np.zeros(2, bool), {**top, "final_info": final,
                                                                        "_final_info": done})
    assert ep["score"] == 12.0


def _cli(argv, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "hakisa.cli", *argv], capture_output=True, text=True, cwd=cwd, env=env)


def _one_line_exit_2(r, argv):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("hakisa: "), (argv, r.stderr)
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    """Errors Hakisa raises on purpose print `hakisa: <message>` and exit 2; --debug shows the traceback.
    Bad game file, no episode store, no checkpoint, a corrupt one, another game's, a bad --set, no display."""
    import os

    doc = copy.deepcopy(POP)
    doc["rules"]["readers"]["lives"]["region"] = [1, 2, 3]
    path = _write(tmp_path, doc)
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text(
        (Path(__file__).parents[1] / "hakisa/pretrained/duel-ppo/config.json").read_text()
    )
    (corrupt / "model.safetensors").write_bytes(b"not tensors at all")
    no_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    typo = copy.deepcopy(POP)
    typo["input_map"]["commands"].append({"name": "go", "kind": "keys", "keys": ["leftt"]})
    typo_dir = tmp_path / "typo"
    typo_dir.mkdir()
    typo_path = _write(typo_dir, typo)
    window_only = copy.deepcopy(POP)  # found by its title on the user's display: there is none here
    window_only["window"] = {"title": "My Game", "canvas": [0, 0, 480, 320]}
    (tmp_path / "mine").mkdir()
    window_only_path = _write(tmp_path / "mine", window_only)
    cases = [
        (["game", "check", str(typo_path), "--out", str(out)], "input_map.commands[3].keys[0]: unknown key name "
         "'leftt'; did you mean 'left'?"),
        (["play", "--game", str(typo_path), "--episodes", "1", "--out", str(out)], "did you mean 'left'?"),
        (["play", "--game", str(window_only_path), "--episodes", "1", "--out", str(out)], "DISPLAY is not set"),
        (["record", "--game", str(path), "--out", str(out)], "lives"),
        (["play", "--game", str(path), "--episodes", "1", "--out", str(out)], "lives"),
        (["study", str(tmp_path / "no-dataset"), "--out", str(out)], "no-dataset"),
        (["play", "--game", "no-such-game"], "no-such-game"),
        (["play", "--game", "duel", "--checkpoint", str(tmp_path), "--episodes", "1"], "no checkpoint"),
        (["play", "--game", "duel", "--checkpoint", str(corrupt), "--episodes", "1"], "corrupt"),
        (["play", "--game", "pop", "--checkpoint", "pretrained:duel-ppo", "--out", str(out)], "input map"),
        (["train", "--game", "duel", "--set", "no_such_field=1", "--runs-dir", str(out)], "no_such_field"),
        (["record", "--window", "some game", "--map", "duel", "--out", str(out)], "DISPLAY"),
    ]
    # the cases are independent processes that mostly import torch: run them at once (2x on 2 cores)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = pool.map(lambda argv: _cli(argv, tmp_path, env=no_display), [argv for argv, _ in cases])
        debug = pool.submit(_cli, ["play", "--game", "no-such-game", "--debug"], tmp_path)
        for (argv, says), r in zip(cases, runs):
            line = _one_line_exit_2(r, argv)
            assert says in line, (argv, line)
        assert not out.exists()
        r = debug.result()
    assert r.returncode == 1 and "Traceback" in r.stderr


@pytest.mark.x11
def test_window_errors_are_one_line_and_name_what_is_there(xvfb, xwin, tmp_path):
    """On a real display: a window that is not there lists the visible titles; a region off the screen says so."""
    import os

    xwin(title="a real window")
    out = tmp_path / "out"
    line = _one_line_exit_2(_cli(["record", "--window", "no such game", "--map", "duel", "--out", str(out)], tmp_path,
                                 env=os.environ.copy()), "window")
    assert "no such game" in line and "a real window" in line, line
    argv = ["record", "--region", "5000,5000,100,100", "--map", "duel", "--out", str(out)]
    line = _one_line_exit_2(_cli(argv, tmp_path, env=os.environ.copy()), argv)
    assert "5000" in line, line
    assert not out.exists()
