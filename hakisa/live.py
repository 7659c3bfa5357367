"""The model-free live loop: capture -> preprocess -> decide -> send, at a fixed rate.

`run_loop(capture, sink, decide, steps=600, hz=60)` is what `hakisa bench io` times and what a live
`ScreenEnv` does one step of. `TickClock` is the one clock of every fixed-rate loop (this one, ScreenEnv,
the Fleet, the recorder): when a step overruns, the next one starts at once and the lateness is *reported*;
missed ticks are dropped instead of replayed in a burst, so the loop never drifts and never catches up by
sending a flurry of stale actions.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hakisa.capture import Capture
from hakisa.preprocess import preprocess
from hakisa.sink import KillSwitch

now = time.perf_counter
STAGES = ("capture", "preprocess", "decide", "send", "loop")
# loop_cpu: CPU time this thread spent on the step. On a busy machine wall-clock p99s mostly measure
# the scheduler (and the X server's turn), loop_cpu shows how much of that is our own work.


def sleep_until(t: float, stop: threading.Event | None = None) -> bool:
    """Sleep to a perf_counter deadline; the last ~1 ms is spun because sleep() overshoots by ~0.1-1 ms.
    Returns True early (within ~0.1 ms) when `stop` is set, e.g. the sink's kill switch."""
    while True:
        left = t - now()
        if left <= 0:
            return False
        if stop is not None and stop.is_set():
            return True
        if left > 0.0015:
            if stop is not None:
                if stop.wait(left - 0.001):
                    return True
            else:
                time.sleep(left - 0.001)


class TickClock:
    """The fixed-rate clock of live steps: each tick is one period after the previous one, not after now.

    A step that overruns is not stretched and not made up for: the clock re-anchors at once and reports
    how late the step was and how many ticks it missed (rtgym's elastic steps, counted, never hidden)."""

    def __init__(self, hz: float):
        self.period = 1.0 / hz if hz and hz > 0 else 0.0  # hz <= 0: run flat out (benchmarks)
        self.next = now()

    def restart(self) -> None:
        """Start counting from now (after a reset, whose navigation is not a late step)."""
        self.next = now()

    def tick(self, t_sent: float, stop: threading.Event | None = None) -> tuple[float, int]:
        """Sleep until the next tick; returns (seconds late, ticks missed: the late one included). t_sent: when this
        step's work ended. Raises KillSwitch if `stop` (the sink's kill switch) is set while it sleeps."""
        if not self.period:
            return 0.0, 0
        self.next += self.period
        late = t_sent - self.next
        if late > 0:  # too slow: go on now and re-anchor, never bunch steps up to catch up
            self.next = t_sent
            return late, int(late // self.period) + 1
        if sleep_until(self.next, stop):
            raise KillSwitch()
        return 0.0, 0


@dataclass
class LoopStats:
    """Per-step timings in milliseconds (one list per stage, plus lateness) and how the loop ended."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES + ("loop_cpu",)})
    late_ms: list[float] = field(default_factory=list)
    steps: int = 0
    stopped: str = "steps"  # "steps" | "kill_switch" | "decide" (decide returned None)
    wall_s: float = 0.0

    def summary(self) -> dict:
        out: dict = {"steps": self.steps, "stopped": self.stopped, "wall_s": round(self.wall_s, 3),
                     "hz_achieved": round(self.steps / self.wall_s, 2) if self.wall_s else 0.0}
        for stage, v in self.ms.items():
            if v:
                a = np.asarray(v)
                out[f"{stage}_ms_p50"] = round(float(np.percentile(a, 50)), 4)
                out[f"{stage}_ms_p99"] = round(float(np.percentile(a, 99)), 4)
        if self.late_ms:
            late = np.asarray(self.late_ms)
            out["late_ms_p99"] = round(float(np.percentile(late, 99)), 4)
            out["late_steps"] = int((late > 0).sum())
        return out


def run_loop(capture: Capture, sink, decide: Callable[[np.ndarray], object], steps: int = 600, hz: float = 60.0,
             on_step: Callable[[int, np.ndarray, object], None] | None = None) -> LoopStats:
    """Run the live loop for `steps` steps (or until the kill switch / `decide` returns None).

    decide(obs) gets the frame stack uint8 [k*C, h, w] and returns an action triple. `loop` timing is
    the work of one step (capture..send), not the sleep. Releases nothing itself: the sink's context
    manager does that, and the kill switch already has.
    """
    clock, stats = TickClock(hz), LoopStats()
    t_start = time.perf_counter()
    try:
        for i in range(steps):
            c0, t0 = time.thread_time(), time.perf_counter()
            frame = capture.grab()
            t1 = time.perf_counter()
            obs = capture.stack.push(preprocess(frame, capture.spec))
            t2 = time.perf_counter()
            action = decide(obs)
            t3 = time.perf_counter()
            if action is None:
                stats.stopped = "decide"
                break
            sink.send(action)
            t4, c4 = time.perf_counter(), time.thread_time()
            stats.ms["loop_cpu"].append((c4 - c0) * 1e3)
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                stats.ms[stage].append(dt * 1e3)
            stats.steps += 1
            if on_step is not None:
                on_step(i, obs, action)
            stats.late_ms.append(clock.tick(now(), getattr(sink, "kill_event", None))[0] * 1e3)
    except KillSwitch:
        stats.stopped = "kill_switch"
    stats.wall_s = time.perf_counter() - t_start
    return stats
