"""What every layer may know about game files without loading one: where the shipped ones live, how a
message names a file, and the error that names the file and the field.

hakisa/game.py (the `Game` that builds simulators and screen envs) and the envs that read a game's rules
(hakisa/envs/rules_watch.py) both stand on this module, so the envs need not import the `Game` that builds them.
"""
from __future__ import annotations

from pathlib import Path

GAMES_DIR = Path(__file__).parent / "games"


class GameFileError(ValueError):
    """A game file that does not say what it must; the message names the file and the field."""


def show_path(path: Path) -> str:
    """A file as a message names it: relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def shipped_with_sim(env_id: str) -> Path | None:
    """The shipped game file whose simulator is `env_id` (its `sim.env`), if any."""
    import json

    for f in sorted(GAMES_DIR.glob("*.json")):
        if (json.loads(f.read_text()).get("sim") or {}).get("env") == env_id:
            return f
    return None


def sim_module(env_id: str) -> str | None:
    """The package whose import registers `env_id` with Gymnasium, as the shipped game file of that simulator
    names it (`sim.module`): how `make_vec("Hakisa/Duel-v0")` finds the duel without generic code naming it."""
    import json

    f = shipped_with_sim(env_id)
    return (json.loads(f.read_text())["sim"].get("module")) if f else None
