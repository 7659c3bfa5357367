"""ScreenEnv: a Gymnasium env over a LIVE window. Pixels in, real key presses out, real time.

Most users get one from a game file (`Game.load("pop").screen_env(live)`, which `hakisa play`, `train`
and `explore` do); the class docstring says what it observes, sends, rewards and reports.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from hakisa.envs.rules_watch import RulesMismatch, RulesWatch
from hakisa.input_map import Command, InputMap
from hakisa.live import TickClock, now
from hakisa.preprocess import FrameStack, ObsSpec, preprocess
from hakisa.rewards.game import GameJudge, condition_holds
from hakisa.rewards.readers import ChangeDetector, Region


def with_nav_keys(input_map: InputMap, keys) -> tuple[InputMap, dict[str, int]]:
    """The game's map plus one `tap` command per navigation key (appended, so game indices are
    unchanged). Navigation then goes through the same safe sink as play: focus-gated, released."""
    extra = [k for k in dict.fromkeys(keys) if k not in input_map.keys]
    cmds = list(input_map.commands) + [Command(f"nav:{k}", "tap", (k,)) for k in extra]
    m = InputMap(name=input_map.name, commands=cmds, x_bins=input_map.x_bins, y_bins=input_map.y_bins,
                 rel_max=input_map.rel_max, mu=input_map.mu, meta=input_map.meta)
    tap_index = {}
    for k in dict.fromkeys(keys):
        tap_index[k] = next(i for i, c in enumerate(m.commands) if c.kind == "tap" and c.keys == (k,)) if k in extra \
            else next(i for i, c in enumerate(m.commands) if c.kind == "keys" and c.keys == (k,))
    return m, tap_index


def nav_keys(judge: GameJudge) -> list[str]:
    return [s["key"] for steps in judge.navigation.values() for s in steps if "key" in s]


@dataclass
class StepTiming:
    """Milliseconds of one live step's parts, reported as `info["timing"]` (with `step_ms`, their sum).

    decide_ms: from the previous observation's return to this `send` (the caller choosing the action);
    send_ms: the sink sending it; capture_ms, preprocess_ms, reward_ms: grabbing, preprocessing, judging."""

    capture_ms: float = 0.0
    preprocess_ms: float = 0.0
    reward_ms: float = 0.0
    decide_ms: float = 0.0
    send_ms: float = 0.0

    @property
    def step_ms(self) -> float:
        """Tick to input sent: everything the loop does between two ticks except sleeping."""
        return self.capture_ms + self.preprocess_ms + self.reward_ms + self.decide_ms + self.send_ms


class ScreenEnv(gym.Env):
    """A game's live window as a Gymnasium env.

    ## Action space
    `input_map.action_space`, MultiDiscrete [command, x bin, y bin]. The command's keys are held (or tapped,
    or the mouse moved to the bin's point and clicked) through the live sink: held-key diffs, every mouse
    position clamped into the region, input only while the window has focus, and a kill-switch key.

    ## Observation space
    `Box(0, 255, obs_spec.shape, uint8)`: `Capture.grab()` of the game region through the shared
    `preprocess` into a `FrameStack`, the same bytes a simulator or a stable-retro env produces.

    ## Reward
    The game's `GameJudge`: a sum of coefficient x change of each screen reading (a score, an HP bar),
    plus the file's win/lose bonuses at the end. Readings only count while the judge says "in play".

    ## Episode end
    terminated when the judge's `done` rule holds (e.g. a result overlay, lives at 0); truncated after
    `max_steps` steps. Either way every held key is released.

    ## Info
    The judge's readings, `in_play`, `winner` (when the rules name one), `score`; `late_ms` and
    `missed_ticks` (the clock below); `timing` (milliseconds of capture, preprocess, reward, decide and
    send); `step`; and at an episode's end `episode` = {"r": return, "l": length}.

    ## Real time
    `step` = `send` (the action), `clock.tick` (sleep to the next tick of `hz`), `observe` (grab and judge).
    A caller that is too slow is not waited for and not caught up with: the clock re-anchors and the
    step reports how late it was. While the game is not in play (menus, a result screen) no action is
    sent and held keys are released.

    ## Reset
    The rules' `navigation.restart` steps (key taps, clicks, waits, "until" conditions), then a wait for
    "in play". A game already in play (a fresh page, or after a truncation) is taken as it is.

    ## Arguments
    input_map, judge: the game's. capture/sink: ready objects, or built here from region/title (own_capture:
    whether closing the env closes the capture). focus_window: the X window that must have focus for input
    (default: the captured window). obs_spec, hz, max_steps, reset_timeout (seconds a navigation step may
    wait). gate_input: send nothing while not in play. kill_key: the sink's kill-switch key ("auto": the
    rules' `kill_key`, else F12; it reaches the game too, so pick one the game ignores). display: the X
    display of the capture and the input. The sink runs on the capture's backend (hakisa.backends).
    watch: a `RulesWatch` (hakisa.envs.rules_watch), "auto" (its defaults) or None: it warns, then stops with
    `RulesMismatch`, when the screen stops matching the rules (no `in_play`, readings that never change, an
    episode far longer than any before), so a moved canvas is never a silent wait.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, input_map: InputMap, judge: GameJudge, *, capture=None, sink=None, region: Region | None = None,
                 title: str | None = None, focus_window: int | None = None, obs_spec: ObsSpec | None = None,
                 hz: float = 15.0, max_steps: int | None = None, reset_timeout: float = 30.0,
                 gate_input: bool = True, kill_key: str | None = "auto", display: str | None = None,
                 own_capture: bool | None = None, watch: RulesWatch | str | None = "auto"):
        self.input_map, self.judge = input_map, judge
        self.watch = RulesWatch() if watch == "auto" else watch
        if self.watch is not None and self.watch.names is None:
            self.watch.attach(judge)
        self.obs_spec = obs_spec or ObsSpec()
        self._own_capture = capture is None if own_capture is None else own_capture  # closed with the env
        if capture is None:
            from hakisa.capture import Capture

            capture = Capture(region=region, title=title, spec=self.obs_spec, display=display)
        self.capture = capture
        self._own_sink = sink is None
        self.nav_map, self.nav_index = with_nav_keys(input_map, nav_keys(judge))
        if sink is None:
            from hakisa.sink import make_sink

            focus = focus_window if focus_window is not None else getattr(capture, "window_id", None)
            if kill_key == "auto":
                kill_key = judge.cfg.get("kill_key", "f12")
            # on the capture's backend; focus None (a bare region with no window to watch): never gated
            sink = make_sink(self.nav_map, capture, kill_key=kill_key,
                             require_focus=False if focus is None else focus)
        self.sink = sink
        self.hz = float(hz)
        self.period = 1.0 / self.hz if self.hz > 0 else 0.0  # hz <= 0: flat out (benchmarks, tests)
        self.max_steps, self.reset_timeout, self.gate_input = max_steps, reset_timeout, gate_input
        self.observation_space = gym.spaces.Box(0, 255, self.obs_spec.shape, np.uint8)
        self.action_space = input_map.action_space
        self.stack = FrameStack(self.obs_spec)
        self.noop = input_map.encode() if any(c.kind == "noop" for c in input_map.commands) else None
        self.frame: np.ndarray | None = None  # the last grab (BGRA), for videos and debugging
        self.clock = TickClock(hz)
        self._timing = StepTiming()
        self.t_grab = now()  # when the last frame was grabbed (a Fleet measures its period jitter by it)
        self._t_obs = now()
        self._in_play = False
        self.steps = 0
        self.episode_return = 0.0

    # ---- helpers --------------------------------------------------------------------------------
    def _grab(self) -> np.ndarray:
        self.frame = self.capture.grab()
        return self.frame

    def tap(self, key: str) -> None:
        """Press and release a navigation key through the sink (focus-gated like every action)."""
        self.sink.send(np.array([self.nav_index[key], 0, 0]))
        if self.noop is not None:
            self.sink.send(self.noop)
        self.sink.release_all()

    def navigate(self, name: str = "restart") -> bool:
        """Run a navigation sequence from the config; False when an `until` timed out."""
        ok = True
        for s in self.judge.navigation.get(name, []):
            if "key" in s:
                self.tap(s["key"])
            if "click" in s:
                self._click(s["click"])
            if "wait" in s:
                time.sleep(float(s["wait"]))
            if "until" in s:
                deadline = now() + float(s.get("timeout", self.reset_timeout))
                while not condition_holds(s["until"], self.judge.read(self._grab())):
                    if now() > deadline:
                        ok = False
                        break
                    time.sleep(self.period / 2)
        return ok

    def _click(self, xy) -> None:
        # a click at canvas pixel (x, y): the sink's click_at is focus-gated and clamped to the region,
        # and keeps its record of held keys true
        cw, ch = self.judge.canvas or (self.sink.region[2], self.sink.region[3])
        self.sink.click_at(xy[0] / cw, xy[1] / ch)

    def _wait_in_play(self, timeout: float) -> np.ndarray | None:
        deadline = now() + timeout
        while True:  # at least one look, even with timeout 0, and the rules' start_frames once play shows
            frame = self._grab()
            readings = self.judge.read(frame)
            if self.watch is not None:
                self.watch.see(readings, self.judge.in_play(readings))
            if self.judge.starts(readings):
                return frame
            if now() >= deadline and not self.judge.starting():
                return None
            time.sleep(self.period / 2)

    # ---- gym API --------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.sink.release_all()
        frame = self._wait_in_play(0.0)  # already in a fresh fight (first reset on a new page)?
        tries = 0
        while frame is None:
            if tries >= 3:
                hint = (self.watch or RulesWatch()).hint
                raise RulesMismatch(f"the game did not come back into play after {tries} restarts (last readings "
                                    f"{self.judge.readings}): {hint}")
            self.navigate("restart")
            frame = self._wait_in_play(self.reset_timeout)
            tries += 1
        readings = self.judge.reset(frame)
        self._in_play = True
        obs = self.stack.reset(preprocess(frame, self.obs_spec))
        self.steps, self.episode_return = 0, 0.0
        self.clock.restart()
        self._t_obs = now()
        if self.watch is not None:
            self.watch.episode_start()
        return obs, {"readings": readings, "navigations": tries}

    def step(self, action):
        t_sent = self.send(action)
        late, missed = self.clock.tick(t_sent, getattr(self.sink, "kill_event", None))
        return self.observe(late, missed)

    # step = send, tick, observe. A Fleet calls the parts itself, to step many windows on one clock.
    def send(self, action) -> float:
        """Send the action (or release everything while the game is not in play); returns when it was sent."""
        t0 = now()
        self._timing = StepTiming(decide_ms=(t0 - self._t_obs) * 1e3)
        if self._in_play or not self.gate_input:
            self.sink.send(action)
            if self.watch is not None:
                self.watch.acted(action)
        else:
            self.sink.release_all()
        t1 = now()
        self._timing.send_ms = (t1 - t0) * 1e3
        return t1

    def observe(self, late: float = 0.0, missed: int = 0):
        """Grab, preprocess and judge the frame after the tick: the rest of a Gymnasium step."""
        tm = self._timing
        t2 = now()
        self.t_grab = t2
        frame = self._grab()
        t3 = now()
        obs = self.stack.push(preprocess(frame, self.obs_spec))
        t4 = now()
        reward, terminated, jinfo = self.judge.step(frame)
        t5 = now()
        tm.capture_ms, tm.preprocess_ms, tm.reward_ms = (t3 - t2) * 1e3, (t4 - t3) * 1e3, (t5 - t4) * 1e3
        self._in_play = jinfo["in_play"]
        self.steps += 1
        self.episode_return += reward
        truncated = self.max_steps is not None and self.steps >= self.max_steps and not terminated
        if self.watch is not None:
            try:
                self.watch.see(jinfo["readings"], self._in_play)
            except RulesMismatch:
                self.sink.release_all()  # nothing stays held while the error travels up
                raise
            if terminated or truncated:
                self.watch.episode_end()
        if terminated or truncated:
            self.sink.release_all()
        info = {**jinfo, "timing": vars(tm) | {"step_ms": tm.step_ms}, "late_ms": max(0.0, late * 1e3),
                "missed_ticks": missed, "step": self.steps}
        if terminated or truncated:
            info["episode"] = {"r": self.episode_return, "l": self.steps}
        self._t_obs = now()
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self):
        return None if self.frame is None else self.frame[..., 2::-1].copy()  # BGRA -> RGB

    def close(self):
        if getattr(self, "sink", None) is not None:
            self.sink.release_all()
            if self._own_sink:
                self.sink.close()
        if getattr(self, "_own_capture", False):
            self.capture.close()
        super().close()


