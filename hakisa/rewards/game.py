"""A game's screen rules from one config file: readers, delta reward, done, winner, in-play, navigation.

    judge = Game.load("duel").judge()        # a game's rules (hakisa/games/duel.json); GameJudge.load(rules file)
    readings = judge.reset(frame)             # at the first frame of a fight
    reward, done, info = judge.step(frame)    # every step after

Config (JSON or YAML), regions in canvas pixels (`canvas: [w, h]`):
  readers:   name -> {type: bar|color_fraction|mean_gray|change|digits|reward_net, region, ...}
  reward:    {deltas: {reading: coef}, max_abs_delta: {reading: x}, win: r, lose: r}
  done:      condition; `done_frames`: consecutive frames it must hold (debounces a fading overlay)
  start_frames: consecutive looks in play (and not done) that start a game (default 1; 2 for a counter that
             still shows the last game's score on the first frame of the next)
  outcomes:  [{winner: int, when: condition}, ...] checked in order once done (else `default_winner`)
  in_play:   condition: the game accepts input (not a menu, not an overlay); input is gated on it
  reward_when: condition under which the readings are trusted for deltas (default: in_play); e.g. the
             duel's result band leaves the HUD visible, so the killing blow's HP delta still counts
  navigation: {restart: [step, ...]}; step = {key: name} | {click: [x, y]} | {wait: s} |
              {until: condition, timeout: s}
A condition is {reading, op, value} | {all: [...]} | {any: [...]} | {not: condition}.

References: `refs: {rules: "duel/rules.json"}` names JSON files (relative to the game file);
any string value "@rules:hud.knight_hp" is replaced by that file's value at the dotted path. A name
that indexes a list is looked up in the sibling `<list>_names` ("@rules:palette.hp_knight"). So
the duel config follows rules.json when its HUD, palette or HP totals change.
"""
from __future__ import annotations

import json
import operator
from pathlib import Path

from hakisa.rewards.delta import DeltaReward
from hakisa.rewards.readers import BarReader, ChangeDetector, ColorFraction, DigitReader, MeanGray

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def condition_holds(cond: dict | None, readings: dict) -> bool:
    """A config condition against the current readings (an unreadable reading makes a test False)."""
    if cond is None:
        return True
    if "all" in cond:
        return all(condition_holds(c, readings) for c in cond["all"])
    if "any" in cond:
        return any(condition_holds(c, readings) for c in cond["any"])
    if "not" in cond:
        return not condition_holds(cond["not"], readings)
    v = readings.get(cond["reading"])
    return v is not None and OPS[cond.get("op", ">=")](v, cond["value"])


