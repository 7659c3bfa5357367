"""`hakisa <verb> …`: thin wrappers over the functions notebooks call directly.

Each verb lives in its own module, imported only when that verb runs, so `hakisa --help` starts in
well under a second (torch alone takes one to import). A module provides `add_args(parser)` and
`main(args) -> int | None`. The table below is the whole dispatch, plus one verb per shipped game whose file
names a module of its own tools (`verbs`: `hakisa duel ...` is hakisa/games/duel/cli.py), so this table names
no game.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# verb: (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "bench": ("hakisa.bench", "benchmarks that print JSON (io, train)"),
    "game": ("hakisa.game_tools", "make and check a game file: init, check, digits"),
    "record": ("hakisa.phases.teacher", "human teacher: record a live window into an episode store"),
    "study": ("hakisa.phases.study", "behaviour cloning from recorded episodes"),
    "data": ("hakisa.data.cli", "inspect, validate and export episode stores"),
    "train": ("hakisa.phases.train", "fast online training (PPO / DQN) on vector envs"),
    "explore": ("hakisa.phases.explore", "let an agent play and write episodes"),
    "consolidate": ("hakisa.phases.consolidate", "offline learning from stored episodes"),
    "play": ("hakisa.phases.play", "evaluate a checkpoint (sim, retro or a live window)"),
    "evolve": ("hakisa.phases.evolve", "evolutionary search (GA or OpenAI-ES)"),
    "plot": ("hakisa.plot", "learning curves and diagnostics as PNGs"),
    "diagnose": ("hakisa.diagnose", "dead units, gradients, entropy, saliency for a checkpoint"),
    "arena": ("hakisa.arena", "leaderboard of checkpoints over their game's settings"),
    "sweep": ("hakisa.sweep", "hyperparameter and reward-coefficient search with Optuna (resumable)"),
    "doctor": ("hakisa.doctor", "check the display, capture, input and torch before blaming the agent"),
}


def game_verbs() -> dict[str, tuple[str, str]]:
    """{game name: (module, help)} for each shipped game file with `verbs` (read as JSON: nothing is imported)."""
    import json

    from hakisa.game_file import GAMES_DIR

    out = {}
    for f in sorted(GAMES_DIR.glob("*.json")):
        doc = json.loads(f.read_text())
        if isinstance(doc.get("verbs"), str):
            out[doc["name"]] = (doc["verbs"], f"the {doc['name']} game's own tools (hakisa {doc['name']} --help)")
    return out


def all_verbs() -> dict[str, tuple[str, str]]:
    return {**VERBS, **game_verbs()}


def build_parser(verb: str | None = None, defaults: dict | None = None) -> argparse.ArgumentParser:
    """defaults: values for the verb's flags (a --config file's), below the ones given on the command line."""
    parser = argparse.ArgumentParser(prog="hakisa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module, help_) in all_verbs().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == verb:  # only the chosen verb's module is imported
            mod = importlib.import_module(module)
            mod.add_args(p)
            p.set_defaults(_main=mod.main)
            if defaults:
                dests = {a.dest for a in p._actions} - {"help", "config"}
                unknown = sorted(k for k in defaults if k not in dests and not k.startswith("_"))
                if unknown:
                    keys = ", ".join(sorted(dests))
                    raise SystemExit(f"hakisa {name} --config: unknown key {unknown[0]!r} (keys: {keys})")
                p.set_defaults(**{k: v for k, v in defaults.items() if not k.startswith("_")})
    return parser


def load_config(path: str) -> dict:
    """A verb's --config FILE: JSON (or YAML) whose keys are the verb's flag names (dest spelling: num_envs)."""
    import json

    try:
        text = open(path).read()
        cfg = json.loads(text) if not path.endswith((".yaml", ".yml")) else __import__("yaml").safe_load(text)
    except (OSError, ValueError) as e:
        raise SystemExit(f"hakisa --config {path}: {e}") from None
    if not isinstance(cfg, dict):
        raise SystemExit(f"hakisa --config {path}: a mapping of flag names to values expected")
    return cfg


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors Hakisa raises on purpose about what a user gave it: shown as one line, not a traceback."""
    from hakisa.capture import DisplayError, RegionError, WindowNotFound
    from hakisa.data.store import DataError
    from hakisa.game import GameFileError
    from hakisa.model import CheckpointError

    return GameFileError, WindowNotFound, DisplayError, RegionError, DataError, CheckpointError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("HAKISA_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(verb if verb in all_verbs() else None)
    try:
        args = parser.parse_args(argv)
        if getattr(args, "config", None):  # a second pass: the file's values are defaults, given flags win
            args = build_parser(verb, load_config(args.config)).parse_args(argv)
        if args.verb is None:
            parser.print_help()
            return 0
        if getattr(args, "backend", None):  # the live verbs' --backend: this process's (and its children's) default
            from hakisa.backends import use_backend

            use_backend(args.backend)
        return int(args._main(args) or 0)
    except user_errors() as e:
        if debug:
            raise
        msg = str(e).strip()
    except SystemExit as e:  # a verb refusing what it was given: `raise SystemExit("hakisa play: give --game ...")`
        if not isinstance(e.code, str) or debug:
            raise
        msg = e.code.strip().removeprefix("hakisa ")
    msg = " ".join(line.strip() for line in msg.splitlines())  # one line, whatever the message
    print(f"hakisa: {msg}", file=sys.stderr)  # --debug or HAKISA_DEBUG=1 shows the traceback
    return 2


if __name__ == "__main__":
    sys.exit(main())
