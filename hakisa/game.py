"""A game is one file: where its window is, what the agent sees and presses, and its screen rules.

    game = Game.load("pop")                     # hakisa/games/pop.json, or a path to your own file
    with game.open() as live:                   # launch it (or find its window), own Xvfb if no DISPLAY
        env = game.screen_env(live)             # a Gymnasium ScreenEnv over the real window
    envs = game.sim_vec(8)                      # its simulator, when the file names one

The file's fields and how they are checked: hakisa/game_schema.py. Opening the window: hakisa/game_launch.py.
A game with `outcomes` in its rules is won or lost (win rate); any other game is a score game (mean score).
"""
from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from hakisa.game_file import GAMES_DIR, GameFileError, shipped_with_sim
from hakisa.game_file import show_path as _show
from hakisa.game_schema import is_number as _is_number
from hakisa.game_schema import validate
from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec

__all__ = ["GAMES_DIR", "Game", "GameFileError", "find_game", "parse_opts", "recorded_game_file"]


@dataclass
class Game:
    """A loaded, validated game file (the schema: hakisa/game_schema.py). What the verbs ask of a game: its
    judge (`judge`), its options (`resolve_options`), its simulator (`sim_vec`), its reward coefficients
    (`reward_coefficients`, `with_reward`), its window (`open` -> a LiveGame, `screen_env`)."""

    name: str
    path: Path
    input_map: InputMap
    rules: dict
    obs_spec: ObsSpec = field(default_factory=ObsSpec)
    hz: float = 15.0
    stride: int = 1
    window: dict = field(default_factory=dict)
    score: str | None = None
    sim: dict | None = None
    options: dict = field(default_factory=dict)
    doc: dict = field(default_factory=dict)  # the file as loaded

    # ---- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path) -> "Game":
        path = find_game(name_or_path)
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                doc = yaml.safe_load(path.read_text())
            else:
                doc = json.loads(path.read_text())
        except (json.JSONDecodeError, ValueError) as e:
            raise GameFileError(f"{_show(path)}: not valid {path.suffix[1:].upper() or 'JSON'}: {e}") from None
        return cls.from_dict(doc, path)

    @classmethod
    def from_dict(cls, doc: dict, path: Path) -> "Game":
        """A Game from a loaded file's mapping, checked field by field first (hakisa/game_schema.py)."""
        return cls(path=path, doc=doc, **validate(doc, path))

    # ---- what the verbs ask ---------------------------------------------------------------------
    @property
    def won_or_lost(self) -> bool:
        """A game with outcomes is judged by win rate, any other by its score."""
        return bool(self.rules.get("outcomes"))

    def judge(self):
        from hakisa.rewards.game import GameJudge

        return GameJudge(self.rules, self.path.parent, score=self.score)

    def resolve_options(self, opts: dict | None = None) -> dict:
        """The file's option defaults, overridden by a user's --opt KEY=VALUE; unknown keys are an error."""
        opts = dict(opts or {})
        unknown = set(opts) - set(self.options)
        if unknown:
            known = ", ".join(self.options) or "none"
            raise GameFileError(
                f"{_show(self.path)}: game {self.name!r} has no option {sorted(unknown)[0]!r} (options: {known})"
            )
        out = {}
        for k, o in self.options.items():
            val = opts.get(k, o.get("default"))
            # a comma list gives the simulator's envs one value each, in turn (e.g. a mix of difficulties)
            parts = val.split(",") if isinstance(val, str) and "," in val else [val]
            if "choices" in o and any(x not in o["choices"] for x in parts):
                raise GameFileError(
                    f"{_show(self.path)}: option {k}={val!r}: one of {', '.join(map(str, o['choices']))} "
                    "expected (or a comma list of them)"
                )
            out[k] = val
        return out

    def sim_vec(self, n: int, seed: int = 0, opts: dict | None = None, **kw):
        """The game's simulator as a SAME_STEP vector env (hakisa.envs.make.make_vec)."""
        if not self.sim:
            raise GameFileError(
                f"{_show(self.path)}: game {self.name!r} has no simulator (no `sim` entry): "
                "it runs on its live window only"
            )
        from hakisa.envs.make import make_vec

        if self.sim.get("module"):  # the game's own package registers its simulator's id with Gymnasium
            importlib.import_module(self.sim["module"])
        resolved = self.resolve_options(opts)
        sim_kw = {}
        for k, o in self.options.items():
            if "sim" in o:
                val = resolved[k]
                parts = val.split(",") if isinstance(val, str) and "," in val else None
                sim_kw[o["sim"]] = [parts[i % len(parts)] for i in range(n)] if parts else val
        if self.sim.get("reward") == "rules":  # the simulator pays the file's reward, whatever it is now
            sim_kw["reward"] = copy.deepcopy(self.rules.get("reward") or {})
        return make_vec(self.sim["env"], n, seed=seed, **{**self.sim.get("kwargs", {}), **sim_kw, **kw})

    # ---- reward coefficients ----------------------------------------------------------------------
    # One set of numbers, rules.reward, pays the live window (hakisa/rewards/game.py) and, when the file's
    # `sim` says `reward: "rules"`, the simulator too. A coefficient is named by its path in rules.reward:
    # "win", "lose", "deltas.<reading>" ("<reading>" alone is short for it), or by an alias the file gives
    # in rules.reward.names ({"dealt": "-deltas.boss_hp"}: a leading "-" flips the sign, so a sweep can
    # range over positive numbers).
    def reward_coefficients(self) -> dict[str, float]:
        """{path: value} of every coefficient in rules.reward: its top-level numbers and deltas.*."""
        rw = self.rules.get("reward") or {}
        out = {k: float(v) for k, v in rw.items() if _is_number(v) and not k.startswith("_")}
        out.update({f"deltas.{k}": float(v) for k, v in (rw.get("deltas") or {}).items() if _is_number(v)})
        return out

    def reward_path(self, name: str) -> tuple[str, float]:
        """(path in rules.reward, sign) of a coefficient's name: a path, a reading, or an alias."""
        coefs = self.reward_coefficients()
        names = (self.rules.get("reward") or {}).get("names") or {}
        if name in names:
            target = str(names[name])
            sign = -1.0 if target.startswith("-") else 1.0
            return target.lstrip("-"), sign
        for path in (name, f"deltas.{name}"):
            if path in coefs:
                return path, 1.0
        known = ", ".join([*coefs, *names]) or "none: the file has no rules.reward"
        raise GameFileError(
            f"{_show(self.path)}: game {self.name!r} has no reward coefficient {name!r} (known: {known})"
        )

    def with_reward(self, values: dict[str, float]) -> "Game":
        """A copy of this game whose rules.reward has these coefficients ({name: value}, names as
        `reward_path` reads them); the file on disk is untouched."""
        rules = copy.deepcopy(self.rules)
        rw = rules.setdefault("reward", {})
        for name, value in values.items():
            path, sign = self.reward_path(name)
            if not _is_number(value):
                raise GameFileError(f"reward {name}={value!r}: a number expected")
            head, _, leaf = path.rpartition(".")
            (rw[head] if head else rw)[leaf] = sign * float(value)
        doc = {**self.doc, "rules": rules}
        return replace(self, rules=rules, doc=doc)

    @property
    def sweep(self) -> tuple[str | None, list]:
        """(option, values) the arena plays every agent at (a column each), or (None, [None])."""
        for k, o in self.options.items():
            if o.get("sweep"):
                return k, list(o["sweep"])
        return None, [None]

    @classmethod
    def for_env(cls, env_id: str) -> "Game | None":
        """The shipped game whose simulator is `env_id`, if any (so `--env ID` finds its recipe)."""
        f = shipped_with_sim(env_id)
        return cls.load(f) if f else None

    def open(
        self, display: str | None = None, opts: dict | None = None, query: dict | None = None, private: bool = False,
        backend: str | None = None,
    ):
        """A context with the game's window on screen: launched when the file says how, else found by title.
        private: launch it on a new Xvfb display of its own (fleets: one display per window, so input for
        one window can never reach another, and the user's desktop is never touched). backend: the capture and
        input backend (hakisa.backends; default $HAKISA_BACKEND, else auto)."""
        from hakisa.game_launch import LiveGame

        return LiveGame(self, display, opts, query, private, backend)

    def screen_env(self, live, obs_spec: ObsSpec | None = None, **kw):
        """A ScreenEnv over the open game: its capture region, focus window, rules, input map and rate."""
        from hakisa.capture import Capture
        from hakisa.envs.screen import ScreenEnv

        spec = obs_spec or self.obs_spec
        capture = Capture(region=live.region, spec=spec, display=live.display, backend=getattr(live, "backend", None))
        kw.setdefault("hz", self.hz)
        return ScreenEnv(
            self.input_map,
            self.judge(),
            capture=capture,
            focus_window=live.window_id,
            obs_spec=spec,
            own_capture=True,
            **kw,
        )


