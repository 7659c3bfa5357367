"""`hakisa bench io`: the live loop agents run (`ScreenEnv.step`: send, tick, capture, preprocess, judge) timed
against a real 640x360 X window, typing random keyboard commands (`TEST_MAP`, no game's own), under a private
Xvfb unless --display is given.
Targets: capture+preprocess <= 1 ms p50, loop p99 <= 3 ms (x11) or <= 10 ms (portable: pynput waits for
the X server after every event). The last line printed is one JSON object; its "backend" says which ran.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

BENCH_TITLE = "hakisa bench io window"
# The keys the loop types and `hakisa doctor` presses: eight commands, two of them two-key chords, the shape of a
# keyboard game's map. Defined here rather than borrowed from a game, so the bench and the doctor know no game.
TEST_MAP = {
    "name": "bench-keys",
    "commands": [
        {"name": "noop", "kind": "noop", "keys": []},
        {"name": "left", "kind": "keys", "keys": ["left"]},
        {"name": "right", "kind": "keys", "keys": ["right"]},
        {"name": "space", "kind": "keys", "keys": ["space"]},
        {"name": "j", "kind": "keys", "keys": ["j"]},
        {"name": "k", "kind": "keys", "keys": ["k"]},
        {"name": "left+space", "kind": "keys", "keys": ["left", "space"]},
        {"name": "right+space", "kind": "keys", "keys": ["right", "space"]},
    ],
}
LOOP_P99_TARGET_MS = {"x11": 3.0, "portable": 10.0}


def _window(title: str, width: int, height: int) -> None:
    """The bench's X client (run in its own process): an animated window that counts the keys it gets.

    A square moves every 1/60 s so captures see a changing picture, as they would in a game. When
    stdin closes it prints {"key_press": n, "key_release": m} and exits.
    """
    import select

    from Xlib import X, Xutil, display

    dpy = display.Display()
    scr = dpy.screen()
    win = scr.root.create_window(0, 0, width, height, 0, scr.root_depth, X.InputOutput, X.CopyFromParent,
                                 background_pixel=0x202830,
                                 event_mask=X.ExposureMask | X.KeyPressMask | X.KeyReleaseMask)
    win.set_wm_name(title)
    # "the user asked for this place": a window manager (the portable backend's openbox) keeps it
    win.set_wm_normal_hints(flags=Xutil.USPosition | Xutil.USSize, x=0, y=0, width=width, height=height)
    win.map()
    fg, bg = win.create_gc(foreground=0xE0C040), win.create_gc(foreground=0x202830)
    counts = {"key_press": 0, "key_release": 0}
    t0, x, ready = time.monotonic(), 0, False

    def drain():
        nonlocal ready
        while dpy.pending_events():
            ev = dpy.next_event()
            if ev.type == X.Expose and not ready:
                ready = True
                print(f"READY {win.id}", flush=True)
            elif ev.type == X.KeyPress:
                counts["key_press"] += 1
            elif ev.type == X.KeyRelease:
                counts["key_release"] += 1

    while True:
        drain()
        win.fill_rectangle(bg, x, height // 3, 40, 40)
        x = int((time.monotonic() - t0) * 240) % max(1, width - 40)
        win.fill_rectangle(fg, x, height // 3, 40, 40)
        dpy.flush()
        r, _, _ = select.select([dpy.fileno(), sys.stdin], [], [], 1 / 60)
        if sys.stdin in r and not os.read(sys.stdin.fileno(), 4096):
            dpy.sync()  # whatever the server delivered before the bench hung up is counted
            drain()
            print(json.dumps(counts), flush=True)
            return


def run(args: argparse.Namespace) -> int:
    from hakisa.backends import use_backend
    from hakisa.xserver import Xvfb

    args.backend = use_backend(getattr(args, "backend", None))  # before the Xvfb: portable needs a WM on it
    server = None
    if args.display is None:  # a private server: never draw on, or type into, someone's desktop
        server = Xvfb(1280, 720)
        args.display, args.own_display = server.start(), True
    win = None
    try:
        win = subprocess.Popen([sys.executable, "-c", f"from hakisa.bench.io import _window; "
                                f"_window({BENCH_TITLE!r}, {args.width}, {args.height})"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "DISPLAY": args.display})
        line = win.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"the bench window did not start ({line!r})")
        summary = _time_loop(args, int(line.split()[1]))
        win.stdin.close()
        received = json.loads(win.stdout.readline() or "{}")
        summary.update({f"window_{k}": v for k, v in received.items()})
    finally:
        if win is not None and win.poll() is None:
            win.kill()
        if server is not None:
            server.stop()
    if not args.json_only:
        print(f"[bench io] {summary['steps']} steps at {summary['hz_target']} Hz on a "
              f"{args.width}x{args.height} window ({summary['display']}, {args.backend} backend): capture+preprocess "
              f"p50 {summary['capture_plus_preprocess_ms_p50']} ms (target <= 1), loop p99 {summary['loop_ms_p99']} "
              f"ms (target <= {LOOP_P99_TARGET_MS[args.backend]:g})", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _time_loop(args: argparse.Namespace, wid: int) -> dict:
    """The live loop agents run, `ScreenEnv.step` (send, tick, capture, preprocess, judge), over the bench window
    with rules that read nothing and input never gated, and a decide() that costs nothing: what is timed is the
    loop's own work (`info["timing"]`), as `hakisa play` reports it with a net's forward in place of decide."""
    from hakisa.capture import Capture, give_focus
    from hakisa.envs.screen import ScreenEnv
    from hakisa.input_map import InputMap
    from hakisa.rewards.game import GameJudge
    from hakisa.sink import KillSwitch, make_sink

    give_focus(wid, backend=args.backend, display=args.display)  # give our window the keyboard, as a click on it would
    imap = InputMap.from_dict(TEST_MAP)
    rng = np.random.default_rng(args.seed)
    action = np.zeros(3, dtype=np.int64)
    stages = ("capture", "preprocess", "reward", "decide", "send", "step")
    ms: dict[str, list[float]] = {k: [] for k in stages}
    late: list[float] = []
    stopped = "steps"
    with Capture(window=wid, backend=args.backend, display=args.display) as cap, make_sink(imap, cap) as sink:
        env = ScreenEnv(imap, GameJudge.blank(), capture=cap, sink=sink, hz=args.hz, gate_input=False,
                        watch=None, own_capture=False)
        env.reset()
        t0 = time.perf_counter()
        try:
            for i in range(20 + args.steps):  # 20 warm-up steps: the first grabs set up shared memory
                if i % max(1, args.hold) == 0:  # a random command, held `hold` steps
                    action[0] = rng.integers(len(imap.commands))
                _, _, _, _, info = env.step(action)
                if i == 19:
                    t0 = time.perf_counter()
                if i >= 20:
                    for k in stages:
                        ms[k].append(info["timing"][f"{k}_ms"])
                    late.append(info["late_ms"])
        except KillSwitch:
            stopped = "kill_switch"
        wall = time.perf_counter() - t0
        sink.release_all()
        focused = cap.has_focus()
    pct = {f"{k}_ms_p{q}": round(float(np.percentile(v, q)), 4) for k, v in ms.items() if v for q in (50, 99)}
    out = {k: pct.get(k) for k in ("capture_ms_p50", "capture_ms_p99", "preprocess_ms_p50", "preprocess_ms_p99",
                                   "reward_ms_p50", "decide_ms_p50", "send_ms_p50", "send_ms_p99")}
    out.update(loop_ms_p50=pct.get("step_ms_p50"), loop_ms_p99=pct.get("step_ms_p99"))
    out["capture_plus_preprocess_ms_p50"] = round(float(np.percentile(np.add(ms["capture"], ms["preprocess"]), 50)),
                                                  4) if ms["capture"] else None
    late_a = np.asarray(late)
    out.update(late_ms_p99=round(float(np.percentile(late_a, 99)), 4) if len(late_a) else None,
               late_steps=int((late_a > 0).sum()), steps=len(ms["step"]), stopped=stopped, hz_target=args.hz,
               hz_achieved=round(len(ms["step"]) / wall, 2) if wall > 0 else 0.0, loop="ScreenEnv.step",
               window=[args.width, args.height], obs_shape=list(cap.spec.shape), hold=args.hold,
               focused_at_end=focused, display="own Xvfb" if getattr(args, "own_display", False) else args.display,
               backend=args.backend, loop_p99_target_ms=LOOP_P99_TARGET_MS[args.backend],
               load_avg_1m=round(os.getloadavg()[0], 2), cpus=os.cpu_count())
    out["meets_targets"] = bool(out["steps"] and out["capture_plus_preprocess_ms_p50"] <= 1.0
                                and out["loop_ms_p99"] <= LOOP_P99_TARGET_MS[args.backend])
    return out
