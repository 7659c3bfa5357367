"""Replays: the game at its own size with the agent's actions drawn (hakisa.video, `hakisa play --replay`).

The live test plays a real X window (tests/xwin.py on the test's own Xvfb) with an untrained clicking agent
and checks the decoded MP4 against the clicks the X server delivered to that window: the video has the
window's size, and each drawn click marker lies within one mouse cell of where that click landed.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from hakisa.input_map import InputMap
from hakisa.video import COLORS, cell_rect, draw_action

CLICKPAD = {
    "name": "clickpad",
    "x_bins": 8,
    "y_bins": 6,
    "commands": [{"name": "noop", "kind": "noop"}, {"name": "click", "kind": "click_left"},
                 {"name": "fire", "kind": "keys", "keys": ["space"]}],
}


def marker_centre(rgb: np.ndarray, color, tol: int = 70) -> tuple[float, float] | None:
    """Centre of the pixels of a marker colour (an MP4 blurs colours a little: a tolerance)."""
    near = (np.abs(rgb.astype(int) - np.array(color)) <= tol).all(-1)
    if near.sum() < 20:
        return None
    ys, xs = np.nonzero(near)
    return float(xs.mean()), float(ys.mean())


def test_a_click_is_drawn_at_its_cell_and_keys_as_labels():
    imap = InputMap.from_dict(CLICKPAD)
    img = np.full((360, 640, 3), 90, np.uint8)
    draw_action(img, imap, [1, 5, 2])
    cx, cy, cw, ch = cell_rect(imap, 5, 2, 640, 360)
    assert (cx, cy, cw, ch) == (440.0, 150.0, 80.0, 60.0)
    got = marker_centre(img, COLORS["click_left"], tol=0)
    assert got is not None and abs(got[0] - cx) < 2 and abs(got[1] - cy) < 2
    # a crop: the frame shows the right half of the region, so cell 5 sits at (5.5/8 - 0.5) * 2 of its width
    img = np.full((360, 320, 3), 90, np.uint8)
    draw_action(img, imap, [1, 5, 2], box=(0.5, 0.0, 1.0, 1.0))
    got = marker_centre(img, COLORS["click_left"], tol=0)
    assert abs(got[0] - 120) < 2 and abs(got[1] - 150) < 2
    # held keys: a label (yellow text on a dark box) at the top left, no marker
    img = np.full((360, 640, 3), 90, np.uint8)
    draw_action(img, imap, [2, 0, 0], reward=1.0, done=True)
    assert marker_centre(img, COLORS["click_left"], tol=0) is None
    yellow = (np.abs(img[:40, :80].astype(int) - [255, 224, 102]) < 60).all(-1)
    assert yellow.sum() > 10
    assert (img[100:200, 3] == COLORS["over"]).all()  # game over: the red border


def _clickpad(xwin, tmp_path):
    """tests/xwin.py's window (640x360, focused) and a game file for it: clicks on an 8x6 grid, no game over."""
    from conftest import set_focus

    w = xwin(title="hakisa replay pad", x=60, y=40, width=640, height=360)
    set_focus(w.wid)
    game = {
        "name": "clickpad",
        "window": {"title": w.title},
        "obs": {"width": 64, "height": 36, "gray": True, "stack": 1},
        "hz": 10,
        "input_map": CLICKPAD,
        "rules": {
            "canvas": [640, 360],
            "readers": {"red": {"type": "color_fraction", "region": [20, 20, 100, 60], "color": [255, 0, 0]}},
            "in_play": {"reading": "red", "op": ">", "value": 0.5},
        },
    }
    (tmp_path / "clickpad.json").write_text(json.dumps(game))
    return w


@pytest.mark.x11
def test_write_replay_films_a_checkpoint_on_its_window(xvfb, xwin, tmp_path):
    """~3 s: the function a trainer calls at each best/, on a window game: a GIF at the window's size."""
    from PIL import Image

    from hakisa.replay import write_replay

    _clickpad(xwin, tmp_path)
    info = write_replay(None, tmp_path / "clickpad.json", tmp_path / "best" / "replay.gif", max_steps=8)
    assert info["path"] == str(tmp_path / "best" / "replay.gif") and info["summary"]["steps"] == 8
    assert info["frames"] == 8 - info["dropped"] and info["size"] == [640, 360]
    gif, ms = Image.open(tmp_path / "best" / "replay.gif"), 0
    assert gif.size == (640, 360)
    for k in range(gif.n_frames):  # a GIF writer merges identical frames into one longer one: count time
        gif.seek(k)
        ms += gif.info["duration"]
    assert ms == pytest.approx(100 * info["frames"], abs=10 * gif.n_frames)  # 10 Hz