# ---- action -> pixel lag ---------------------------------------------------------------------------
def latency_probe(capture, sink, action, region: Region | None = None, *, canvas=None, trials: int = 5,
                  threshold: float = 3.0, timeout: float = 1.0, settle: float = 0.25, max_wait: float = 3.0,
                  rest_action=None) -> dict:
    """Send an input with a known visual effect and time how long until capture sees it (ms).

    Per trial: wait until the watched region (canvas pixels, scaled like every reader) has been still
    for `settle` s, send `action` (held), grab as fast as possible until the region's mean gray change
    exceeds `threshold`, then send `rest_action` (default: release everything). This is OpenAI
    Universe's action->pixel lag: it includes X event delivery, the app's input handling, its frame
    pacing, compositing and the capture itself (one grab, ~0.3 ms, sets the resolution).
    """
    det = ChangeDetector(region or (0, 0, capture.region[2], capture.region[3]), threshold, canvas)
    lags, misses = [], 0
    for _ in range(trials):
        det.reset(capture.grab())
        still_since, t_end = now(), now() + max_wait
        while now() - still_since < settle and now() < t_end:  # let the region come to rest
            if det.read(capture.grab()) > 0.5:
                still_since = now()
            time.sleep(0.005)
        det.reset(capture.grab())
        t0 = now()
        sink.send(action)
        seen = None
        while now() - t0 < timeout:
            if det.read(capture.grab()) > threshold:
                seen = now()
                break
        if rest_action is None:
            sink.release_all()
        else:
            sink.send(rest_action)
        if seen is None:
            misses += 1
        else:
            lags.append((seen - t0) * 1e3)
        time.sleep(0.05)
    return {"lag_ms": float(np.median(lags)) if lags else float("nan"), "lag_ms_all": [round(v, 2) for v in lags],
            "misses": misses, "trials": trials}
