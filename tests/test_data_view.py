"""`hakisa data view` and `hakisa data info`'s per-episode table, on a small store written by the EpisodeWriter.

The browser test runs the real verb (`hakisa data view --no-open`), opens its URL in a REAL Chromium on its own
Xvfb, checks the episode list against `data info --json`, steps with the keyboard and finds the click marker by
its colour in a screenshot, where the recorded click's cell says it must be.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from conftest import read_line

from hakisa.data import EpisodeStore, EpisodeWriter

HAS_BROWSER = bool(os.path.exists("/usr/bin/chromium") and shutil.which("Xvfb")
                   and importlib.util.find_spec("playwright"))
FPS = 15
X_BINS, Y_BINS = 16, 10
HAKISA = [sys.executable, "-c", "import sys; from hakisa.cli import main; sys.exit(main(sys.argv[1:]))"]
IMAP = {"name": "clicks", "x_bins": X_BINS, "y_bins": Y_BINS, "commands": [
    {"name": "noop", "kind": "noop"}, {"name": "move", "kind": "move"}, {"name": "click", "kind": "click_left"}]}
# episode 0's clicks: frame -> cell, away from the centre and from each other
CLICKS = {4: (13, 2), 9: (2, 8)}
MAGENTA = np.array([255, 0, 255])  # the page's click marker (view.js COLOR.click_left)


def _frame(i: int) -> np.ndarray:
    """A gray scene that changes per frame (a moving bar on a gradient): never a colour."""
    f = np.tile(np.linspace(40, 200, 96, dtype=np.uint8), (64, 1))
    f[:, (i * 3) % 96] = 255
    return f[None]


def _write(root) -> list[dict]:
    """Three episodes (30, 40, 50 frames); episode 1 loses 3 ticks of frames, episode 2 is cut."""
    meta = {"input_map": IMAP, "obs_spec": {"width": 96, "height": 64, "gray": True, "stack": 2},
            "fps": FPS, "source": "teacher", "game": "clicks"}
    truth = []
    t = 1_000.0
    for e, n in enumerate((30, 40, 50)):
        w = EpisodeWriter(root, meta)
        w.begin_episode()
        t0 = t
        for i in range(n):
            cell = CLICKS.get(i) if e == 0 else None
            action = [2, *cell] if cell else ([1, i % X_BINS, i % Y_BINS] if i % 7 == 3 else [0, 0, 0])
            t += (4 if (e == 1 and i == 10) else 1) / FPS
            w.add(_frame(i), action, reward=1.0 if cell else 0.0, done=(e == 0 and i == n - 1), t=t)
        truth.append({"frames": n, "duration": t - t0 - 1 / FPS, "dropped": 3 if e == 1 else 0})
        if e < 2:
            w.end_episode(score=float(10 + e))
            w.close()
        else:  # the recorder dies after its last chunk, before the end record: a cut episode
            w.flush()
            w._manifest.close()
    return truth


def _info(root) -> dict:
    out = subprocess.run([*HAKISA, "data", "info", "--json", str(root)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_info_per_episode_table(tmp_path):
    truth = _write(tmp_path / "ds")
    d = _info(tmp_path / "ds")
    rows = d["per_episode"]
    assert [r["episode"] for r in rows] == [0, 1, 2]
    for r, want in zip(rows, truth):
        assert r["frames"] == want["frames"]
        assert r["duration_s"] == pytest.approx(want["duration"], abs=2e-3)  # from the timestamps
        assert r["dropped"] == want["dropped"]
    assert [r["outcome"] for r in rows] == ["game over", "truncated", "cut"]
    assert [r["score"] for r in rows] == [10.0, 11.0, None]
    assert rows[0]["return"] == 2.0 and rows[2]["return"] is None
    assert "actor" not in rows[0]  # this store does not say who acted
    assert d["duration_s"] == pytest.approx(sum(w["duration"] for w in truth), abs=5e-3)
    text = subprocess.run([*HAKISA, "data", "info", str(tmp_path / "ds")],
                          capture_output=True, text=True, timeout=60).stdout
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:3] == ["ep", "frames", "duration"])
    assert lines[head + 2].split()[:6] == ["1", "40", f"{truth[1]['duration']:.1f}s", "11", "truncated", "0"]
    assert lines[head + 3].split()[-1] == "0" and "cut" in lines[head + 3]


def test_who_acted_per_episode(tmp_path):
    """A store with the per-frame actor column (an agent played, a person took over): the table counts both."""
    import inspect

    if "actor" not in inspect.signature(EpisodeWriter.add).parameters:
        pytest.skip("this store writes no actor column")
    meta = {"input_map": IMAP, "obs_spec": {"width": 96, "height": 64, "gray": True, "stack": 2},
            "fps": FPS, "source": "teacher"}
    with EpisodeWriter(tmp_path / "d", meta) as w:
        for actors in ([1] * 10 + [0] * 20, [0] * 5):
            w.begin_episode()
            for i, a in enumerate(actors):
                w.add(_frame(i), [0, 0, 0], t=1000.0 + i / FPS, actor=a)
            w.end_episode()
    rows = _info(tmp_path / "d")["per_episode"]
    assert rows[0]["actor"] == {"person": 20, "agent": 10} and rows[1]["actor"] == {"person": 5}


def test_played_episodes_keep_the_time_each_frame_was_seen(tmp_path):
    """explore and play write an episode once it ends: its frames' timestamps must still be when they were
    seen (a store of a live window once said 0.2 s for 644 frames at 15 Hz)."""
    import time

    import torch

    from hakisa.envs.toy import TOY_SPEC, ClickEnv
    from hakisa.evaluate import evaluate
    from hakisa.model import HakisaNet

    period = 0.02

    class Paced(ClickEnv):  # a window's pace: one frame every `period` seconds
        def step(self, action):
            time.sleep(period)
            return super().step(action)

    torch.manual_seed(0)
    env = Paced()
    net = HakisaNet(TOY_SPEC, env.input_map, hidden=32)
    meta = {"input_map": env.input_map, "obs_spec": TOY_SPEC, "source": "explore", "fps": 1 / period}
    with EpisodeWriter(tmp_path / "d", meta) as w:
        t_start = time.time()
        evaluate(net, env, 2, "sample", collect=w)
        t_end = time.time()
    rows = _info(tmp_path / "d")["per_episode"]
    assert [r["frames"] for r in rows] == [16, 16]
    for r in rows:  # 15 paced steps between an episode's first and last frame
        assert r["duration_s"] >= 15 * period * 0.9, r
    ts = np.concatenate([EpisodeStore(tmp_path / "d").episode(i)["timestamps"] for i in range(2)])
    assert t_start <= ts[0] and ts[-1] <= t_end and np.all(np.diff(ts) >= period * 0.9)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    root = tmp_path_factory.mktemp("view") / "ds"
    _write(root)
    proc = subprocess.Popen([*HAKISA, "data", "view", "--no-open", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = read_line(proc, "hakisa data view", expect="http://127.0.0.1:").strip()
        yield root, url
    finally:
        proc.terminate()
        proc.wait(10)


def test_view_api_refuses_what_it_does_not_serve(viewer):
    _, url = viewer
    base = url.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/api/frames/1.bin", timeout=10) as r:
        assert len(r.read()) == 40 * 64 * 96  # raw [T,1,H,W] uint8
    for bad in ("api/frames/3.bin", "api/episode/0.bin", "api/../meta.json", "api/nothing"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}/{bad}", timeout=10)
        assert e.value.code == 404, bad


def _marker_centre(png: bytes, rect: dict) -> tuple[float, float] | None:
    """Centre of the pure-magenta pixels inside the frame canvas of a screenshot (page pixels), or None."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].astype(int)
    x0, y0 = int(rect["left"]), int(rect["top"])
    crop = img[y0:y0 + int(rect["height"]), x0:x0 + int(rect["width"])]
    ys, xs = np.nonzero(np.abs(crop - MAGENTA).sum(axis=2) <= 30)
    if len(xs) < 20:
        return None
    return x0 + xs.mean(), y0 + ys.mean()


