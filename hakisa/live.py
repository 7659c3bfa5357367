"""The clock of every fixed-rate live loop: `TickClock` (and `sleep_until`, `now`).

The live loop itself is `ScreenEnv.step` (send, tick, capture, preprocess, judge; hakisa/envs/screen.py): what
`hakisa play`, live training (a `Fleet` of them) and `hakisa bench io` run. The recorder ticks on the same clock.
When a step overruns, the next one starts at once and the lateness is *reported*; missed ticks are dropped
instead of replayed in a burst, so a loop never drifts and never catches up by sending a flurry of stale actions.
"""
from __future__ import annotations

import threading
import time

from hakisa.sink import KillSwitch

now = time.perf_counter


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
