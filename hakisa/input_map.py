"""The action vocabulary: a triple [command, x, y] <-> what to press, hold, move or click.

A game is a config file, not a plugin: an InputMap is plain data (JSON/YAML). Commands are
  noop                          nothing pressed
  keys   (e.g. ["right", "j"])  a chord held down for the whole step
  tap    (e.g. ["space"])       pressed and released at the start of the step
  move / click_left / click_right   the mouse at binned absolute (x, y) inside the capture region
  rel_move                      a relative (camera) move; x/y bins are mu-law spaced as in VPT
Only mouse commands use the x and y heads; `uses_xy` is the mask learners multiply into losses.
Key names are pynput's: letters as themselves, specials as pynput.keyboard.Key names
("left", "space", "shift", "f1", ...).
"""
from __future__ import annotations

import difflib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("noop", "keys", "tap", "move", "click_left", "click_right", "rel_move")
XY_KINDS = ("move", "click_left", "click_right", "rel_move")
MAPS_DIR = Path(__file__).parent / "maps"
# pynput's special keys (pynput.keyboard.Key), which both input backends press by these names. Written out
# because importing pynput needs a display, and a game file's keys are checked when it loads, display or not
# (tests/test_game.py keeps this list equal to pynput's).
KEY_NAMES = (
    "alt", "alt_gr", "alt_l", "alt_r", "backspace", "caps_lock", "cmd", "cmd_l", "cmd_r", "ctrl", "ctrl_l", "ctrl_r",
    "delete", "down", "end", "enter", "esc", *(f"f{i}" for i in range(1, 21)), "home", "insert", "left",
    "media_next", "media_play_pause", "media_previous", "media_volume_down", "media_volume_mute", "media_volume_up",
    "menu", "num_lock", "page_down", "page_up", "pause", "print_screen", "right", "scroll_lock", "shift", "shift_l",
    "shift_r", "space", "tab", "up",
)
MAP_FIELDS = ("name", "commands", "x_bins", "y_bins", "rel_max", "mu", "meta")
COMMAND_FIELDS = ("name", "kind", "keys")


