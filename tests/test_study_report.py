"""The study report's warnings fire on the recordings they describe, and only on those.

Datasets are written through the EpisodeWriter as `hakisa record` writes them: a gray 48x32 frame with a
bright 6x6 target in one cell of a 4x4 grid, and a click on that cell. In the "sliver" recording the clicks
land where the frame shows nothing (the target is elsewhere, or not drawn yet): the click-visibility
warning must fire on it and not on the honest one.
"""
from __future__ import annotations

import numpy as np
import pytest

from hakisa.data import EpisodeStore, EpisodeWriter, Transitions
from hakisa.envs.toy import click_map
from hakisa.preprocess import ObsSpec
from hakisa.study_report import click_visibility, warnings_for

SPEC = ObsSpec(width=48, height=32, gray=True, stack=2)


def write_clicks(root, visible: bool, episodes: int = 4, frames: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    imap = click_map(4)
    with EpisodeWriter(root, {"input_map": imap, "obs_spec": SPEC, "fps": 15, "source": "teacher"}) as w:
        for _ in range(episodes):
            w.begin_episode()
            for t in range(frames):
                f = np.full((1, 32, 48), 30, np.uint8)
                bx, by = rng.integers(0, 4, 2)
                if visible:
                    f[0, by * 8 + 1 : by * 8 + 7, bx * 12 + 3 : bx * 12 + 9] = 230
                    click = (bx, by)
                else:  # the target is drawn two cells away from where the click lands
                    f[0, by * 8 + 1 : by * 8 + 7, bx * 12 + 3 : bx * 12 + 9] = 230
                    click = ((bx + 2) % 4, (by + 2) % 4)
                a = [2, *click] if t % 2 == 0 else [0, 0, 0]
                w.add(f, a, 0.0, t == frames - 1, t=t / 15)
            w.end_episode()


def test_click_visibility_tells_clicks_on_targets_from_clicks_on_nothing(tmp_path):
    write_clicks(tmp_path / "good", visible=True)
    write_clicks(tmp_path / "sliver", visible=False)
    imap = click_map(4)
    good = Transitions(EpisodeStore(tmp_path / "good"), stack=2)
    bad = Transitions(EpisodeStore(tmp_path / "sliver"), stack=2)
    assert click_visibility(good, imap) > 0.9
    assert click_visibility(bad, imap) < 0.1
    # a keyboard-only recording has no clicks to judge
    from hakisa.envs.toy import keypress_map

    assert click_visibility(good, keypress_map()) is None
    # nor has a map whose clicks name no point on one axis (one y bin: a click anywhere in a column)
    from hakisa.input_map import InputMap

    column = InputMap("toy-column", imap.commands, x_bins=4, y_bins=1)
    assert click_visibility(bad, column) is None


def fake_validation(balanced: float, top_share: float, majority: float, spread: float, n_cmd: int = 3) -> dict:
    conf = np.eye(n_cmd, dtype=int) * 10
    return {"balanced_acc_cmd": balanced, "predicted_share_top": top_share, "majority_baseline": majority,
            "logit_spread": spread, "balanced_acc_x": 0.9, "balanced_acc_y": 0.9,
            "confusion": [conf.tolist(), np.eye(4, dtype=int).tolist(), np.eye(4, dtype=int).tolist()]}


def test_warnings_name_what_went_wrong(tmp_path):
    write_clicks(tmp_path / "sliver", visible=False)
    write_clicks(tmp_path / "good", visible=True)
    imap = click_map(4)
    bad = Transitions(EpisodeStore(tmp_path / "sliver"), stack=2)
    good = Transitions(EpisodeStore(tmp_path / "good"), stack=2)
    history = [{}] * 12
    healthy = fake_validation(0.8, 0.5, 0.5, 0.8)
    w_bad = warnings_for(bad, bad, healthy, history, imap)
    assert any("show nothing near the clicked cell" in w for w in w_bad), w_bad
    w_good = warnings_for(good, good, healthy, history, imap)
    assert not any("clicked cell" in w or "chance" in w or "copies" in w or "hardly change" in w for w in w_good)
    at_chance = warnings_for(good, good, fake_validation(0.36, 0.97, 0.5, 0.01), history, imap)
    assert any("command head is at chance after 12 validations" in w for w in at_chance), at_chance
    assert any("copies the most common action" in w for w in at_chance), at_chance
    assert any("hardly change with the screen" in w for w in at_chance), at_chance


def test_report_links_each_disagreement_to_its_episode_and_frame(tmp_path, capsys):
    """A real validation of an untrained clone: every disagreement names the episode id and frame in the store
    where the teacher did what the report says, and the `hakisa data view` command that opens it."""
    import json
    import shlex

    import torch

    from hakisa.algos.bc import validate
    from hakisa.model import HakisaNet
    from hakisa.study_report import write_report

    write_clicks(tmp_path / "ds", visible=True, episodes=3, frames=30)
    store = EpisodeStore(tmp_path / "ds")
    data = Transitions(store, stack=2)
    val = data.subset(data.episode_ids[1:])  # held-out episodes that do not start the store
    imap = click_map(4)
    torch.manual_seed(0)
    net = HakisaNet(SPEC, imap, encoder="fine", hidden=32)  # study's encoder: a 48x32 frame is enough for it
    final = validate(net, val, torch.ones(len(imap.commands)), net.uses_xy, len(imap.commands), keep=12)
    assert final.get("disagreements"), "an untrained clone disagrees somewhere"
    (tmp_path / "run").mkdir()
    write_report(tmp_path / "run", data, val, final, [{"step": 0, **final}], imap, [], {})
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(doc["disagreements"]) == len(final["disagreements"]) and doc["view"]
    ids = [e.id for e in store.episodes]
    for d in doc["disagreements"]:
        assert d["episode"] in data.episode_ids[1:]
        ep = store.episode(ids.index(d["episode"]))
        assert ep["actions"][d["episode_frame"]].tolist() == d["teacher"]
        argv = shlex.split(d["view"])
        assert argv[:3] == ["hakisa", "data", "view"] and EpisodeStore(argv[3]).root.resolve() == store.root.resolve()
        assert argv[4:] == ["--episode", str(d["episode"]), "--frame", str(d["episode_frame"])]
    assert doc["view"][0] in capsys.readouterr().out  # the study prints the first


def test_validation_knows_what_repeating_the_last_command_scores(tmp_path):
    """Held keys: each command runs 4 frames, so repeating the frame before's command is right on 3 of 4 frames
    of every command (the copycat baseline), and each run of a key is one onset."""
    import torch

    from hakisa.algos.bc import validate
    from hakisa.envs.toy import keypress_map
    from hakisa.model import HakisaNet

    imap, frames, run = keypress_map(), 48, 4
    n_cmd = len(imap.commands)
    with EpisodeWriter(tmp_path / "held", {"input_map": imap, "obs_spec": SPEC, "fps": 15, "source": "teacher"}) as w:
        for e in range(3):
            w.begin_episode()
            for t in range(frames):
                cmd = (t // run + e) % n_cmd
                w.add(np.full((1, 32, 48), 20 * cmd, np.uint8), [cmd, 0, 0], 0.0, t == frames - 1, t=t / 15)
            w.end_episode()
    data = Transitions(EpisodeStore(tmp_path / "held"), stack=2)
    torch.manual_seed(0)
    net = HakisaNet(SPEC, imap, encoder="fine", hidden=32)
    v = validate(net, data, torch.ones(n_cmd), net.uses_xy, n_cmd)
    # the first frame of an episode has no frame before; the usable frames end one before each episode's last
    assert abs(v["repeat_baseline"] - 0.75) < 0.05, v["repeat_baseline"]
    idle = next(i for i, c in enumerate(imap.commands) if c.kind == "noop")
    acts = data.actions[data.indices, 0]
    starts = data.indices > data.ep_start[data.indices]
    expected = int((starts & (acts != data.actions[data.indices - 1, 0]) & (acts != idle)).sum())
    assert v["onsets"] == expected > 0 and 0.0 <= v["acc_cmd_on_onsets"] <= 1.0
    # study's --onset-weight counts the same frames (all of them, not only the usable ones) that many times
    from hakisa.algos.bc import onset_weights

    w = onset_weights(data, imap, 3.0)
    starts = [e * frames + t for e in range(3) for t in range(run, frames, run) if (t // run + e) % n_cmd != idle]
    assert np.flatnonzero(w == 3.0).tolist() == starts and set(np.unique(w)) == {1.0, 3.0}
    # --onset-tolerance 1: the frame before each onset (held keys: the frame after already has it) gets its action
    from hakisa.algos.bc import ALT_WEIGHT, bc_loss, onset_neighbours

    alt = onset_neighbours(data, imap, 1)
    assert np.flatnonzero(alt[:, 0] >= 0).tolist() == [s - 1 for s in starts]
    assert (alt[np.array(starts) - 1] == data.actions[starts]).all()
    # and the loss counts it at ALT_WEIGHT beside the frame's own label, class weights included
    i = np.array(starts[:3]) - 1
    obs, act = torch.from_numpy(data.get(i)["obs"]), torch.from_numpy(data.actions[i])
    cw = torch.linspace(0.5, 1.5, n_cmd)
    with torch.no_grad():
        both, _ = bc_loss(net, {"obs": obs, "actions": act, "alt": torch.from_numpy(alt[i])}, cw, net.uses_xy)
        lc = torch.log_softmax(net.policy(obs)[0], 1)
    own, other = -lc[range(3), act[:, 0]], -lc[range(3), torch.from_numpy(alt[i, 0])]
    w_own, w_alt = cw[act[:, 0]], ALT_WEIGHT * cw[torch.from_numpy(alt[i, 0])]
    want = ((own * w_own).sum() + (other * w_alt).sum()) / (w_own.sum() + w_alt.sum())
    assert float(both) == pytest.approx(float(want), rel=1e-5)


def test_a_clone_no_better_than_repeating_its_last_command_is_told(tmp_path):
    write_clicks(tmp_path / "good", visible=True)
    good = Transitions(EpisodeStore(tmp_path / "good"), stack=2)
    imap, history = click_map(4), [{}] * 12
    copycat = fake_validation(0.66, 0.5, 0.5, 0.8) | {"repeat_baseline": 0.62, "acc_cmd_on_onsets": 0.38}
    warned = warnings_for(good, good, copycat, history, imap)
    assert any("repeating the frame before's command" in w and "38%" in w and "start a command" in w
               for w in warned), warned
    one_frame = Transitions(EpisodeStore(tmp_path / "good"), stack=1)  # no last move to copy: no such warning
    assert not any("repeating" in w for w in warnings_for(one_frame, one_frame, copycat, history, imap))
    reacting = fake_validation(0.9, 0.5, 0.5, 0.8) | {"repeat_baseline": 0.62, "acc_cmd_on_onsets": 0.9}
    assert not any("repeating" in w for w in warnings_for(good, good, reacting, history, imap))


def write_whacks(root, vanish: bool, episodes: int = 4, seed: int = 0) -> None:
    """A teacher's recording of a toy whack game, events and all: a target shows for 3 frames, and the click on
    it comes between the 3rd frame's grab and the next. With `vanish` the clicked target is gone from the frame
    the click is filed with (as in the zoo's click games and Pop); without, it stays one frame more."""
    rng = np.random.default_rng(seed)
    imap, fps = click_map(4), 15.0
    meta = {"input_map": imap, "obs_spec": SPEC, "fps": fps, "source": "teacher", "region": [0, 0, 48, 32]}
    with EpisodeWriter(root, meta) as w:
        for ep in range(episodes):
            w.begin_episode()
            for rnd in range(10):
                bx, by = (int(v) for v in rng.integers(0, 4, 2))
                for j in range(5):  # shown on frames 0-2 (and 3 when it does not vanish), then 5 frames of nothing
                    t = 60.0 * ep + (rnd * 5 + j) / fps  # one clock for the whole recording, as a recorder's
                    if j == 3:  # the click, pressed half a frame before this grab
                        cx, cy = bx * 12 + 6, by * 8 + 4
                        w.add_events([(t - 0.5 / fps, "move", "", cx, cy), (t - 0.5 / fps, "press", "left", cx, cy),
                                      (t - 0.4 / fps, "release", "left", cx, cy)])
                    f = np.full((1, 32, 48), 30, np.uint8)
                    if j < 3 or (j == 3 and not vanish):
                        f[0, by * 8 + 1 : by * 8 + 7, bx * 12 + 3 : bx * 12 + 9] = 230
                    a = [2, bx, by] if j == 3 else [0, 0, 0]  # as `hakisa record` files it: with the grab after
                    w.add(f, a, 0.0, rnd == 9 and j == 4, t=t)
            w.end_episode()


def test_the_default_label_lag_files_a_click_with_the_frame_that_shows_what_it_clicked(tmp_path):
    """study's 'visible' label lag (hakisa/algos/labels.py): where a clicked target vanishes before the next grab,
    the click belongs to the frame before; where it stays, or the game has no clicks, the labels stay as recorded."""
    from hakisa.algos.labels import lag_from_clicks
    from hakisa.envs.toy import keypress_map

    write_whacks(tmp_path / "vanish", vanish=True)
    write_whacks(tmp_path / "stays", vanish=False)
    data = Transitions(EpisodeStore(tmp_path / "vanish"), stack=2)
    recorded = data.actions.copy()
    lag, tried = lag_from_clicks(data, click_map(4), 15.0)
    assert lag == pytest.approx(-1 / 15) and tried[0]["click_visibility"] < 0.1 < 0.9 < tried[1]["click_visibility"]
    assert np.array_equal(data.actions, recorded)  # measured without changing the labels: study relabels with it
    data.relabel(lag, 1 / 15)
    assert click_visibility(data, click_map(4)) > 0.9

    # the onset tolerance teaches the frame before each click, never the frame after, which shows the target gone
    from hakisa.algos.bc import onset_neighbours

    clicks = np.flatnonzero(data.actions[:, 0] == 2)
    alt = onset_neighbours(data, click_map(4), 1)
    assert np.flatnonzero(alt[:, 0] >= 0).tolist() == (clicks - 1).tolist()
    assert (alt[clicks - 1] == data.actions[clicks]).all()

    kept = Transitions(EpisodeStore(tmp_path / "stays"), stack=2)
    lag, tried = lag_from_clicks(kept, click_map(4), 15.0)
    assert lag == 0.0 and tried[0]["click_visibility"] > 0.9
    assert lag_from_clicks(kept, keypress_map(), 15.0) == (0.0, [])
