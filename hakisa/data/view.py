"""`hakisa data view DATASET`: a local page to look at an episode store (served on 127.0.0.1, no external assets).

    server, url = start(EpisodeStore("datasets/pop"))   # a free port; server.shutdown() ends it
    serve(store)                                         # the verb: print the URL, serve until Ctrl-C
    serve(store, episode=3, frame=120)                   # open at episode id 3, frame 120 (?episode=3&frame=120)

The page (view_web/) asks for the episode list first, then one episode at a time:
    /api/meta.json          the store's meta, frame shape, where the frame lies in the mouse grid, episode rows
    /api/episode/<i>.json   actions [T,3], seconds since the episode's first frame, every per-frame series
    /api/frames/<i>.bin     the episode's frames as stored, raw uint8 [T,C,H,W] (the page paints them itself:
                            no image encoding per frame, so a long episode arrives in one request and scrubs
                            without waiting on the network)
<i> is the episode's position in the store's list (as `EpisodeStore.episode(i)`). The page's own query,
?episode=ID&frame=F, names an episode by its id (as `data info` lists them) and opens it at that frame.

    view_command(store_root, episode_id, frame)   # the shell line that opens there (the study report's links)
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from hakisa.data.store import DataError, EpisodeStore
from hakisa.data.table import episode_rows
from hakisa.video import obs_box

WEB_DIR = Path(__file__).parent / "view_web"
# arrays of a chunk that are not a per-frame value to plot (the raw input log has its own length)
NOT_SERIES = ("frames", "actions", "timestamps", "events")


def frame_box(meta: dict) -> list[float]:
    """The stored frame's rectangle as fractions of the capture region (a replay draws with the same box)."""
    region = meta.get("region")
    return list(obs_box(meta["obs_spec"].get("crop"), region[2:] if region else None))


def _series(ep: dict) -> dict[str, list]:
    t = len(ep["actions"])
    out = {}
    for k in ("rewards", *sorted(k for k in ep if k not in ("rewards", *NOT_SERIES))):
        v = np.asarray(ep[k])
        if v.ndim != 1 or len(v) != t:
            continue
        v = v.astype(np.float64)
        out[k] = [None if not np.isfinite(x) else round(float(x), 5) for x in v]
    return out


class ViewData:
    """What the page asks for, read from the store on demand; the last few episodes stay decoded."""

    def __init__(self, store: EpisodeStore, keep: int = 3):
        self.store, self.keep = store, keep
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._meta: bytes | None = None

    def episode(self, i: int) -> dict:
        with self._lock:  # the page asks for an episode's json and frames at once: read it once
            if i in self._cache:
                self._cache.move_to_end(i)
                return self._cache[i]
            ep = self.store.episode(i)
            self._cache[i] = ep
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
            return ep

    def meta(self) -> bytes:
        if self._meta is None:
            m = self.store.meta
            keep = ("source", "game", "fps", "window", "region", "agent", "checkpoint", "where", "input_map",
                    "obs_spec")
            body = {
                "path": str(self.store.root),
                "meta": {k: m.get(k) for k in keep},
                "frame_shape": list(self.store.frame_shape),
                "frame_box": frame_box(m),
                "episodes": episode_rows(self.store),
            }
            self._meta = json.dumps(body).encode()
        return self._meta

    def get(self, rest: str) -> bytes | None:
        """The /api/ route `rest`; None for anything else (a 404)."""
        if rest == "meta.json":
            return self.meta()
        m = re.fullmatch(r"(episode|frames)/(\d+)\.(json|bin)", rest)
        if not m or int(m[2]) >= len(self.store.episodes) or (m[1] == "episode") != (m[3] == "json"):
            return None
        ep = self.episode(int(m[2]))
        if m[1] == "frames":
            return np.ascontiguousarray(ep["frames"], np.uint8).tobytes()
        ts = ep["timestamps"]
        return json.dumps({
            "episode": self.store.episodes[int(m[2])].id,
            "actions": ep["actions"].astype(int).tolist(),
            "t": [round(float(x - ts[0]), 4) for x in ts],
            "series": _series(ep),
        }).encode()


def start(store: EpisodeStore, port: int = 0, episode: int | None = None, frame: int | None = None):
    """Serve the viewer for `store` in a daemon thread; returns (server, url). episode (an episode id, as
    `data info` lists them) and frame: where the page opens (the URL's query says so)."""
    from urllib.parse import urlencode

    from hakisa.browser import start_server

    if episode is not None and all(e.id != episode for e in store.episodes):
        raise DataError(f"{store.root}: no episode {episode} (ids: {', '.join(str(e.id) for e in store.episodes)})")
    data = ViewData(store)
    server = start_server(WEB_DIR, port=port, extra={"/api/": data.get})
    host, p = server.server_address[:2]
    query = {k: v for k, v in (("episode", episode), ("frame", frame)) if v is not None}
    return server, f"http://{host}:{p}/index.html" + (f"?{urlencode(query)}" if query else "")


def view_command(root, episode: int, frame: int) -> str:
    """`hakisa data view ROOT --episode E --frame F`, quoted for a shell: what a report prints to open a frame."""
    import shlex

    return f"hakisa data view {shlex.quote(str(root))} --episode {int(episode)} --frame {int(frame)}"


def _can_open_browser() -> bool:
    # on Linux without a display, `webbrowser` would start a text browser inside this terminal
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def serve(store: EpisodeStore, port: int = 0, open_browser: bool = True, episode: int | None = None,
          frame: int | None = None) -> int:
    server, url = start(store, port, episode, frame)
    print(url, flush=True)  # the first line: what a person opens, and what scripts read
    if open_browser and _can_open_browser():
        import webbrowser

        webbrowser.open(url)
    print(f"serving {store.root} ({len(store.episodes)} episodes, {store.num_frames} frames); Ctrl-C stops",
          file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
