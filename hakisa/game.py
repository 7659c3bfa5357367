"""A game is one file: where its window is, what the agent sees and presses, and its screen rules.

    game = Game.load("pop")                     # hakisa/games/pop.json, or a path to your own file
    with game.open() as live:                   # launch it (or find its window), own Xvfb if no DISPLAY
        env = game.screen_env(live)             # a Gymnasium ScreenEnv over the real window
    envs = game.sim_vec(8)                      # its simulator, when the file names one

The file (JSON or YAML; every field but `name`, `input_map` and `rules` is optional):

    name:       "pop"
    window:     title: "Hakisa Pop"             a substring of the window title, or
                region: [left, top, w, h]       a fixed screen region instead of a window
                launch: {web: "pop"}            a folder (beside the file) served on 127.0.0.1 and opened in a
                                                (files: {"/rules.json": "x.json"} serves more files,
                                                a key ending in "/" a folder's files: {"/b/": "dir"})
                        {url: "https://..."}    Chromium app window, or any URL, or
                        {command: ["mygame"]}   a command that opens the window
                size: [w, h]                    the app window's size (launch only)
                canvas: [x, y, w, h]            the play area inside the window (default: all of it);
                        "#game"                 for a launched page: a CSS selector, measured on the page
                hook: "window.hakisa && hakisa.ready()"   launched pages: a JS test that the page is ready
    obs:        {width: 96, height: 64, gray: true, stack: 4, stride: 1}
    hz:         15                              decisions per second
    input_map:  "duel" (a shipped name), a path, or the map inline (see hakisa/input_map.py)
    rules:      the screen rules inline (hakisa/rewards/game.py: readers, reward, done, outcomes,
                in_play, navigation, kill_key, probe), or a path to a rules file
    score:      "score"                         the reading that is the game's score (score games)
    sim:        {env: "Hakisa/Duel-v0", kwargs: {...}, tick_hz: 60}   an optional fast stand-in for the window
                                                (tick_hz: its ticks per second, when it steps in ticks;
                                                expert: "module:function", a scripted arena baseline;
                                                reward: "rules": the simulator pays the file's rules.reward,
                                                given to it as reward={...}, so one set of coefficients
                                                serves the window and the sim, and `with_reward` changes both)
    options:    {tier: {default: "normal", choices: [...], query: "tier", sim: "tier"}}
                game settings a user picks with --opt KEY=VALUE: passed to the page's URL (query) and the
                simulator (sim) under those names; a comma list gives the simulator's envs a value each;
                `sweep: [...]`: the values the arena plays every agent at, a column each
    train:      {algo: "ppo", num_envs: 32, obs: {...}, opts: {...}, ppo: {...}, dqn: {...}, distill: {...}}
                `hakisa train`'s recipe for the simulator: the default learner, env count, frame size, options
                and, per learner, Args that measured best (a learner's entry may also hold its own
                num_envs and an init checkpoint)

A game with `outcomes` in its rules is won or lost (win rate); any other game is a score game (mean
score). Loading validates everything and names the file and field of the first problem:
`games/mine.json: window.canvas: 4 numbers expected, got 3`. That includes a field no level of the file
knows (named with the closest known one) and a key name no input backend can press, so a typo fails at
`hakisa game check` or any verb's start, never mid-play.
"""
from __future__ import annotations

import copy
import difflib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from hakisa.game_file import GAMES_DIR, GameFileError
from hakisa.game_file import show_path as _show
from hakisa.input_map import KINDS, InputMap, check_key_name
from hakisa.preprocess import ObsSpec