def resolve_refs(cfg, refs: dict[str, dict]):
    """Replace "@name:dotted.path" strings by values from the referenced JSON documents."""
    if isinstance(cfg, dict):
        return {k: resolve_refs(v, refs) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [resolve_refs(v, refs) for v in cfg]
    if isinstance(cfg, str) and cfg.startswith("@") and ":" in cfg:
        name, path = cfg[1:].split(":", 1)
        if name not in refs:
            raise KeyError(f"reward config: {cfg!r} names unknown reference {name!r} (refs: {sorted(refs)})")
        node, parent, last = refs[name], refs[name], name
        for key in path.split("."):
            if isinstance(node, list):
                idx = int(key) if key.isdigit() else None
                if idx is None:
                    names = parent.get(f"{last}_names", [])
                    if key not in names:
                        raise KeyError(f"reward config: {cfg!r}: {key!r} is not in {last}_names")
                    idx = names.index(key)
                parent, node = node, node[idx]
            else:
                parent, node, last = node, node[key], key
        return node
    return cfg


def build_reader(spec: dict, canvas, base: Path):
    kind, region = spec["type"], tuple(spec["region"]) if spec.get("region") is not None else None
    if kind == "bar":
        return BarReader(region, tuple(spec["color"]), spec.get("tol", 60.0), spec.get("min_coverage", 0.5), canvas,
                         float(spec.get("scale", 1.0)))
    if kind == "color_fraction":
        return ColorFraction(region, tuple(spec["color"]), spec.get("tol", 40.0), canvas)
    if kind == "mean_gray":
        return MeanGray(region, canvas)
    if kind == "change":
        return ChangeDetector(region, spec.get("threshold", 8.0), canvas)
    if kind == "digits":
        r = DigitReader.load(base / spec["templates"])
        r.region, r.canvas = region or r.region, canvas
        return r
    if kind == "reward_net":
        from hakisa.rewards.model import RewardNet  # torch only when a config asks for it

        return RewardNet.load(base / spec["path"])
    raise ValueError(f"unknown reader type {kind!r}")


class GameJudge:
    """A game's screen rules, applied frame by frame: its readers, delta reward, in-play, done and outcomes.

    `step(frame)` returns (reward, done, info): reward is the coefficient-weighted change of the readings (only
    while they are trusted: `reward_when`, default in play) plus the win/lose bonus at the end; done holds after
    `done_frames` frames in a row of the `done` rule; info has "readings", "in_play", "winner" (when the rules
    name outcomes) and "score". `reset(frame)` starts the deltas from that frame's readings."""

    def __init__(self, cfg: dict, base: Path | None = None, score: str | None = None):
        """score: the reading that is the game's score (a game file's `score`), reported as info["score"]."""
        base = base or Path(".")
        self.score = score
        refs = {name: json.loads((base / path).read_text()) for name, path in cfg.get("refs", {}).items()}
        self.cfg = cfg = resolve_refs(cfg, refs)
        self.canvas = tuple(cfg["canvas"]) if cfg.get("canvas") else None
        self.readers = {name: build_reader(spec, self.canvas, base) for name, spec in cfg["readers"].items()}
        rw = cfg.get("reward", {})
        self.delta = DeltaReward(rw.get("deltas", {}), rw.get("max_abs_delta"))
        self.win_bonus, self.lose_bonus = float(rw.get("win", 0.0)), float(rw.get("lose", 0.0))
        self.done_frames = int(cfg.get("done_frames", 1))
        self.start_frames = int(cfg.get("start_frames", 1))
        self._start_run = 0
        self.navigation: dict[str, list[dict]] = cfg.get("navigation", {})
        self._done_run = 0
        self.readings: dict = {}

    @classmethod
    def blank(cls) -> "GameJudge":
        """Rules that read nothing: always in play, never done, no reward. For a ScreenEnv over a window that no
        game file describes (`hakisa bench io`, the live loop's tests)."""
        return cls({"readers": {}})

    @classmethod
    def load(cls, path: str | Path) -> "GameJudge":
        """A bare rules file (JSON/YAML: readers, reward, done, ...). A game's own rules: `Game.load(name).judge()`."""
        p = Path(path)
        if p.suffix in (".yaml", ".yml"):
            import yaml

            cfg = yaml.safe_load(p.read_text())
        else:
            cfg = json.loads(p.read_text())
        if "rules" in cfg:
            raise ValueError(f"{p} is a game file: its judge is Game.load({str(p)!r}).judge()")
        return cls(cfg, p.parent)

    # ---- per frame ------------------------------------------------------------------------------
    def read(self, frame) -> dict:
        self.readings = {name: r.read(frame) for name, r in self.readers.items()}
        return self.readings

    def in_play(self, readings: dict | None = None) -> bool:
        return condition_holds(self.cfg.get("in_play"), self.readings if readings is None else readings)

    def starts(self, readings: dict) -> bool:
        """Is this look (its readings) the first frame of a game: in play and not done for `start_frames` looks
        in a row. Call it once per look until it says True, then `reset` on that frame."""
        fresh = self.in_play(readings) and not self.is_done(readings)
        self._start_run = self._start_run + 1 if fresh else 0
        return self._start_run >= self.start_frames

    def starting(self) -> bool:
        """A game is on its way in (some looks in play, fewer than `start_frames`): do not give up on it yet."""
        return 0 < self._start_run < self.start_frames

    def is_done(self, readings: dict | None = None) -> bool:
        return "done" in self.cfg and condition_holds(self.cfg["done"], self.readings if readings is None else readings)

    def winner(self, readings: dict | None = None) -> int:
        readings = self.readings if readings is None else readings
        for o in self.cfg.get("outcomes", []):
            if condition_holds(o["when"], readings):
                return int(o["winner"])
        return int(self.cfg.get("default_winner", 0))

    def reset(self, frame) -> dict:
        readings = self.read(frame)
        for r in self.readers.values():
            if isinstance(r, ChangeDetector):
                r.reset(frame)
        self.delta.reset(readings)
        self._done_run = self._start_run = 0
        return readings

    def step(self, frame) -> tuple[float, bool, dict]:
        """(reward, terminated, info) for the newest frame. Deltas only accrue while the readings are
        trusted (`reward_when`, default in play), so an overlay hiding the HUD (or a menu) can never pay
        or cost anything."""
        readings = self.read(frame)
        playing = self.in_play(readings)
        trusted = condition_holds(self.cfg["reward_when"], readings) if "reward_when" in self.cfg else playing
        reward = self.delta(readings) if trusted else 0.0
        self._done_run = self._done_run + 1 if self.is_done(readings) else 0
        done = self._done_run >= self.done_frames
        info = {"readings": dict(readings), "in_play": playing}
        if self.won_or_lost:  # only a game that is won or lost has a winner (0 while it goes on)
            info["winner"] = 0
        if done and self.won_or_lost:
            info["winner"] = w = self.winner(readings)
            reward += self.win_bonus if w == self.win_winner else self.lose_bonus if w else 0.0
        if self.score is not None:
            info["score"] = readings.get(self.score)
        return reward, done, info

    @property
    def won_or_lost(self) -> bool:
        return bool(self.cfg.get("outcomes"))

    @property
    def win_winner(self) -> int:
        """The winner value that means the agent won (outcomes name players by number)."""
        return int(self.cfg.get("win_winner", 1))
