"""`hakisa data view` on a 20-episode, 13,000-frame store: how long the page takes to open, and how fast it scrubs.

    python benchmarks/bench_data_view.py [--out /tmp/view-bench]     # JSON last line

The store is written with the EpisodeWriter (96x64 gray frames at 15 Hz, Pop's 16x10 mouse map, a click every
few frames). One Chromium (its own Xvfb when there is no DISPLAY) opens the viewer; then, timed:
  open_s      a fresh server on the store (nothing read yet) -> the page's list shown and episode 0 painted
  open_warm_s the same page loaded again (the server has the list)
  episode_s   `n` pressed -> the next episode's 650 frames fetched and painted
  scrub_keys_fps  ArrowRight pressed through Playwright, one frame per press, frames shown per second
  scrub_paint_fps the page's own key handler stepping and waiting for each painted frame (requestAnimationFrame)
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hakisa.browser import BrowserApp
from hakisa.data import EpisodeStore, EpisodeWriter
from hakisa.data.view import start

EPISODES, FRAMES, FPS = 20, 650, 15
IMAP = {"name": "pop", "x_bins": 16, "y_bins": 10, "commands": [
    {"name": "noop", "kind": "noop"}, {"name": "move", "kind": "move"}, {"name": "click", "kind": "click_left"}]}
READY = "window.viewer && viewer.ready()"


def write_store(root: Path) -> None:
    """A game-like picture: a dark arena with a HUD bar and a drifting target, so chunks compress as real ones."""
    meta = {"input_map": IMAP, "obs_spec": {"width": 96, "height": 64, "gray": True, "stack": 2}, "fps": FPS,
            "source": "teacher", "game": "bench"}
    rng = np.random.default_rng(0)
    t = time.time()
    with EpisodeWriter(root, meta) as w:
        for e in range(EPISODES):
            w.begin_episode()
            x, y = rng.uniform(10, 86), rng.uniform(14, 54)
            for i in range(FRAMES):
                f = np.full((64, 96), 24, np.uint8)
                f[:6] = 90
                f[2:4, 4:4 + (i * 7) % 80] = 200
                x, y = np.clip(x + rng.normal(0, 1), 4, 92), np.clip(y + rng.normal(0, 1), 10, 60)
                f[int(y) - 3:int(y) + 3, int(x) - 3:int(x) + 3] = 230
                click = i % 6 == 0
                a = [2, int(x / 96 * 16), int(y / 64 * 10)] if click else [0, 0, 0]
                w.add(f[None], a, reward=float(click and rng.random() < 0.8), done=i == FRAMES - 1,
                      t=t + (e * FRAMES + i) / FPS)
            w.end_episode(score=float(rng.integers(10, 40)))


def timed_open(app: BrowserApp, url: str) -> float:
    t0 = time.perf_counter()
    app.page.goto(url)
    app.page.wait_for_function(READY, timeout=30_000, polling=10)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="where to write the store (default: a temp folder, removed)")
    ap.add_argument("--steps", type=int, default=300, help="frames stepped per scrub measurement")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="hakisa-view-bench-")) / "store"
    write_s = None  # a store left by an earlier --out run is reused
    if not (root / "meta.json").exists():
        t0 = time.perf_counter()
        write_store(root)
        write_s = round(time.perf_counter() - t0, 2)
    store_bytes = sum(p.stat().st_size for p in (root / "chunks").glob("*.npz"))
    store = EpisodeStore(root)
    assert len(store.episodes) == EPISODES and store.num_frames == EPISODES * FRAMES
    warm_srv, warm_url = start(store)
    servers = [warm_srv]
    try:
        with BrowserApp(url=warm_url, canvas="#frame", ready_js=READY, size=(1200, 800), screen=(1280, 860)) as app:
            cold_srv, cold_url = start(EpisodeStore(root))  # nothing of the store read yet
            servers.append(cold_srv)
            open_s = timed_open(app, cold_url)
            warm = [timed_open(app, cold_url) for _ in range(3)]
            page = app.page
            t1 = time.perf_counter()
            page.keyboard.press("n")
            page.wait_for_function("viewer.ready() && viewer.state().pos === 1", timeout=30_000, polling=10)
            episode_s = time.perf_counter() - t1
            f0 = page.evaluate("viewer.state().frame")
            t1 = time.perf_counter()
            for _ in range(args.steps):
                page.keyboard.press("ArrowRight")
            keys_s = time.perf_counter() - t1
            moved = page.evaluate("viewer.state().frame") - f0
            paint = page.evaluate("""async (n) => {
                const t0 = performance.now(), f0 = viewer.state().frame;
                for (let i = 0; i < n; i++) {
                    window.dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowLeft"}));
                    await new Promise((r) => requestAnimationFrame(r));
                }
                return {s: (performance.now() - t0) / 1000, moved: f0 - viewer.state().frame};
            }""", args.steps)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        if not args.out:
            shutil.rmtree(root.parent, ignore_errors=True)
    print(json.dumps({
        "episodes": EPISODES, "frames": EPISODES * FRAMES, "frame": "96x64 gray",
        "store_bytes": store_bytes, "write_s": write_s,
        "open_s": round(open_s, 3), "open_warm_s": [round(x, 3) for x in warm],
        "episode_s": round(episode_s, 3),
        "scrub_keys_fps": round(moved / keys_s, 1), "scrub_keys_frames": moved,
        "scrub_paint_fps": round(paint["moved"] / paint["s"], 1), "scrub_paint_frames": paint["moved"],
        "bars": {"open_under_2s": open_s < 2.0,
                 "scrub_30fps": min(moved / keys_s, paint["moved"] / paint["s"]) >= 30},
    }))


if __name__ == "__main__":
    main()