# each reader type's fields, besides `type` (what hakisa/rewards/game.py's build_reader reads)
READER_FIELDS = {
    "bar": ("region", "color", "tol", "min_coverage", "scale"),
    "color_fraction": ("region", "color", "tol"),
    "mean_gray": ("region",),
    "change": ("region", "threshold"),
    "digits": ("region", "templates"),
    "reward_net": ("path",),
}
READER_TYPES = tuple(READER_FIELDS)
RULES_FIELDS = ("readers", "reward", "done", "done_frames", "outcomes", "default_winner", "win_winner", "in_play",
                "reward_when", "navigation", "kill_key", "probe", "refs", "canvas")
TRAIN_FIELDS = ("algo", "num_envs", "obs", "opts", "live")  # and one entry per learner (hakisa/algos/NAME.py)


@dataclass
class Game:
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
        v = _Validator(path)
        if not isinstance(doc, dict):
            v.fail("", f"a mapping expected, got {type(doc).__name__}")
        v.require(doc, "", ("name", "input_map", "rules"))
        v.known(doc, "", ("name", "window", "obs", "hz", "input_map", "rules", "score", "sim", "options", "train"))
        v.typed(doc["name"], "name", str)
        window = doc.get("window") or {}
        v.typed(window, "window", dict)
        v.known(window, "window", ("title", "region", "launch", "size", "canvas", "hook"))
        if "region" in window:
            v.numbers(window["region"], "window.region", 4)
        if "size" in window:
            v.numbers(window["size"], "window.size", 2)
        if "canvas" in window and not (isinstance(window["canvas"], str) and "launch" in window):
            v.numbers(window["canvas"], "window.canvas", 4)
        if "launch" in window:
            launch = window["launch"]
            v.typed(launch, "window.launch", dict)
            kinds = [k for k in ("web", "url", "command") if k in launch]
            if len(kinds) != 1:
                v.fail("window.launch", "exactly one of web, url, command expected")
            v.known(launch, "window.launch", ("web", "url", "command", "files"))
            if "web" in launch and not (path.parent / launch["web"]).is_dir():
                v.fail("window.launch.web", f"no folder {launch['web']!r} beside the game file")
            for url_path, f in (launch.get("files") or {}).items():
                if url_path.endswith("/"):  # a folder's files; it may be absent until something is put there
                    if (path.parent / f).exists() and not (path.parent / f).is_dir():
                        v.fail(f"window.launch.files.{url_path}", f"{f!r} beside the game file is not a folder")
                elif not (path.parent / f).is_file():
                    v.fail(f"window.launch.files.{url_path}", f"no file {f!r} beside the game file")
        obs = doc.get("obs") or {}
        v.typed(obs, "obs", dict)
        v.known(obs, "obs", ("width", "height", "gray", "stack", "stride"))
        for k in ("width", "height", "stack", "stride"):
            if k in obs and not (isinstance(obs[k], int) and obs[k] > 0):
                v.fail(f"obs.{k}", f"a positive whole number expected, got {obs[k]!r}")
        spec = ObsSpec(width=obs.get("width", ObsSpec.width), height=obs.get("height", ObsSpec.height),
                       gray=bool(obs.get("gray", True)), stack=obs.get("stack", ObsSpec.stack))
        hz = doc.get("hz", 15.0)
        if not (isinstance(hz, (int, float)) and 0 < hz <= 240):
            v.fail("hz", f"decisions per second in (0, 240] expected, got {hz!r}")
        imap = v.input_map(doc["input_map"])
        rules = v.rules(doc["rules"])
        score = doc.get("score")
        if score is not None and score not in rules.get("readers", {}):
            v.fail("score", f"{score!r} is not one of the readers ({', '.join(rules.get('readers', {}))})")
        sim = doc.get("sim")
        if sim is not None:
            v.typed(sim, "sim", dict)
            v.require(sim, "sim", ("env",))
            v.known(sim, "sim", ("env", "kwargs", "tick_hz", "expert", "reward"))
            if sim.get("reward", "rules") != "rules":
                v.fail("sim.reward", f"only \"rules\" (the file's rules.reward) is known, got {sim['reward']!r}")
        options = doc.get("options") or {}
        v.typed(options, "options", dict)
        for k, o in options.items():
            v.typed(o, f"options.{k}", dict)
            v.known(o, f"options.{k}", ("default", "choices", "query", "sim", "doc", "sweep"))
            if "choices" in o and o.get("default") not in o["choices"]:
                v.fail(f"options.{k}.default", f"{o.get('default')!r} is not one of {o['choices']}")
        v.train(doc.get("train") or {}, options)
        return cls(name=doc["name"], path=path, input_map=imap, rules=rules, obs_spec=spec, hz=float(hz),
                   stride=int(obs.get("stride", 1)), window=window, score=score, sim=sim, options=options, doc=doc)

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
        for f in sorted(GAMES_DIR.glob("*.json")):
            if (json.loads(f.read_text()).get("sim") or {}).get("env") == env_id:
                return cls.load(f)
        return None

    def open(
        self, display: str | None = None, opts: dict | None = None, query: dict | None = None, private: bool = False,
        backend: str | None = None,
    ) -> "LiveGame":
        """A context with the game's window on screen: launched when the file says how, else found by title.
        private: launch it on a new Xvfb display of its own (fleets: one display per window, so input for
        one window can never reach another, and the user's desktop is never touched). backend: the capture and
        input backend (hakisa.backends; default $HAKISA_BACKEND, else auto)."""
        return LiveGame(self, display, opts, query, private, backend)

    def screen_env(self, live: "LiveGame", obs_spec: ObsSpec | None = None, **kw):
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


