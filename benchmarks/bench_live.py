"""Live-play benchmark: step latency, action->pixel lag, and sim-vs-page win rate for one checkpoint.

    python benchmarks/bench_live.py --checkpoint runs/duel --fights 20 --tier normal

1. loop latency WITHOUT a game (a private Xvfb, a 640x360 region): capture + preprocess + forward + send,
   the cost of the loop itself (bar: p50 <= 3 ms, p99 <= 10 ms on 2 cores);
2. the same numbers DURING live play of the real page (Chromium shares the 2 cores);
3. action->pixel lag on the page (latency probe: J shrinks the stamina bar);
4. win rate of the same checkpoint and policy mode in the sim (DuelVecEnv) and on the page, N fights each
   (bar: within 10 points).
The last line printed is the JSON summary.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def loop_latency(checkpoint: str, steps: int = 600, hz: float = 60.0) -> dict:
    """capture + preprocess + forward + send on an empty private display (no game competing for the CPU)."""
    import torch

    from hakisa.agent import numpy_policy
    from hakisa.capture import Capture
    from hakisa.model import act_mode, load_checkpoint
    from hakisa.preprocess import FrameStack, preprocess
    from hakisa.sink import XTestSink
    from hakisa.xserver import Xvfb

    torch.set_num_threads(1)
    net, doc = load_checkpoint(checkpoint)
    net.eval()
    act = numpy_policy(net, act_mode(doc, deterministic=False))  # the policy call play_live makes
    spec = net.obs_spec
    rng = np.random.default_rng(0)
    old = os.environ.get("DISPLAY")
    ms = {k: [] for k in ("capture", "preprocess", "forward", "send", "total", "total_cpu")}
    with Xvfb(1280, 720) as disp:
        os.environ["DISPLAY"] = disp
        try:
            with Capture(region=(12, 32, 640, 360)) as cap, \
                    XTestSink(net.input_map, cap.region, kill_key=None, require_focus=False) as sink:
                stack = FrameStack(spec)
                for i in range(steps + 20):
                    c0 = time.thread_time()
                    t0 = time.perf_counter()
                    f = cap.grab()
                    t1 = time.perf_counter()
                    obs = stack.push(preprocess(f, spec))
                    t2 = time.perf_counter()
                    a = act(obs)
                    t3 = time.perf_counter()
                    a[0] = rng.integers(
                        0, len(net.input_map.commands)
                    )  # an untrained net mostly repeats: vary the keys
                    sink.send(a)
                    t4 = time.perf_counter()
                    # CPU time of this thread: the loop's own work, without the time other tenants of a shared
                    # box take the core away (it misses the X server's share of the capture)
                    c4 = time.thread_time()
                    if i >= 20:  # warm-up steps excluded
                        for k, v in zip(ms, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, c4 - c0)):
                            ms[k].append(v * 1e3)
                    time.sleep(max(0.0, 1 / hz - (time.perf_counter() - t0)))
        finally:
            if old:
                os.environ["DISPLAY"] = old
            else:
                os.environ.pop("DISPLAY", None)
    return {f"{k}_ms_p{q}": round(float(np.percentile(v, q)), 3) for k, v in ms.items() for q in (50, 99)}


def sim_win_rate(
    checkpoint: str, fights: int, tier: str, deterministic: bool, seed: int = 0, delay_steps: int = 0
) -> dict:
    """The first fight of each of `fights` parallel sim duels, with the policy play_live uses.

    delay_steps: each action reaches the sim that many decisions late (noop before), which is what the
    page's action->pixel lag does to an agent; it tells whether a sim-vs-page gap is the lag."""
    from collections import deque

    import torch

    from hakisa.agent import numpy_policy
    from hakisa.games.duel.env import DuelVecEnv
    from hakisa.model import act_mode, load_checkpoint

    torch.manual_seed(seed)
    net, doc = load_checkpoint(checkpoint)
    net.eval()
    act = numpy_policy(net, act_mode(doc, deterministic=deterministic))
    env = DuelVecEnv(num_envs=fights, tier=tier, seed=seed, obs_spec=net.obs_spec)
    obs, _ = env.reset()
    winner = np.zeros(fights, np.int64)
    ret = np.full(fights, np.nan)
    boss_left = np.full(fights, np.nan)
    queue = deque([np.zeros((fights, 3), np.int64)] * delay_steps)
    while (winner == 0).any():
        queue.append(act(obs))
        obs, _, term, _, info = env.step(queue.popleft())
        new = term & (winner == 0)
        if not new.any():
            continue
        winner[new] = info["winner"][new]
        boss_left[new] = np.maximum(info["boss_hp"][new], 0)  # the END of the finished fight (SAME_STEP info)
        ret[new] = info["episode"]["r"][new]
    sfx = f"_delay{delay_steps}" if delay_steps else ""
    boss_hp = env.fights.rules["boss"]["hp"]
    return {
        f"sim_win_rate{sfx}": round(float((winner == 1).mean()), 4),
        f"sim_mean_return{sfx}": round(float(ret.mean()), 3),
        f"sim_mean_boss_damage{sfx}": round(float(boss_hp - boss_left.mean()), 2),
        "sim_fights": fights,
    }


