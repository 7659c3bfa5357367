"""A sweep's search space: `--param NAME=RANGE` items and `--space` files -> Optuna distributions over
learner Args fields and a game file's reward coefficients (the grammar is in hakisa/sweep/__init__.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Param:
    """One searched parameter, as `parse_param` builds it from a `--param NAME=RANGE` item or a `--space` file:
    a learner Args field or a reward coefficient, and the Optuna distribution its trials draw from."""

    name: str  # the study's parameter name: "ppo.lr", "reward.dealt"
    kind: str  # "learner" (an Args field) or "reward" (a rules.reward coefficient)
    key: str  # the Args field, or the coefficient's name as Game.reward_path reads it
    dist: object  # an optuna distribution


def _number(text: str, where: str):
    try:
        return json.loads(text)
    except ValueError:
        raise SystemExit(f"hakisa sweep --param {where}: {text!r} is not a number") from None


def parse_param(text: str, algo: str, game=None) -> Param:
    """'ppo.lr=1e-4:3e-3:log' -> Param. Errors name the parameter and say what would be accepted."""
    import dataclasses as dc

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    name, eq, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not eq or not name or not spec:
        raise SystemExit(f"hakisa sweep --param {text!r}: NAME=LOW:HIGH[:log] or NAME=a,b,c expected")
    head, dot, rest = name.partition(".")
    if head == "reward" and dot:
        if game is None:
            raise SystemExit(f"hakisa sweep --param {name}: reward coefficients need a game file (--game)")
        game.reward_path(rest)  # raises GameFileError listing the known coefficients
        kind, key, typ = "reward", rest, "float"
    else:
        learners = ("ppo", "dqn")
        if head in learners and dot:
            if head != algo:
                raise SystemExit(f"hakisa sweep --param {name}: this sweep trains {algo} (--algo), not {head}")
            key = rest
        elif dot:
            raise SystemExit(f"hakisa sweep --param {name}: NAME is {algo}.<Args field>, a bare field, or "
                             "reward.<coefficient>")
        else:
            key = name
        mod = algo_module(algo)
        fields = {f.name: f for f in dc.fields(mod.Args)}
        if key not in fields:
            raise SystemExit(f"hakisa sweep --param {name}: {key!r} is not a field of {algo} Args "
                             f"(fields: {', '.join(fields)})")
        kind, name = "learner", f"{algo}.{key}"
        typ = str(fields[key].type)
    parts = spec.split(":")
    if "," in spec or len(parts) == 1:  # categorical: values as JSON where they parse, else strings
        choices = []
        for c in spec.split(","):
            try:
                choices.append(json.loads(c.strip()))
            except ValueError:
                choices.append(c.strip())
        if kind == "reward" and not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
            raise SystemExit(f"hakisa sweep --param {name}: reward coefficients are numbers, got {spec!r}")
        return Param(name, kind, key, CategoricalDistribution(choices))
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SystemExit(f"hakisa sweep --param {name}={spec}: LOW:HIGH or LOW:HIGH:log expected")
    low, high, log = _number(parts[0], name), _number(parts[1], name), len(parts) == 3
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise SystemExit(f"hakisa sweep --param {name}={spec}: LOW < HIGH, both numbers, expected")
    if log and low <= 0:
        raise SystemExit(f"hakisa sweep --param {name}={spec}: a log range needs LOW > 0")
    if typ.startswith("bool") or typ.startswith("str"):
        raise SystemExit(f"hakisa sweep --param {name}: a {typ} field takes a list of values (a,b), not a range")
    if typ.startswith("int") and isinstance(low, int) and isinstance(high, int):
        return Param(name, kind, key, IntDistribution(low, high, log=log))
    if typ.startswith("int"):
        raise SystemExit(f"hakisa sweep --param {name}={spec}: {key} is an int field: whole-number ends expected")
    return Param(name, kind, key, FloatDistribution(float(low), float(high), log=log))


def parse_space(params: list[str] | None, space_file: str | None, algo: str, game=None) -> list[Param]:
    """--param NAME=RANGE items, then a --space file's {NAME: RANGE or [values]} (a later name replaces)."""
    items = list(params or [])
    if space_file:
        text = Path(space_file).read_text()
        doc = __import__("yaml").safe_load(text) if space_file.endswith((".yaml", ".yml")) else json.loads(text)
        if not isinstance(doc, dict):
            raise SystemExit(f"hakisa sweep --space {space_file}: a mapping NAME: RANGE expected")
        for k, v in doc.items():
            items.append(f"{k}={','.join(map(json.dumps, v)) if isinstance(v, list) else v}")
    space = {}
    for it in items:
        p = parse_param(it, algo, game)
        space[p.name] = p
    if not space:
        raise SystemExit("hakisa sweep: nothing to search: give --param NAME=RANGE (or --space FILE)")
    return list(space.values())


def algo_module(name: str):
    if name == "ppo":
        from hakisa.algos import ppo

        return ppo
    from hakisa.algos import dqn

    return dqn