def check_key_name(name) -> None:
    """Raise ValueError, naming the closest known key, for a name no input backend can press: a key is one
    character ("j", "1") or one of pynput's special keys (KEY_NAMES: "left", "space", "f12")."""
    if isinstance(name, str) and (len(name) == 1 or name in KEY_NAMES):
        return
    close = difflib.get_close_matches(str(name), KEY_NAMES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown key name {name!r}{hint} (a single character, or one of pynput's names: "
                     "left, space, enter, shift, f1...f20, ...)")


def _unknown_fields(d: dict, known: tuple[str, ...], where: str) -> None:
    for k in d:
        if k not in known and not str(k).startswith("_"):  # "_doc" style keys are comments
            close = difflib.get_close_matches(str(k), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown field {k!r}{hint} (known: {', '.join(known)})")


@dataclass(frozen=True)
class Command:
    """One entry of an input map: a `name`, a `kind` (one of KINDS) and the `keys` it holds or taps.

    `keys` and `tap` commands must name keys; `uses_xy` is True for the mouse kinds (XY_KINDS), the only
    ones whose x and y heads mean anything."""

    name: str
    kind: str = "keys"
    keys: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"command {self.name!r}: unknown kind {self.kind!r} (one of {KINDS})")
        if self.kind in ("keys", "tap") and not self.keys:
            raise ValueError(f"command {self.name!r}: kind {self.kind!r} needs keys")

    @property
    def uses_xy(self) -> bool:
        return self.kind in XY_KINDS


@dataclass(frozen=True)
class Decoded:
    """What one action means for the sink during one step."""

    held: frozenset[str] = frozenset()  # keys down during the step
    taps: tuple[str, ...] = ()  # keys pressed+released at the step's start
    mouse: tuple[float, float] | None = None  # absolute target, fractions of the region in [0, 1)
    click: str | None = None  # "left" | "right" at `mouse`
    rel: tuple[float, float] | None = None  # relative move in pixels


@dataclass
class InputMap:
    """A game's action vocabulary: `commands` and mouse bins; plain data (`load`: a shipped map or a JSON/YAML file).

    Actions are `MultiDiscrete([len(commands), x_bins, y_bins])` (`action_space`). `decode` turns a triple into
    what the sink presses (`Decoded`); `encode` turns what a person did during a frame into the nearest triple,
    with unused x/y heads set to 0. `uses_xy` is the per-command mask learners multiply into the x/y losses.
    Unknown fields, unknown kinds and duplicate command names raise ValueError."""

    name: str
    commands: list[Command]
    x_bins: int = 1
    y_bins: int = 1
    rel_max: float = 100.0  # pixels, largest relative move
    mu: float = 10.0  # mu-law strength for rel bins
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for c in self.commands:
            if isinstance(c, dict):
                _unknown_fields(c, COMMAND_FIELDS, f"input map {self.name!r}: command {c.get('name')!r}")
        self.commands = [
            c if isinstance(c, Command) else Command(c["name"], c.get("kind", "keys"), tuple(c.get("keys", ())))
            for c in self.commands
        ]
        names = [c.name for c in self.commands]
        if len(set(names)) != len(names):
            raise ValueError(f"input map {self.name!r}: duplicate command names")
        self.uses_xy = np.array([c.uses_xy for c in self.commands], dtype=bool)
        self._by_keys = {frozenset(c.keys): i for i, c in enumerate(self.commands) if c.kind == "keys"}
        self._noop = next((i for i, c in enumerate(self.commands) if c.kind == "noop"), None)

    # ---- spaces and masks -------------------------------------------------------------------
    @property
    def nvec(self) -> np.ndarray:
        return np.array([len(self.commands), self.x_bins, self.y_bins], dtype=np.int64)

    @property
    def action_space(self):
        import gymnasium as gym

        return gym.spaces.MultiDiscrete(self.nvec)

    def xy_mask(self, command: np.ndarray) -> np.ndarray:
        """bool mask, same shape as `command`: True where the x/y heads matter."""
        return self.uses_xy[np.asarray(command)]

    @property
    def keys(self) -> list[str]:
        """Every key the map can press (what a sink must release on exit)."""
        return sorted({k for c in self.commands for k in c.keys})

    # ---- action -> command ------------------------------------------------------------------
    def decode(self, action) -> Decoded:
        c, x, y = (int(v) for v in action)
        cmd = self.commands[c]
        if cmd.kind == "keys":
            return Decoded(held=frozenset(cmd.keys))
        if cmd.kind == "tap":
            return Decoded(taps=cmd.keys)
        if cmd.kind == "rel_move":
            return Decoded(rel=(self.rel_value(x, self.x_bins), self.rel_value(y, self.y_bins)))
        if cmd.kind in ("move", "click_left", "click_right"):
            pos = ((x + 0.5) / self.x_bins, (y + 0.5) / self.y_bins)
            return Decoded(mouse=pos, click={"click_left": "left", "click_right": "right"}.get(cmd.kind))
        return Decoded()

    def held_keys(self, action) -> frozenset[str]:
        return self.decode(action).held

    # mu-law spacing: fine control near zero, big flicks still possible (VPT's camera bins)
    def rel_value(self, b: int, bins: int) -> float:
        if bins <= 1:
            return 0.0
        u = 2.0 * b / (bins - 1) - 1.0  # [-1, 1]
        return float(np.sign(u) * ((1 + self.mu) ** abs(u) - 1) / self.mu * self.rel_max)

    def rel_bin(self, v: float, bins: int) -> int:
        if bins <= 1:
            return 0
        v = float(np.clip(v / self.rel_max, -1, 1))
        u = np.sign(v) * np.log1p(self.mu * abs(v)) / np.log1p(self.mu)
        return int(np.clip(round((u + 1) / 2 * (bins - 1)), 0, bins - 1))

    # ---- recorded events -> action ----------------------------------------------------------
    def encode(
        self,
        keys_down=(),
        mouse: tuple[float, float] | None = None,
        click: str | None = None,
        taps=(),
        rel: tuple[float, float] | None = None,
        mouse_moved: bool = False,
    ) -> np.ndarray:
        """The nearest triple for what a person did during one frame.

        keys_down: keys held at the frame's time. mouse: pointer position as region fractions.
        click: "left"/"right" if clicked during the frame. taps: keys pressed *and* released
        within the frame. rel: relative motion in pixels. Priority: click > exact key chord >
        tap > mouse move > relative move > closest chord > noop.
        """
        held = frozenset(k for k in keys_down if k in self._all_keys)
        xb, yb = self._xy_bins(mouse)
        order = []
        if click:
            order.append(("click_" + click, None))
        if held in self._by_keys:
            return self._triple(self._by_keys[held], 0, 0)
        for t in taps:
            order.append(("tap", t))
        if mouse_moved and mouse is not None:
            order.append(("move", None))
        if rel is not None and (abs(rel[0]) > 0 or abs(rel[1]) > 0):
            order.append(("rel_move", None))
        for kind, key in order:
            for i, c in enumerate(self.commands):
                if c.kind != kind or (key is not None and key not in c.keys):
                    continue
                if kind == "rel_move":
                    return self._triple(i, self.rel_bin(rel[0], self.x_bins), self.rel_bin(rel[1], self.y_bins))
                return self._triple(i, xb, yb)
        if held:  # no exact chord: the chord sharing most keys, fewest extras
            best = max(self._by_keys.items(), key=lambda kv: (len(kv[0] & held), -len(kv[0] - held)))
            if best[0] & held:
                return self._triple(best[1], 0, 0)
        if self._noop is None:
            raise ValueError(f"input map {self.name!r} has no noop command to encode 'nothing pressed'")
        return self._triple(self._noop, 0, 0)

    @property
    def _all_keys(self) -> set[str]:
        return {k for c in self.commands for k in c.keys}

    def _xy_bins(self, mouse):
        if mouse is None:
            return 0, 0
        return (
            int(np.clip(mouse[0] * self.x_bins, 0, self.x_bins - 1)),
            int(np.clip(mouse[1] * self.y_bins, 0, self.y_bins - 1)),
        )

    def _triple(self, c: int, x: int, y: int) -> np.ndarray:
        if not self.uses_xy[c]:
            x = y = 0  # canonical form: unused heads are 0
        return np.array([c, x, y], dtype=np.int64)

    # ---- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "x_bins": self.x_bins,
            "y_bins": self.y_bins,
            "rel_max": self.rel_max,
            "mu": self.mu,
            "meta": self.meta,
            "commands": [{"name": c.name, "kind": c.kind, "keys": list(c.keys)} for c in self.commands],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "InputMap":
        _unknown_fields(d, MAP_FIELDS, f"input map {d.get('name')!r}")
        return cls(
            name=d["name"],
            commands=d["commands"],
            x_bins=d.get("x_bins", 1),
            y_bins=d.get("y_bins", 1),
            rel_max=d.get("rel_max", 100.0),
            mu=d.get("mu", 10.0),
            meta=d.get("meta", {}),
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        path.write_text(text)

    @classmethod
    def load(cls, path_or_name: str | Path) -> "InputMap":
        """A path to a .json/.yaml file, or the name of a shipped map ("duel", "airstriker")."""
        p = Path(path_or_name)
        if not p.exists():
            p = next(
                (
                    MAPS_DIR / f"{path_or_name}{ext}"
                    for ext in (".json", ".yaml")
                    if (MAPS_DIR / f"{path_or_name}{ext}").exists()
                ),
                p,
            )
        if not p.exists():
            shipped = sorted(f.stem for f in MAPS_DIR.glob("*.*"))
            raise FileNotFoundError(f"no input map at {path_or_name!r}; shipped maps: {shipped}")
        if p.suffix in (".yaml", ".yml"):
            import yaml

            return cls.from_dict(yaml.safe_load(p.read_text()))
        return cls.from_dict(json.loads(p.read_text()))

    def same_as(self, other: "InputMap") -> bool:
        return self.to_dict() == other.to_dict()


# ---- input events -> actions -------------------------------------------------------------------------
@dataclass
class InputState:
    """What the listener threads saw, as of now. Callbacks are cheap (a lock and an append)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: set = field(default_factory=set)
    pressed: set = field(default_factory=set)  # went down since the last snapshot
    tapped: set = field(default_factory=set)  # went down AND up since the last snapshot
    mouse: tuple[float, float] | None = None  # absolute screen pixels
    moved: bool = False
    click: str | None = None
    rel: list = field(default_factory=lambda: [0.0, 0.0])
    events: list = field(default_factory=list)  # (t, type, key, x, y) since the last drain
    hotkeys: dict = field(default_factory=dict)  # key name -> callback (not logged as game input)

    def key(self, down: bool, name: str, t: float | None = None) -> None:
        t = time.time() if t is None else t
        if name in self.hotkeys:
            if down:
                self.hotkeys[name]()
            return
        with self.lock:
            self.events.append((t, "down" if down else "up", name, np.nan, np.nan))
            if down:
                if name not in self.held:
                    self.pressed.add(name)
                self.held.add(name)
            else:
                self.held.discard(name)
                if name in self.pressed:
                    self.tapped.add(name)

    def move(self, x: float, y: float, t: float | None = None) -> None:
        with self.lock:
            if self.mouse is not None:
                self.rel[0] += x - self.mouse[0]
                self.rel[1] += y - self.mouse[1]
            self.mouse, self.moved = (x, y), True
            self.events.append((time.time() if t is None else t, "move", "", x, y))

    def button(self, x: float, y: float, button: str, down: bool, t: float | None = None) -> None:
        with self.lock:
            if down:
                self.click = button
            self.mouse = (x, y)
            self.events.append((time.time() if t is None else t, "press" if down else "release", button, x, y))

    def scroll(self, x: float, y: float, dx: float, dy: float, t: float | None = None) -> None:
        with self.lock:
            self.events.append((time.time() if t is None else t, "scroll", "", dx, dy))

    def snapshot(self, imap: InputMap, region) -> tuple[np.ndarray, list]:
        """(this tick's action triple, the raw events since the last snapshot); resets the 'since' parts."""
        with self.lock:
            keys = self.held | self.pressed
            taps = tuple(sorted(self.tapped))
            mouse = None
            if self.mouse is not None:
                left, top, w, h = region
                mouse = ((self.mouse[0] - left) / w, (self.mouse[1] - top) / h)
            click, moved, rel = self.click, self.moved, tuple(self.rel)
            events, self.events = self.events, []
            self.pressed, self.tapped, self.click, self.moved, self.rel = set(), set(), None, False, [0.0, 0.0]
        action = imap.encode(keys_down=keys, mouse=mouse, click=click, taps=taps, rel=rel, mouse_moved=moved)
        return action, events
