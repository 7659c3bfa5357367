"""The game file's schema and its validator (`validate`), which hakisa/game.py's `Game.load` runs.

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
    sim:        {env: "Hakisa/Duel-v0", module: "hakisa.games.duel", kwargs: {...}, tick_hz: 60}
                                                an optional fast stand-in for the window (env: its Gymnasium
                                                id; module: the package whose import registers that id, so
                                                make_vec finds it; tick_hz: its ticks per second, when it
                                                steps in ticks;
                                                expert: "module:function", a scripted arena baseline;
                                                reward: "rules": the simulator pays the file's rules.reward,
                                                given to it as reward={...}, so one set of coefficients
                                                serves the window and the sim, and `with_reward` changes both)
    options:    {tier: {default: "normal", choices: [...], query: "tier", sim: "tier"}}
                game settings a user picks with --opt KEY=VALUE: passed to the page's URL (query) and the
                simulator (sim) under those names; a comma list gives the simulator's envs a value each;
                `sweep: [...]`: the values the arena plays every agent at, a column each
    verbs:      "hakisa.games.duel.cli"           a module of the game's own tools (add_args, main): a shipped
                                                game's become `hakisa NAME ...` (hakisa/cli.py)
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

import difflib
import json
from dataclasses import fields
from pathlib import Path

from hakisa.game_file import GameFileError
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
RULES_FIELDS = ("readers", "reward", "done", "done_frames", "start_frames", "outcomes", "default_winner",
                "win_winner", "in_play", "reward_when", "navigation", "kill_key", "probe", "refs", "canvas")
TOP_FIELDS = ("name", "window", "obs", "hz", "input_map", "rules", "score", "sim", "options", "train", "verbs")
TRAIN_FIELDS = ("algo", "num_envs", "obs", "opts", "live")  # and one entry per learner (hakisa/algos/NAME.py)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(doc, path: Path) -> dict:
    """The file's fields checked (the first problem raises GameFileError naming file and field); returns the
    Game's fields: name, input_map, rules, obs_spec, hz, stride, window, score, sim, options."""
    v = Validator(path)
    if not isinstance(doc, dict):
        v.fail("", f"a mapping expected, got {type(doc).__name__}")
    v.require(doc, "", ("name", "input_map", "rules"))
    v.known(doc, "", TOP_FIELDS)
    v.typed(doc["name"], "name", str)
    window = doc.get("window") or {}
    v.window(window)
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
        v.known(sim, "sim", ("env", "module", "kwargs", "tick_hz", "expert", "reward"))
        if sim.get("reward", "rules") != "rules":
            v.fail("sim.reward", f"only \"rules\" (the file's rules.reward) is known, got {sim['reward']!r}")
    if "verbs" in doc:
        v.typed(doc["verbs"], "verbs", str)
    options = doc.get("options") or {}
    v.typed(options, "options", dict)
    for k, o in options.items():
        v.typed(o, f"options.{k}", dict)
        v.known(o, f"options.{k}", ("default", "choices", "query", "sim", "doc", "sweep"))
        if "choices" in o and o.get("default") not in o["choices"]:
            v.fail(f"options.{k}.default", f"{o.get('default')!r} is not one of {o['choices']}")
    v.train(doc.get("train") or {}, options)
    return dict(name=doc["name"], input_map=imap, rules=rules, obs_spec=spec, hz=float(hz),
                stride=int(obs.get("stride", 1)), window=window, score=score, sim=sim, options=options)


class Validator:
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

    def window(self, window) -> None:
        """`window`: where the game is (title or region) and, for a launched one, how to open it."""
        path = self.path
        self.typed(window, "window", dict)
        self.known(window, "window", ("title", "region", "launch", "size", "canvas", "hook"))
        if "region" in window:
            self.numbers(window["region"], "window.region", 4)
        if "size" in window:
            self.numbers(window["size"], "window.size", 2)
        if "canvas" in window and not (isinstance(window["canvas"], str) and "launch" in window):
            self.numbers(window["canvas"], "window.canvas", 4)
        if "launch" not in window:
            return
        launch = window["launch"]
        self.typed(launch, "window.launch", dict)
        kinds = [k for k in ("web", "url", "command") if k in launch]
        if len(kinds) != 1:
            self.fail("window.launch", "exactly one of web, url, command expected")
        self.known(launch, "window.launch", ("web", "url", "command", "files"))
        if "web" in launch and not (path.parent / launch["web"]).is_dir():
            self.fail("window.launch.web", f"no folder {launch['web']!r} beside the game file")
        for url_path, f in (launch.get("files") or {}).items():
            if url_path.endswith("/"):  # a folder's files; it may be absent until something is put there
                if (path.parent / f).exists() and not (path.parent / f).is_dir():
                    self.fail(f"window.launch.files.{url_path}", f"{f!r} beside the game file is not a folder")
            elif not (path.parent / f).is_file():
                self.fail(f"window.launch.files.{url_path}", f"no file {f!r} beside the game file")

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
        for key in ("done_frames", "start_frames"):
            if key in val and not (isinstance(val[key], int) and val[key] > 0):
                self.fail(f"rules.{key}", f"{val[key]!r} is not a whole number of frames (1 or more)")
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
            if head not in ("", "deltas") or not isinstance(box, dict) or not is_number(box.get(leaf)):
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