def find_game(name_or_path: str | Path) -> Path:
    """A path to a game file, or the name of a shipped one (hakisa/games/NAME.json)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for ext in (".json", ".yaml", ".yml"):
        q = GAMES_DIR / f"{name_or_path}{ext}"
        if q.is_file():
            return q
    shipped = ", ".join(sorted(f.stem for f in GAMES_DIR.glob("*.json")))
    raise GameFileError(
        f"no game file {str(name_or_path)!r} (a path to a .json/.yaml file, or a shipped game: {shipped})"
    )


def recorded_game_file(checkpoint_or_run: str | Path) -> str | None:
    """The game file a checkpoint or a run was made with, as they record it: the checkpoint's config.json
    (`algo.game_file`: study, live training), else its run's: runs/NAME/config.json (`game_file`) or the
    game.json that `hakisa train` writes there. None when nothing recorded one that still exists (shipped
    games are found by their input map's name)."""
    p = Path(checkpoint_or_run)
    for d in (p, p / "checkpoint", p.parent):
        for name in ("config.json", "game.json"):
            try:
                doc = json.loads((d / name).read_text())
            except (OSError, ValueError):
                continue
            algo = doc.get("algo") if isinstance(doc, dict) else None
            found = (algo.get("game_file") if isinstance(algo, dict) else None) or (
                doc.get("game_file") if isinstance(doc, dict) else None)
            if isinstance(found, str) and Path(found).is_file():
                return found
    return None


def parse_opts(items: list[str] | None) -> dict:
    """--opt KEY=VALUE pairs -> dict (numbers stay strings unless they look like numbers)."""
    out = {}
    for it in items or []:
        if "=" not in it:
            raise GameFileError(f"--opt {it!r}: KEY=VALUE expected")
        k, val = it.split("=", 1)
        try:
            out[k] = json.loads(val)
        except ValueError:
            out[k] = val
    return out
