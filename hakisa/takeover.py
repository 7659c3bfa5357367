"""Teaching by correcting (`hakisa record --agent CHECKPOINT`): the agent plays, the person takes over when it errs.

The agent acts on the live window once per recorder tick, through the normal safe sink (focus-gated,
clamped, kill switch, released on exit). The recorder's listeners see every input event on the display,
the XTest events of the agent's own sink among them, so each event they report is first compared with
what the sink has just sent (`EchoLog`): the same key going the same way, or the pointer at the same place,
within `window` seconds, is the agent's echo; anything else is the person. The first key press or click of
the person (or pointer move, on a map that uses the mouse) hands control to them: the agent's held keys are
released at once, from the listener thread, and the sink sends nothing more. When the person holds nothing
and has done nothing for `idle` seconds, control returns to the agent.

Every recorded frame says who acted (the store's `actor` column: 0 the person, 1 the agent); the label is
what was sent to the game on that frame, with the agent's log-prob and value where it acted (NaN where the
person did). The raw event log keeps everything that reached the game, the agent's echoes included, so
labels re-derived from it (study's label lag) stay what the game received.

A key the agent holds right now cannot be told apart from the person pressing the same key (X merges
them, and a held key's auto-repeat looks the same): to stop the agent without doing anything, hold a key
the game ignores (it is recorded as the map's noop).
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from hakisa.sink import LiveSink

PERSON, AGENT = 0, 1


class EchoLog:
    """What the agent's sink sent, to tell its echoes from the person's input. Thread-safe.

    window: how long after a send its echo may arrive (the listener is a thread of its own, late on a busy
    machine; an unmatched entry only matters if the person makes the very same event within it).
    px: how far a pointer echo may land from where it was sent."""

    def __init__(self, window: float = 0.5, px: int = 3):
        self.window, self.px = float(window), int(px)
        self._lock = threading.Lock()
        self._sent: deque = deque()  # [t, kind, key, x, y, used]
        self._held_since: dict[str, float] = {}  # key -> monotonic time it went down (held now)
        self._releasing: dict[str, float] = {}  # key -> when its release was sent, until the release is seen

    def sent(self, events) -> None:
        """The sink is about to send `events` (hakisa.sink's tuples): logged BEFORE they go out, so an echo
        can never arrive before its entry."""
        t = time.monotonic()
        with self._lock:
            for e in events:
                if e[0] == "press":
                    self._sent.append([t, "down", e[1], 0, 0, False])
                    self._held_since[e[1]] = t
                    self._releasing.pop(e[1], None)
                elif e[0] == "release":
                    self._sent.append([t, "up", e[1], 0, 0, False])
                    self._held_since.pop(e[1], None)
                    self._releasing[e[1]] = t
                elif e[0] == "move":
                    self._sent.append([t, "move", "", e[1], e[2], False])
                elif e[0] == "click":
                    self._sent.append([t, "press", e[1], 0, 0, False])
                    self._sent.append([t, "release", e[1], 0, 0, False])

    def is_echo(self, kind: str, key: str = "", x: float = 0, y: float = 0) -> bool:
        """Whether an observed event (the recorder's event types) is one the agent sent."""
        now = time.monotonic()
        with self._lock:
            while self._sent and now - self._sent[0][0] > self.window:
                self._sent.popleft()
            for e in self._sent:
                if e[5] or e[1] != kind:
                    continue
                if kind == "move":
                    if abs(e[3] - x) <= self.px and abs(e[4] - y) <= self.px:
                        e[5] = True
                        return True
                elif e[2] == key:
                    e[5] = True
                    if kind == "up":
                        self._releasing.pop(key, None)
                    return True
            # a held key's auto-repeat (the server's, on the agent's behalf), up to the echo of its release:
            # the event stream is in server order, so a press seen after that is someone else's
            if kind == "down" and now - self._releasing.get(key, -1e9) <= self.window:
                return True
            return kind in ("down", "up") and key in self._held_since
        return False


class AgentSink(LiveSink):
    """The live sink, plus: everything it sends is logged in `echo` first, and while `gate()` is true
    (the person has control) it sends nothing at all, navigation taps and clicks included."""

    def __init__(self, input_map, target, echo: EchoLog, gate, **kw):
        self.echo, self.gate = echo, gate
        super().__init__(input_map, target, **kw)

    def send(self, action):
        with self._lock:
            return [] if self.gate() else super().send(action)

    def click_at(self, fx: float, fy: float, button: str = "left"):
        with self._lock:
            return [] if self.gate() else super().click_at(fx, fy, button)

    def _emit(self, events) -> None:
        with self._lock:
            self.echo.sent(events)
            super()._emit(events)


class InputSplit:
    """Stands in for the recorder's InputState in its listeners: the agent's echoes are only logged, the
    person's events go on to `person` (whose snapshot labels the person's frames) and to `on_person`."""

    def __init__(self, person, echo: EchoLog, on_person, mouse_takes: bool):
        self.person, self.echo, self.on_person, self.mouse_takes = person, echo, on_person, mouse_takes
        self._lock = threading.Lock()
        self._log: list = []  # (t, type, key, x, y): everything that reached the game, drained per tick

    def _seen(self, t: float, kind: str, key: str, x: float, y: float) -> bool:
        with self._lock:
            self._log.append((t, kind, key, x, y))
        return self.echo.is_echo(kind, key, x, y)

    def key(self, down: bool, name: str) -> None:
        if name in self.person.hotkeys:  # the recorder's own keys: never game input, never a takeover
            self.person.key(down, name)
            return
        t = time.time()
        if not self._seen(t, "down" if down else "up", name, np.nan, np.nan):
            self.on_person("down" if down else "up", name, takes=down)
            self.person.key(down, name, t=t)

    def move(self, x: float, y: float) -> None:
        t = time.time()
        if not self._seen(t, "move", "", x, y):
            self.on_person("move", "", takes=self.mouse_takes)
            self.person.move(x, y, t=t)

    def button(self, x: float, y: float, button: str, down: bool) -> None:
        t = time.time()
        if not self._seen(t, "press" if down else "release", button, x, y):
            self.on_person("press" if down else "release", button, takes=down)
            self.person.button(x, y, button, down, t=t)

    def scroll(self, x: float, y: float, dx: float, dy: float) -> None:
        self.on_person("scroll", "", takes=self.mouse_takes)  # the sink never scrolls
        self.person.scroll(x, y, dx, dy)
        with self._lock:
            self._log.append((time.time(), "scroll", "", dx, dy))

    def drain(self) -> list:
        with self._lock:
            out, self._log = self._log, []
        return out


class Takeover:
    """The agent and the hand-over between it and the person, for `teacher.record(agent=...)`.

    net/act mode: a HakisaNet and its `act` mode. idle: seconds of the person doing nothing (and holding
    nothing) before the agent gets control back. judge: the game's rules, for the restart navigation the
    agent runs after a game ends (None: no navigation). focus_window, kill_key: the sink's."""

    def __init__(self, net, mode: str, *, idle: float = 0.4, judge=None, focus_window=None,
                 kill_key: str | None = "f12", echo_window: float = 0.5, checkpoint: str = "untrained"):
        from hakisa.preprocess import FrameStack

        self.net, self.mode, self.idle, self.judge = net, mode, float(idle), judge
        self.focus_window, self.kill_key, self.checkpoint = focus_window, kill_key, checkpoint
        self.imap, self.spec = net.input_map, net.obs_spec
        self.stack = FrameStack(self.spec)
        self.echo = EchoLog(echo_window)
        self._lock = threading.Lock()
        self.person = False  # who has control now
        self.takeovers = 0
        self.stopped = False  # the kill switch ended the agent for this recording
        self._last_person = -1e9
        self._person_held: set[str] = set()
        self._last_play = self._last_nav = time.monotonic()
        self.navigated = False  # a restart navigation ran since the recorder last asked (its clock restarts)
        self.sink = self.env = self.split = None

    # ---- wiring ---------------------------------------------------------------------------------
    def start(self, capture, person_state) -> InputSplit:
        """Make the sink on the recorder's capture; returns what the listeners should feed."""
        from hakisa.envs.screen import ScreenEnv, nav_keys, with_nav_keys

        nav_map = with_nav_keys(self.imap, nav_keys(self.judge) if self.judge else [])[0]
        focus = self.focus_window if self.focus_window is not None else getattr(capture, "window_id", None)
        # the recorder owns the signals: it stops its loop, and the sink is released in its finally
        self.sink = AgentSink(nav_map, capture, self.echo, lambda: self.person or self.stopped,
                              kill_key=self.kill_key, require_focus=False if focus is None else focus,
                              handle_signals=False)
        if self.judge is not None:  # only for its restart navigation, through the same gated sink
            self.env = ScreenEnv(self.imap, self.judge, capture=capture, sink=self.sink, own_capture=False,
                                 obs_spec=self.spec)
        mouse = any(c.kind not in ("noop", "keys", "tap") for c in self.imap.commands)
        self.split = InputSplit(person_state, self.echo, self._on_person, mouse_takes=mouse)
        return self.split

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def meta(self) -> dict:
        return {"agent": self.checkpoint, "agent_mode": self.mode, "idle_ms": round(self.idle * 1000)}

    # ---- control --------------------------------------------------------------------------------
    def _on_person(self, kind: str, key: str, takes: bool) -> None:
        """A person's event (listener thread). A press, click (or a move, on a mouse map) takes control."""
        with self._lock:
            self._last_person = time.monotonic()
            if kind == "down":
                self._person_held.add(key)
            elif kind == "up":
                self._person_held.discard(key)
            elif kind in ("press", "release"):
                (self._person_held.add if kind == "press" else self._person_held.discard)("button:" + key)
            take = takes and not self.person
            if take:
                self.person = True
                self.takeovers += 1
        if take and self.sink is not None:
            self.sink.release_all()  # now, not at the next tick: the sink's gate already refuses its sends

    def _maybe_return(self) -> None:
        with self._lock:
            if self.person and not self._person_held and time.monotonic() - self._last_person >= self.idle:
                self.person = False

    @property
    def control(self) -> str:
        return "stopped" if self.stopped else "person" if self.person else "agent"

    def events(self) -> list:
        return self.split.drain()

    # ---- one tick -------------------------------------------------------------------------------
    def tick(self, frame: np.ndarray, playing: bool, new_episode: bool = False,
             restart: bool = True) -> tuple[np.ndarray | None, dict]:
        """The agent's step on this tick's preprocessed frame. Returns (its action, the store's per-frame extras)
        when it acted; (None, the person's extras) when the person has control or the game is not in play.
        restart: outside play, may the agent restart the game (not while the recording is paused)."""
        from hakisa.sink import KillSwitch

        self._maybe_return()
        person = {"actor": PERSON, "logp": float("nan"), "value": float("nan")}
        if not playing:
            self._between_games(restart)
            return None, person
        self._last_play = time.monotonic()
        obs = self.stack.reset(frame) if new_episode else self.stack.push(frame)
        if self.person or self.stopped:
            return None, person
        a, logp, value = self._act(obs)
        try:
            self.sink.send(a)
        except KillSwitch:
            self.stopped = True
            return None, person
        if self.person:  # the person took over while it decided: this frame is theirs
            return None, person
        return a, {"actor": AGENT, "logp": logp, "value": value}

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, float, float]:
        import torch

        with torch.inference_mode():
            o = torch.from_numpy(np.ascontiguousarray(obs))[None]
            lc, lx, ly, v = self.net.policy(o)
            a = self.net.act(o, "q") if self.mode == "q" else self.net.pick((lc, lx, ly), self.mode == "sample")
            lp, _ = self.net.dist_logp_entropy(lc, lx, ly, a)
        return a[0].numpy(), float(lp[0]), float(v[0])

    def _between_games(self, restart: bool) -> None:
        """Nothing held outside play; after a second of it, the agent restarts the game (its navigation)."""
        if self.sink is None or self.stopped:
            return
        if self.sink.held:
            self.sink.release_all()
        now = time.monotonic()
        if not restart or self.env is None or self.person or now - max(self._last_play, self._last_nav) < 1.0:
            return
        self.env.navigate("restart")  # its `until` waits: no frame is recorded outside play anyway
        self._last_nav, self.navigated = time.monotonic(), True