@pytest.mark.x11
def test_live_play_replay_draws_each_click_where_the_window_got_it(xvfb, xwin, tmp_path, capsys):
    """~10 s: 30 steps of an untrained agent (sampled: about a third of them clicks) on a real window."""
    import argparse

    import cv2

    from hakisa.phases import play

    w = _clickpad(xwin, tmp_path)
    video = tmp_path / "replay.mp4"
    p = argparse.ArgumentParser()
    play.add_args(p)
    args = p.parse_args(["--game", str(tmp_path / "clickpad.json"), "--episodes", "1", "--max-steps", "30",
                         "--probe-trials", "0", "--sample", "--seed", "3", "--out", str(tmp_path / "run"),
                         "--replay", str(video)])
    assert play.main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["replay"]["path"] == str(video) and out["replay"]["size"] == [640, 360]
    assert out["replay"]["frames"] + out["replay"]["dropped"] == 30
    presses = [(int(e[2]), int(e[3])) for e in w.events() if e[0] == "ButtonPress" and e[1] == "1"]
    assert len(presses) >= 3, w.events()

    cap = cv2.VideoCapture(str(video))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
    marks = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        c = marker_centre(bgr[..., ::-1], COLORS["click_left"])
        if c is not None:
            marks.append(c)
    cap.release()
    assert marks
    near = lambda m, p: abs(m[0] - p[0]) <= 80 and abs(m[1] - p[1]) <= 60  # noqa: E731  (one 80 x 60 px cell)
    if out["replay"]["dropped"] == 0:  # every step filmed: one marker per click the window received, in order
        assert len(marks) == len(presses), (marks, presses)
        assert all(near(m, p) for m, p in zip(marks, presses)), (marks, presses)
    else:  # a loaded machine dropped frames from the video: each marker still lies at a click the window got
        assert all(any(near(m, p) for p in presses) for m in marks), (marks, presses)
    assert (tmp_path / "run" / "live_play.gif").exists()  # the observation GIF, beside the replay


def test_a_simulator_replay_films_its_canvas_with_the_keys_held(tmp_path):
    """~2 s: a simulator's sub-env 0 filmed through render(), to a GIF; its held keys labelled on each frame."""
    import imageio.v2 as imageio

    from hakisa.game import Game
    from hakisa.replay import open_filmed_sim
    from hakisa.video import RecordingVecEnv, Replay

    env = open_filmed_sim(Game.load("duel"), 2, 0, None)
    keys = next(i for i, c in enumerate(env.input_map.commands) if c.kind == "keys")
    rep = Replay(tmp_path / "sim.gif", env.input_map, 15, bgra=False, block=True)
    rec = RecordingVecEnv(env, rep, episodes=1)
    try:
        rec.reset(seed=0)
        canvas = env.render()[0].shape[:2]
        for _ in range(6):
            rec.step(np.array([[keys, 0, 0], [0, 0, 0]]))
    finally:
        env.close()
        info = rep.close()
    frames = imageio.mimread(tmp_path / "sim.gif")
    assert info["frames"] == len(frames) == 6 and info["dropped"] == 0
    assert frames[0].shape[:2] == canvas and info["size"] == [canvas[1], canvas[0]]
    for f in frames:
        yellow = (np.abs(f[:40, :120, :3].astype(int) - [255, 224, 102]) < 60).all(-1)
        assert yellow.sum() > 10  # the held key's label



def test_train_films_each_new_best_while_it_trains(tmp_path):
    """`hakisa train --replay` in a simulator (hakisa.replay.BestFilms): each best/ a run saves is filmed by a
    second process into RUN/replays/best-NNN.mp4 at the canvas's size and listed with its metrics; a best/
    saved while a film runs is filmed next."""
    import time

    import cv2
    import torch

    from hakisa.game import Game
    from hakisa.model import HakisaNet, save_checkpoint
    from hakisa.replay import BestFilms, open_filmed_sim

    game = Game.load("duel")
    env = open_filmed_sim(game, 1, 0, None)
    env.reset(seed=0)
    spec, imap, canvas = env.obs_spec, env.input_map, env.render()[0].shape[:2]
    env.close()
    run = tmp_path / "run"
    # not niced here: on a loaded CI machine a niced film could wait minutes for a core
    films = BestFilms(run, game, {"tier": "hard"}, seed=0, every=0.0, poll=0.2, nice=0).start()

    def wait_for(cond, what: str, seconds: float = 240.0) -> None:
        deadline = time.monotonic() + seconds
        while not cond():
            assert time.monotonic() < deadline, f"no {what} after {seconds:.0f} s"
            time.sleep(0.1)

    try:
        torch.manual_seed(0)
        save_checkpoint(run / "best", HakisaNet(spec, imap), {"algo": "test"}, {"step": 100})
        wait_for(lambda: films._proc is not None or films.films, "first film started")
        torch.manual_seed(1)  # a second best/ while the first is being filmed
        save_checkpoint(run / "best", HakisaNet(spec, imap), {"algo": "test"}, {"step": 200})
        wait_for(lambda: len(films.films) == 2, "second film")
    finally:
        done = films.close(timeout=120)
    assert [f["film"] for f in done] == ["best-001.mp4", "best-002.mp4"], done
    assert [f["metrics"]["step"] for f in done] == [100, 200]
    assert json.loads((run / "replays" / "index.json").read_text()) == done
    for f in done:
        cap = cv2.VideoCapture(str(run / "replays" / f["film"]))
        n = 0
        while cap.read()[0]:
            n += 1
        size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        cap.release()
        assert n > 10 and size == canvas, (f, n, size, canvas)
    assert not list((run / "replays").glob(".best-*"))  # the copies it filmed are gone
