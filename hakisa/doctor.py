"""`hakisa doctor`: what to check before blaming the agent. A table, then one JSON line.

    hakisa doctor                      # this display: X11 or Wayland, capture rate, keys reaching a window
    hakisa doctor --window "My Game"   # ... and the capture rate of that window instead of the whole screen
    hakisa doctor --game pop           # ... and a game's action -> pixel lag (its rules' `probe`; launches it)
    hakisa doctor --backend portable   # the same checks through the portable backend (pywinctl + pynput)

The backend check says which capture/input backend runs (hakisa.backends) and whether it can find windows.
The input check opens a small window of its own on the display, gives it the focus and types into it
through the same sink an agent uses (focus-gated: nothing reaches any other window); it needs an X11
display. Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

EXTRAS = {"retro": "stable_retro", "minari": "minari", "vision": "torchvision", "ray": "ray", "sweeps": "optuna",
          "portable": "pywinctl"}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", default=None, help="time the capture of this window (a part of its title)")
    from hakisa.backends import add_backend_arg

    add_backend_arg(p)
    p.add_argument("--game", default=None, help="also measure this game's action -> pixel lag (opens the game)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option for --game")
    p.add_argument("--seconds", type=float, default=1.0, help="how long to time the capture")
    p.add_argument("--json-only", action="store_true", help="print only the JSON line")


def cores_in_use(seconds: float = 1.0) -> tuple[float, int]:
    """(cores' worth of CPU the other processes used over `seconds`, this machine's cores): measured while
    this process waits, so it is what a job started now would have to share. A load average would lag a
    minute behind and count processes waiting on disk."""
    import psutil

    return psutil.cpu_percent(interval=seconds) / 100.0 * (os.cpu_count() or 1), os.cpu_count() or 1


def _check(name: str, status: str, detail: str, **data) -> dict:
    return {"check": name, "status": status, "detail": detail, **data}


def check_session() -> dict:
    from hakisa.backends import wayland_status

    kind = os.environ.get("XDG_SESSION_TYPE", "")
    if sys.platform in ("win32", "darwin"):
        return _check("session", "ok", sys.platform, session=sys.platform)
    msg = wayland_status()
    if msg:
        return _check("session", "warn" if os.environ.get("DISPLAY") else "fail", msg, session=kind or "wayland")
    return _check("session", "ok", f"X11 ({kind or 'no desktop session: Xvfb, ssh or a container'})",
                  session=kind or None)


def check_backend(backend: str) -> dict:
    """Which backend runs, and whether it can list windows here."""
    from hakisa.backends import DisplayError, get_backend

    how = {"x11": "python-xlib windows, XTest input", "portable": "pywinctl windows, pynput input"}[backend]
    try:
        with get_backend(backend).Windows(os.environ.get("DISPLAY")) as w:
            n = len(w.list())
    except DisplayError as e:
        return _check("backend", "fail", f"{backend} ({how}): {e}", backend=backend)
    return _check("backend", "ok", f"{backend} ({how}); {n} titled windows visible", backend=backend, windows=n)


def check_display() -> tuple[dict, object]:
    from hakisa.capture import DisplayError, open_display

    try:
        dpy = open_display()
    except DisplayError as e:
        return _check("display", "fail", str(e)), None
    scr = dpy.screen()
    size = [int(scr.width_in_pixels), int(scr.height_in_pixels)]
    status = _check("display", "ok", f"DISPLAY={os.environ.get('DISPLAY')}, screen {size[0]}x{size[1]}", screen=size)
    return status, dpy


def check_xtest(dpy) -> dict:
    if dpy.query_extension("XTEST") is None:
        return _check("xtest", "fail", "the X server has no XTEST extension: no input can be sent "
                      "(Xvfb: start it with +extension XTEST)")
    return _check("xtest", "ok", "XTEST present")


def check_capture(window: str | None, seconds: float, backend: str) -> dict:
    from hakisa.capture import Capture, DisplayError, WindowNotFound, screen_region

    try:
        cap = Capture(title=window, backend=backend) if window else Capture(region=screen_region(), backend=backend)
    except (WindowNotFound, DisplayError) as e:
        return _check("capture", "fail", " ".join(str(e).split()))
    with cap:
        try:
            cap.grab()  # the first grab sets up shared memory
            ms, t_end = [], time.perf_counter() + seconds
            while time.perf_counter() < t_end:
                t0 = time.perf_counter()
                cap.grab()
                ms.append((time.perf_counter() - t0) * 1e3)
        except DisplayError as e:  # e.g. XWayland's "XGetImage() failed", with what it means
            return _check("capture", "fail", " ".join(str(e).split()))
        region = list(cap.region)
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    what = f"window {window!r}" if window else "the screen"
    status = "ok" if p50 < 10 else "warn"  # a 60 Hz game leaves ~16 ms a step for everything else too
    return _check("capture", status, f"{what} {region[2]}x{region[3]}: {1e3 / p50:.0f} grabs/s (p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms)", region=region, grab_ms_p50=round(p50, 3), grab_ms_p99=round(p99, 3))


def check_input(backend: str, presses: int = 5) -> dict:
    """Type `presses` taps of J into a window of our own through the backend's sink and count what it got."""
    from hakisa.bench.io import TEST_MAP, _window
    from hakisa.capture import Capture, give_focus
    from hakisa.input_map import InputMap
    from hakisa.sink import make_sink

    title = "hakisa doctor window"
    win = subprocess.Popen([sys.executable, "-c", f"from {_window.__module__} import _window; "
                            f"_window({title!r}, 320, 180)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = win.stdout.readline()
        if not line.startswith("READY"):
            return _check("input", "fail", f"the test window did not open ({line.strip()!r})")
        wid = int(line.split()[1])
        give_focus(wid, backend=backend)
        imap = InputMap.from_dict(TEST_MAP)
        attack = next(i for i, c in enumerate(imap.commands) if c.name == "j")
        with Capture(window=wid, backend=backend) as cap, make_sink(imap, cap) as sink:
            for _ in range(presses):
                for a in (attack, 0):  # hold J one step, then nothing: one press and one release
                    sink.send(np.array([a, 0, 0]))
                    time.sleep(0.02)
        win.stdin.close()
        got = json.loads(win.stdout.readline() or "{}")
    finally:
        if win.poll() is None:
            win.kill()
        win.wait()
    ok = got.get("key_press", 0) >= presses and got.get("key_release", 0) >= presses
    return _check("input", "ok" if ok else "fail",
                  f"{got.get('key_press', 0)} of {presses} key presses reached a test window ({backend} backend)"
                  + ("" if ok else " (focus taken by another window? a window manager that refuses focus?)"),
                  sent=presses, **got)


def check_probe(game: str, opts: dict) -> dict:
    import tempfile

    from hakisa.game import Game
    from hakisa.play_live import play_live

    g = Game.load(game)
    if not g.judge().cfg.get("probe"):
        return _check("lag", "warn", f"game {g.name!r} has no `probe` in its rules: no lag to measure")
    with tempfile.TemporaryDirectory() as out:
        s = play_live(None, game=g, opts=opts, episodes=0, probe_trials=3, gif_episodes=0, out=out, progress=False)
    lag = s.get("lag_ms")
    if lag is None:
        return _check("lag", "fail", f"{g.name}: the probe's action never changed the watched region",
                      probe=s["lag_probe"])
    return _check("lag", "ok" if lag < 200 else "warn", f"{g.name}: action -> pixels {lag:.0f} ms", lag_ms=lag)


def check_torch() -> dict:
    import torch

    from hakisa.algos.common import native_bf16

    bf16 = native_bf16()
    return _check("torch", "ok", f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
                  f"{os.cpu_count()} CPUs, native bf16: {'yes' if bf16 else 'no (float32)'}",
                  threads=torch.get_num_threads(), cpus=os.cpu_count(), native_bf16=bf16)


def check_extras() -> dict:
    have = {name: importlib.util.find_spec(mod) is not None for name, mod in EXTRAS.items()}
    missing = [k for k, v in have.items() if not v]
    return _check("extras", "ok", "installed: " + (", ".join(k for k, v in have.items() if v) or "none")
                  + (f"; missing: {', '.join(missing)} (pip install 'hakisa[NAME]')" if missing else ""), extras=have)


def run(window: str | None = None, game: str | None = None, opts: dict | None = None, seconds: float = 1.0,
        backend: str | None = None) -> list:
    from hakisa.backends import select_backend

    backend = select_backend(backend)
    checks = [check_session()]
    if sys.platform in ("win32", "darwin"):  # no X display to check, and no test window of our own to type into
        checks += [check_backend(backend), check_capture(window, seconds, backend)]
        checks += [_check("input", "skip", "the input check opens an X11 window: Linux only")]
        if game:
            checks.append(check_probe(game, opts or {}))
        return checks + [check_torch(), check_extras()]
    display, dpy = check_display()
    checks.append(display)
    if dpy is not None:
        checks += [check_xtest(dpy), check_backend(backend)]
        dpy.close()
        if checks[-1]["status"] == "ok":
            checks += [check_capture(window, seconds, backend), check_input(backend)]
        else:
            checks += [_check(n, "skip", f"the {backend} backend cannot run here") for n in ("capture", "input")]
        if game:
            checks.append(check_probe(game, opts or {}))
    else:
        checks += [_check(n, "skip", "no X display") for n in ("xtest", "backend", "capture", "input")]
    return checks + [check_torch(), check_extras()]


def main(args) -> int:
    from hakisa.game import parse_opts

    checks = run(args.window, args.game, parse_opts(args.opt), args.seconds, getattr(args, "backend", None))
    if not args.json_only:
        from rich.console import Console
        from rich.table import Table

        colour = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        table = Table(title="hakisa doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col, overflow="fold")
        for c in checks:
            table.add_row(c["check"], f"[{colour[c['status']]}]{c['status']}[/]", c["detail"])
        Console(stderr=True).print(table)
    ok = not any(c["status"] == "fail" for c in checks)
    print(json.dumps({"ok": ok, "checks": checks}))
    return 0 if ok else 1