class LiveGame:
    """The game's window on a display: `display`, `region` (the canvas on the screen), `window_id`, `title`,
    `backend` (the one that found it, and that its capture and sink use), and `app` (the BrowserApp when the
    file launched a page; its `evaluate` reads a page's test hook)."""

    def __init__(
        self,
        game: Game,
        display: str | None = None,
        opts: dict | None = None,
        query: dict | None = None,
        private: bool = False,
        backend: str | None = None,
    ):
        from hakisa.backends import select_backend

        self.game, self.display, self.opts, self.query, self.private = game, display, opts, dict(query or {}), private
        self.backend = select_backend(backend)
        self._wm = self.backend == "portable"  # a private Xvfb needs a window manager for pywinctl
        self.app = self.region = self.window_id = self.title = None
        self._stack = ExitStack()
        self._old_display = None

    def __enter__(self) -> "LiveGame":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        g, w = self.game, self.game.window
        launch = w.get("launch")
        resolved = g.resolve_options(self.opts)
        query = {o["query"]: resolved[k] for k, o in g.options.items() if "query" in o}
        query.update(self.query)
        if self.private:
            if not launch:
                raise GameFileError(
                    f"{_show(g.path)}: window.launch is needed to open the game on a private display "
                    "(a window found by title lives on the user's display)"
                )
            from hakisa.xserver import Xvfb

            self.display = self._stack.enter_context(Xvfb(1280, 720, wm=self._wm))
        if launch and ("web" in launch or "url" in launch):
            from hakisa.browser import BrowserApp

            web = g.path.parent / launch["web"] if "web" in launch else None
            canvas = w.get("canvas") if isinstance(w.get("canvas"), str) else "#game"
            kw = {"size": tuple(w["size"])} if "size" in w else {}
            # a page without a test hook is ready once it has loaded
            kw["ready_js"] = w.get("hook", "document.readyState === 'complete'")
            extra = {u: g.path.parent / f for u, f in (launch.get("files") or {}).items()}
            self.app = self._stack.enter_context(
                BrowserApp(
                    web, url=launch.get("url"), query=query, canvas=canvas, display=self.display, extra=extra,
                    wm=self._wm, **kw
                )
            )
            self.display, self.title = self.app.display, self.app.window_title
            if not isinstance(w.get("canvas"), list):
                self.region = self.app.canvas_region
        elif launch and "command" in launch:
            import subprocess

            from hakisa.browser import kill_group

            self.display = self.display or os.environ.get("DISPLAY")
            if not self.display:
                from hakisa.xserver import Xvfb

                self.display = self._stack.enter_context(Xvfb(1280, 720, wm=self._wm))
            proc = subprocess.Popen(
                launch["command"],
                env={**os.environ, "DISPLAY": self.display},
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._stack.callback(kill_group, proc)
        self.display = self.display or os.environ.get("DISPLAY")
        if not self.display:
            from hakisa.backends import DisplayError

            raise DisplayError(f"{_show(g.path)}: game {g.name!r} has no window.launch entry, so its window is found "
                               "on your display, and DISPLAY is not set (run it on your desktop, or set DISPLAY)")
        # pynput and mss talk to $DISPLAY: point it at the game's display while it is open
        self._old_display = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = self.display
        if "region" in w and not launch:
            self.region, self.title = tuple(w["region"]), None
            return
        title = self.title or w.get("title")
        if not title:
            raise GameFileError(f"{_show(g.path)}: window: a title or a region is needed to find the game")
        win = _wait_for_window(title, 30.0 if launch else 0.0, self.backend)
        self.window_id, self.title = win.id, win.title
        if launch:  # a window we opened gets the keyboard, as a window manager would give a new window
            from hakisa.capture import give_focus

            give_focus(win.id, backend=self.backend)
        if self.region is None:
            wl, wt, ww, wh = win.region
            box = w.get("canvas") if isinstance(w.get("canvas"), list) else [0, 0, ww, wh]
            self.region = (wl + box[0], wt + box[1], box[2], box[3])

    def close(self) -> None:
        self._stack.close()
        if self._old_display is not None:
            os.environ["DISPLAY"] = self._old_display
        elif self.display and os.environ.get("DISPLAY") == self.display and self.app is not None:
            os.environ.pop("DISPLAY", None)


def _wait_for_window(title: str, timeout: float, backend: str | None = None):
    """find_window, retried while a just-launched program opens its window."""
    import time

    from hakisa.capture import WindowNotFound, find_window

    deadline = time.monotonic() + timeout
    while True:
        try:
            return find_window(title, backend=backend)
        except WindowNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Validator:
    """Checks a game file field by field; the first problem raises GameFileError naming file and field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, msg: str):
        raise GameFileError(f"{_show(self.path)}: {where + ': ' if where else ''}{msg}")

    def require(self, d: dict, where: str, keys) -> None:
        for k in keys:
            if k not in d:
                self.fail(f"{where}.{k}" if where else k, "missing")

    def known(self, d: dict, where: str, keys) -> None:
        for k in d:
            if k not in keys and not str(k).startswith("_"):  # "_doc" style keys are comments
                close = difflib.get_close_matches(str(k), list(keys), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(f"{where}.{k}" if where else str(k), f"unknown field {k!r}{hint} (known: {', '.join(keys)})")

    def key(self, name, where: str) -> None:
        """A key name the input backends can press, checked here so that no display is needed."""
        try:
            check_key_name(name)
        except ValueError as e:
            self.fail(where, str(e))

    def typed(self, val, where: str, typ) -> None:
        if not isinstance(val, typ):
            self.fail(where, f"{typ.__name__ if typ is not dict else 'a mapping'} expected, got {type(val).__name__}")

    def numbers(self, val, where: str, n: int) -> None:
        if isinstance(val, str) and val.startswith("@"):
            return  # a reference, resolved (and checked) by the rules' refs
        if not isinstance(val, (list, tuple)) or not all(isinstance(x, (int, float)) for x in val):
            self.fail(where, f"{n} numbers expected, got {val!r}")
        if len(val) != n:
            self.fail(where, f"{n} numbers expected, got {len(val)}")

    def input_map(self, val) -> InputMap:
        if isinstance(val, str):
            p = self.path.parent / val
            try:
                imap = InputMap.load(p if p.is_file() else val)
            except (FileNotFoundError, ValueError, TypeError) as e:
                self.fail("input_map", str(e))
            for i, c in enumerate(imap.commands):
                for j, k in enumerate(c.keys):
                    self.key(k, f"input_map ({val}): commands[{i}].keys[{j}]")
            return imap
        self.typed(val, "input_map", dict)
        self.require(val, "input_map", ("commands",))
        self.known(val, "input_map", ("name", "commands", "x_bins", "y_bins", "rel_max", "mu", "meta"))
        if not isinstance(val["commands"], list) or not val["commands"]:
            self.fail("input_map.commands", "a list of commands expected")
        for i, c in enumerate(val["commands"]):
            where = f"input_map.commands[{i}]"
            self.typed(c, where, dict)
            self.require(c, where, ("name", "kind"))
            self.known(c, where, ("name", "kind", "keys"))
            if c["kind"] not in KINDS:
                self.fail(f"{where}.kind", f"{c['kind']!r} is not one of {', '.join(KINDS)}")
            keys = c.get("keys", [])
            if not isinstance(keys, list):
                self.fail(f"{where}.keys", f"a list of key names expected, got {keys!r}")
            for j, k in enumerate(keys):
                self.key(k, f"{where}.keys[{j}]")
        for k in ("x_bins", "y_bins"):
            if k in val and not (isinstance(val[k], int) and val[k] > 0):
                self.fail(f"input_map.{k}", f"a positive whole number expected, got {val[k]!r}")
        try:
            return InputMap.from_dict({"name": val.get("name", "game"), **val})
        except (ValueError, TypeError) as e:
            self.fail("input_map", str(e))

    def train(self, val, options: dict) -> None:
        """`train`'s own fields; each learner's entry holds its Args, which `hakisa train` checks by name."""
        self.typed(val, "train", dict)
        learners = sorted(f.stem for f in (Path(__file__).parent / "algos").glob("*.py")
                          if "class Args" in f.read_text())
        self.known(val, "train", (*TRAIN_FIELDS, *learners))
        obs = val.get("obs") or {}
        self.typed(obs, "train.obs", dict)
        self.known(obs, "train.obs", tuple(f.name for f in fields(ObsSpec)))
        opts = val.get("opts") or {}
        self.typed(opts, "train.opts", dict)
        self.known(opts, "train.opts", tuple(options))
        live = val.get("live") or {}
        self.typed(live, "train.live", dict)
        self.known(live, "train.live", tuple(learners))

    def rules(self, val) -> dict:
        if isinstance(val, str):
            p = self.path.parent / val
            if not p.is_file():
                self.fail("rules", f"no rules file {val!r} beside the game file")
            val = json.loads(p.read_text())
        self.typed(val, "rules", dict)
        self.require(val, "rules", ("readers",))
        self.known(val, "rules", RULES_FIELDS)
        for ref, f in (val.get("refs") or {}).items():
            if not (self.path.parent / str(f)).is_file():
                self.fail(f"rules.refs.{ref}", f"no file {f!r} beside the game file")
        self.typed(val["readers"], "rules.readers", dict)
        for name, r in val["readers"].items():
            where = f"rules.readers.{name}"
            self.typed(r, where, dict)
            self.require(r, where, ("type",))
            if r["type"] not in READER_TYPES:
                self.fail(f"{where}.type", f"{r['type']!r} is not one of {', '.join(READER_TYPES)}")
            self.known(r, where, ("type", *READER_FIELDS[r["type"]]))
            if r.get("region") is not None:
                self.numbers(r["region"], f"{where}.region", 4)
            if "color" in r:
                self.numbers(r["color"], f"{where}.color", 3)
            if r["type"] in ("bar", "color_fraction") and "color" not in r:
                self.fail(f"{where}.color", "missing")
            if r["type"] == "digits":
                self.require(r, where, ("templates",))
                t = self.path.parent / r["templates"]
                if not t.with_suffix(".json").is_file():
                    self.fail(
                        f"{where}.templates",
                        f"no templates {r['templates']!r} beside the game file (make them with `hakisa game digits`)",
                    )
        if "canvas" in val:
            self.numbers(val["canvas"], "rules.canvas", 2)
        names = set(val["readers"])
        for key in ("done", "in_play", "reward_when"):
            if key in val:
                self.condition(val[key], f"rules.{key}", names)
        for i, o in enumerate(val.get("outcomes", [])):
            self.typed(o, f"rules.outcomes[{i}]", dict)
            self.require(o, f"rules.outcomes[{i}]", ("winner", "when"))
            self.known(o, f"rules.outcomes[{i}]", ("winner", "when"))
            self.condition(o["when"], f"rules.outcomes[{i}].when", names)
        for reading in (val.get("reward") or {}).get("deltas", {}):
            if reading not in names:
                self.fail(f"rules.reward.deltas.{reading}", f"not one of the readers ({', '.join(sorted(names))})")
        rw = val.get("reward") or {}
        self.typed(rw, "rules.reward", dict)
        self.known(rw, "rules.reward", ("deltas", "max_abs_delta", "win", "lose", "names"))
        for alias, target in (rw.get("names") or {}).items():  # "dealt": "-deltas.boss_hp"
            head, _, leaf = str(target).lstrip("-").rpartition(".")
            box = rw.get(head) if head else rw
            if head not in ("", "deltas") or not isinstance(box, dict) or not _is_number(box.get(leaf)):
                self.fail(f"rules.reward.names.{alias}", f"{target!r} is not a number in rules.reward "
                          "(\"win\", \"deltas.<reading>\", with an optional leading -)")
        for nav, steps in (val.get("navigation") or {}).items():
            for i, s in enumerate(steps):
                where = f"rules.navigation.{nav}[{i}]"
                if not isinstance(s, dict) or not set(s) & {"key", "click", "wait", "until"}:
                    self.fail(where, "a step {key: K} | {click: [x, y]} | {wait: s} | {until: condition} expected")
                self.known(s, where, ("key", "click", "wait", "until", "timeout"))
                if "key" in s:
                    self.key(s["key"], f"{where}.key")
                if "until" in s:
                    self.condition(s["until"], f"{where}.until", names)
        if val.get("kill_key") is not None:
            self.key(val["kill_key"], "rules.kill_key")
        if "probe" in val:
            self.typed(val["probe"], "rules.probe", dict)
            self.require(val["probe"], "rules.probe", ("command", "region"))
            self.known(val["probe"], "rules.probe", ("command", "region", "threshold"))
            self.numbers(val["probe"]["region"], "rules.probe.region", 4)
        return val

    def condition(self, c, where: str, names: set) -> None:
        from hakisa.rewards.game import OPS

        if not isinstance(c, dict):
            self.fail(where, "a condition {reading, op, value} | {all: [...]} | {any: [...]} | {not: ...} expected")
        if "all" in c or "any" in c:
            key = "all" if "all" in c else "any"
            self.known(c, where, (key,))
            for i, sub in enumerate(c[key]):
                self.condition(sub, f"{where}.{key}[{i}]", names)
        elif "not" in c:
            self.known(c, where, ("not",))
            self.condition(c["not"], f"{where}.not", names)
        else:
            self.require(c, where, ("reading", "value"))
            self.known(c, where, ("reading", "op", "value"))
            if c["reading"] not in names:
                self.fail(
                    f"{where}.reading", f"{c['reading']!r} is not one of the readers ({', '.join(sorted(names))})"
                )
            if c.get("op", ">=") not in OPS:
                self.fail(f"{where}.op", f"{c['op']!r} is not one of {' '.join(OPS)}")