@pytest.mark.browser
@pytest.mark.x11
@pytest.mark.skipif(not HAS_BROWSER, reason="needs chromium, Xvfb and playwright (scripts/setup.sh)")
def test_view_page_in_chromium(viewer):
    from hakisa.browser import BrowserApp

    root, url = viewer
    info = _info(root)["per_episode"]
    with BrowserApp(url=url, canvas="#frame", ready_js="window.viewer && viewer.ready()",
                    size=(1200, 800), screen=(1280, 860)) as app:
        page = app.page
        head, *rows = app.evaluate("viewer.rows()")
        assert head[:3] == ["ep", "frames", "duration"] and "score" in head and "who acted" not in head
        assert len(rows) == len(info)
        for cells, r in zip(rows, info):
            c = dict(zip(head, cells))
            assert int(c["ep"]) == r["episode"] and int(c["frames"]) == r["frames"]
            assert float(c["duration"].split()[0]) == pytest.approx(r["duration_s"], abs=0.051)
            assert c["outcome"] == r["outcome"] and int(c["dropped"]) == r["dropped"]
            assert c["score"] == ("-" if r["score"] is None else f"{r['score']:g}")
            assert c["return"] == ("-" if r["return"] is None else f"{r['return']:g}")

        page.click("th[data-key=frames]")
        page.click("th[data-key=frames]")  # the second click sorts descending
        assert [int(r[0]) for r in app.evaluate("viewer.rows()")[1:]] == [2, 1, 0]
        page.click("th[data-key=episode]")

        rect = page.evaluate("(() => { const r = document.querySelector('#frame').getBoundingClientRect();"
                             " return {left: r.left, top: r.top, width: r.width, height: r.height}; })()")
        cell_w, cell_h = rect["width"] / X_BINS, rect["height"] / Y_BINS
        assert _marker_centre(page.screenshot(), rect) is None  # frame 0: a noop, no click drawn
        frame = 0
        for k, (cx, cy) in sorted(CLICKS.items()):
            for _ in range(k - frame):
                page.keyboard.press("ArrowRight")
            frame = k
            s = app.evaluate("viewer.state()")
            assert s["frame"] == k and s["action"] == [2, cx, cy]
            found = _marker_centre(page.screenshot(), rect)
            assert found is not None, f"no click marker drawn on frame {k}"
            want = (rect["left"] + (cx + 0.5) * cell_w, rect["top"] + (cy + 0.5) * cell_h)
            assert abs(found[0] - want[0]) <= cell_w and abs(found[1] - want[1]) <= cell_h, (found, want)
        page.keyboard.press("ArrowLeft")
        assert app.evaluate("viewer.state()")["frame"] == frame - 1

        page.keyboard.press("n")
        page.wait_for_function("viewer.ready() && viewer.state().pos === 1", timeout=10_000)
        assert app.evaluate("viewer.state()")["frames"] == 40
        page.keyboard.press("p")
        page.wait_for_function("viewer.ready() && viewer.state().pos === 0", timeout=10_000)

        page.keyboard.press(" ")  # plays at the store's 15 Hz
        page.wait_for_function("viewer.state().frame >= 3", timeout=10_000)
        page.keyboard.press(" ")
        s = app.evaluate("viewer.state()")
        assert not s["playing"] and 3 <= s["frame"] < 30

        # `data view --episode 1 --frame 7` (the study report's links): the URL's query opens there
        page.goto(_opened_at(root, url, 1, 7))
        page.wait_for_function("window.viewer && viewer.ready()", timeout=10_000)
        s = app.evaluate("viewer.state()")
        assert (s["episode"], s["pos"], s["frame"]) == (1, 1, 7)


def _opened_at(root, url: str, episode: int, frame: int) -> str:
    """The URL `hakisa data view ROOT --episode E --frame F` prints, on the server the test already runs."""
    from urllib.parse import urlsplit

    from hakisa.data.view import start

    server, other = start(EpisodeStore(root), episode=episode, frame=frame)
    server.shutdown()
    server.server_close()
    return url.split("?")[0] + "?" + urlsplit(other).query


def test_view_opens_at_an_episode_id_and_refuses_an_unknown_one(tmp_path):
    from hakisa.data import DataError
    from hakisa.data.view import start, view_command

    _write(tmp_path / "ds")
    store = EpisodeStore(tmp_path / "ds")
    server, url = start(store, episode=2, frame=5)
    server.shutdown()
    server.server_close()
    assert url.endswith("/index.html?episode=2&frame=5")
    with pytest.raises(DataError, match="no episode 7"):
        start(store, episode=7)
    assert view_command(tmp_path / "my ds", 2, 5) == f"hakisa data view '{tmp_path / 'my ds'}' --episode 2 --frame 5"