# A second window beside the page that logs every input event it receives (containment witness).
WITNESS = r"""
import os, select, sys
from Xlib import X, display
dpy = display.Display(); scr = dpy.screen()
win = scr.root.create_window(int(sys.argv[1]), int(sys.argv[2]), 320, 240, 0, scr.root_depth, X.InputOutput,
                             X.CopyFromParent, background_pixel=0x406040, event_mask=X.ExposureMask | X.KeyPressMask
                             | X.KeyReleaseMask | X.ButtonPressMask | X.ButtonReleaseMask | X.PointerMotionMask)
win.set_wm_name("witness"); win.map(); ready = False; log = open(sys.argv[3], "a", buffering=1)
names = {X.KeyPress: "KeyPress", X.KeyRelease: "KeyRelease", X.ButtonPress: "ButtonPress",
         X.ButtonRelease: "ButtonRelease", X.MotionNotify: "Motion"}
while True:
    while dpy.pending_events():
        ev = dpy.next_event()
        if ev.type == X.Expose and not ready:
            ready = True; print("READY", flush=True)
        elif ev.type in names:
            log.write(names[ev.type] + "\n")
    r, _, _ = select.select([dpy.fileno(), sys.stdin], [], [], 0.5)
    if sys.stdin in r and not os.read(sys.stdin.fileno(), 64):
        break
"""


class PointerWatch:
    """Samples the pointer every 5 ms in a thread; counts samples outside the game region."""

    def __init__(self, display: str, region):
        import threading

        from Xlib import display as xdisplay

        self.dpy, self.region, self.samples, self.outside = xdisplay.Display(display), region, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        left, top, w, h = self.region
        root = self.dpy.screen().root
        while not self._stop.wait(0.005):
            p = root.query_pointer()
            self.samples += 1
            self.outside += not (left <= p.root_x < left + w and top <= p.root_y < top + h)

    def stop(self) -> dict:
        self._stop.set()
        self._t.join()
        self.dpy.close()
        return {"pointer_samples": self.samples, "pointer_outside_region": self.outside}


def kill_switch_timing(args, page, after_s: float = 4.0) -> dict:
    """Press the kill switch (the config's kill_key, through XTest like a real key) mid-fight; time
    how long until none of the input map's keys is down any more, and until play_live has returned."""
    import tempfile
    import threading

    from Xlib import X
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    from hakisa.input_map import InputMap
    from hakisa.play_live import play_live
    from hakisa.sink import _keysym

    dpy = xdisplay.Display(page.display)
    codes = {dpy.keysym_to_keycode(_keysym(k)) for k in InputMap.load("duel").keys}
    from hakisa.game import Game

    kill_name = Game.load("duel").judge().cfg.get("kill_key", "f12")  # the key play_live's sink listens for
    f12 = dpy.keysym_to_keycode(_keysym(kill_name))
    down = lambda: {c for c in codes if dpy.query_keymap()[c // 8] >> (c % 8) & 1}  # noqa: E731
    out: dict = {}

    def press_kill():
        time.sleep(after_s)
        t_wait = time.perf_counter()
        while not down() and time.perf_counter() - t_wait < 5.0:  # kill while the agent holds a key
            time.sleep(0.002)
        out["keys_down_at_kill"] = len(down())
        xtest.fake_input(dpy, X.KeyPress, f12)
        xtest.fake_input(dpy, X.KeyRelease, f12)
        dpy.sync()
        t0 = out["t0"] = time.perf_counter()
        while down() and time.perf_counter() - t0 < 2.0:
            time.sleep(0.001)
        out["release_ms"] = round((time.perf_counter() - t0) * 1e3, 2)

    th = threading.Thread(target=press_kill, daemon=True)
    th.start()
    # several fights' worth, so play is still running when the switch is pressed (it ends by the switch)
    res = play_live(
        args.checkpoint,
        game="duel",
        page=page,
        episodes=5,
        opts={"tier": args.tier},
        deterministic=args.deterministic,
        probe_trials=0,
        gif_episodes=0,
        progress=False,
        out=os.path.join(args.out or tempfile.gettempdir(), "hakisa_kill_trial"),
    )  # not over the main run's files
    t_end = time.perf_counter()
    th.join()
    dpy.close()
    ms = lambda t: round((t - out["t0"]) * 1e3, 2) if "t0" in out and t is not None else None  # noqa: E731
    # kill_loop_ms: until the play loop itself ended; kill_return_ms: until play_live had also closed
    # its env, TensorBoard writer and capture and returned
    return {
        "kill_stopped": res["stopped"],
        "kill_keys_down_at_kill": out.get("keys_down_at_kill"),
        "kill_release_ms": out.get("release_ms"),
        "kill_loop_ms": ms(res.get("stopped_at")),
        "kill_return_ms": ms(t_end),
    }


def expert_lag_sensitivity(tier: str, delays=(0, 1, 2, 5), fights: int = 100) -> dict:
    """Win rate of the scripted expert (true state, decides every 4 ticks) in the sim when its keys land
    `d` 60 Hz ticks late: how much input lag the duel tolerates at all (the page's lag is lag_ms)."""
    from collections import deque

    from hakisa.games.duel.expert import expert_keys
    from hakisa.games.duel.sim import DuelSim

    out = {}
    for d in delays:
        sim = DuelSim(fights, tier=tier, seed=0)
        q, t, k = deque([np.zeros(fights, np.uint8)] * d), 0, None
        while not sim.done.all():
            if t % 4 == 0:
                k = expert_keys(sim.state)
            q.append(k)
            sim.step(q.popleft())
            t += 1
        out[f"delay_{d}_ticks"] = round(float((sim.winner == 1).mean()), 3)
    return out


def live_with_witness(args) -> tuple[dict, dict]:
    """play_live on a DuelPage with a witness window beside it and the pointer watched throughout."""
    import subprocess
    import tempfile

    from hakisa.games.duel.web import DuelPage
    from hakisa.play_live import play_live

    with DuelPage(tier=args.tier) as page, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DISPLAY": page.display}
        log = os.path.join(tmp, "witness.txt")
        wit = subprocess.Popen(
            [sys.executable, "-c", WITNESS, "700", "40", log],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert wit.stdout.readline().startswith("READY"), "witness window did not start"
            page.click_to_focus()  # the one deliberate pointer event (inside the canvas), before watching starts
            watch = PointerWatch(page.display, page.canvas_region)
            live = play_live(
                args.checkpoint,
                game="duel",
                page=page,
                episodes=args.fights,
                opts={"tier": args.tier},
                deterministic=args.deterministic,
                out=args.out,
            )
            contain = watch.stop()
            kills = [kill_switch_timing(args, page, after_s=2.0) for _ in range(args.kill_trials)]
            if kills:  # --kill-trials 0: the page fights only
                contain.update({k: [t[k] for t in kills] for k in kills[0]})
                contain["kill_release_ms_max"] = max((t["kill_release_ms"] or 1e9) for t in kills)
        finally:
            wit.stdin.close()
            wit.wait(5)
        events = open(log).read().split() if os.path.exists(log) else []
        contain["witness_events"] = len(events)
    return live, contain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--fights", type=int, default=20)
    ap.add_argument("--tier", default="normal")
    ap.add_argument("--sample", action="store_true", help="sample actions (default: argmax, as `hakisa play`)")
    ap.add_argument("--loop-steps", type=int, default=600)
    ap.add_argument("--kill-trials", type=int, default=3, help="kill-switch presses, each in its own live fight")
    ap.add_argument("--loop-only", action="store_true", help="only the loop latency (no sim, no page)")
    ap.add_argument("--kill-only", action="store_true", help="only the kill-switch trials (on a fresh page)")
    ap.add_argument("--out", default=None, help="where play_live writes its GIF/JSON (default: the run folder)")
    args = ap.parse_args()
    from hakisa.model import find_checkpoint

    args.checkpoint = str(find_checkpoint(args.checkpoint))
    args.deterministic = not args.sample

    res = {
        "checkpoint": args.checkpoint,
        "tier": args.tier,
        "deterministic": args.deterministic,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
    }
    if args.kill_only:
        from hakisa.games.duel.web import DuelPage

        with DuelPage(tier=args.tier) as page:
            os.environ["DISPLAY"] = page.display  # our own Xvfb: pynput binds to it on import
            page.click_to_focus()
            kills = [kill_switch_timing(args, page, after_s=2.0) for _ in range(args.kill_trials)]
        res["kill_trials"] = kills
        res["bars"] = {
            "kill_switch_release_under_100ms": all(k["kill_release_ms"] < 100 for k in kills),
            "kill_switch_loop_ends_under_100ms": all((k["kill_loop_ms"] or 1e9) < 100 for k in kills),
        }
        print(json.dumps(res))
        return 0
    res["loop_only"] = loop_latency(args.checkpoint, args.loop_steps)
    print("loop only:", json.dumps(res["loop_only"]), file=sys.stderr)
    if args.loop_only:
        res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
        print(json.dumps(res))
        return 0
    res.update(sim_win_rate(args.checkpoint, args.fights, args.tier, args.deterministic))
    print("sim:", res["sim_win_rate"], file=sys.stderr)
    live, contain = live_with_witness(args)
    res["containment"] = contain
    res.update(
        {
            "page_win_rate": live["win_rate"],
            "page_mean_return": live["mean_return"],
            "page_fights": live["episodes"],
            "step_ms_p50": live["step_ms_p50"],
            "step_ms_p99": live["step_ms_p99"],
            "lag_ms": live["lag_ms"],
            "late_steps": live["late_steps"],
            "steps": live["steps"],
            "gif": live["gif"],
            "loop_only_step_ms_p50": res["loop_only"]["total_ms_p50"],
            "loop_only_step_ms_p99": res["loop_only"]["total_ms_p99"],
        }
    )
    if live["lag_ms"]:  # the same sim fights with the page's lag as an action delay
        res.update(
            sim_win_rate(
                args.checkpoint,
                args.fights,
                args.tier,
                args.deterministic,
                delay_steps=max(1, round(live["lag_ms"] / (1000 / 15))),
            )
        )
    res["expert_sim_win_rate_vs_input_lag"] = expert_lag_sensitivity(args.tier)
    res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]  # the box is shared: say how busy it was
    from hakisa.games.duel.sim import load_rules

    if "boss_hp" in live.get("mean_final_readings", {}):  # what the page's HUD showed at each fight's end
        res["page_mean_boss_damage"] = round(load_rules()["boss"]["hp"] - live["mean_final_readings"]["boss_hp"], 2)
    res["win_rate_gap_points"] = round(100 * abs(res["page_win_rate"] - res["sim_win_rate"]), 1)
    res["bars"] = {
        "step_p50_le_3ms": res["loop_only_step_ms_p50"] <= 3,
        "step_p99_le_10ms": res["loop_only_step_ms_p99"] <= 10,
        "live_step_p50_le_3ms": res["step_ms_p50"] <= 3,
        "live_step_p99_le_10ms": res["step_ms_p99"] <= 10,
        "sim_vs_page_within_10_points": res["win_rate_gap_points"] <= 10,
        "witness_zero_events": contain["witness_events"] == 0,
        "pointer_never_left_region": contain["pointer_outside_region"] == 0,
    }
    if args.kill_trials:
        res["bars"]["kill_switch_release_under_100ms"] = (all(k == "kill_switch" for k in contain["kill_stopped"])
                                                          and contain["kill_release_ms_max"] < 100)
        res["bars"]["kill_switch_loop_ends_under_100ms"] = all((v or 1e9) < 100 for v in contain["kill_loop_ms"])
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
