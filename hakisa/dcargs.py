"""Options are dataclasses, each field documented by the docstring under it (CleanRL/tyro style):

    @dataclass
    class Args:
        lr: float = 3e-4
        \"\"\"Adam learning rate\"\"\"

That one declaration is the flag (`add_dataclass_args`: `--lr`, its --help text and its default), the
learner's argument, and what a run saves in config.json (`dataclasses.asdict`). `--set KEY=VALUE`
(`parse_overrides`) reaches the fields of a learner's Args that have no flag of their own.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap


def field_docs(cls) -> dict[str, str]:
    """{field: the docstring under it}, on one line; a subclass (a learner's LiveArgs) inherits its bases' docs."""
    out: dict[str, str] = {}
    for c in reversed(cls.__mro__[:-1]):  # object has no fields
        out.update(_own_field_docs(c))
    return out


def _own_field_docs(cls) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # installed without sources: flags without help, still working
        return {}
    body = tree.body[0].body
    out = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr) \
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            out[node.target.id] = " ".join(nxt.value.value.split())
    return out


def add_dataclass_args(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of `cls` (bools get --x/--no-x), defaulting to the field's default; a field without a
    default is a required flag."""
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = docs.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        required = f.default is dataclasses.MISSING
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        else:
            kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            p.add_argument(flag, type=kind, required=required, default=None if required else f.default,
                           help=text if required else text + " (default: %(default)s)")


def from_args(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def parse_overrides(args_cls, pairs: list[str]) -> dict:
    """`--set KEY=VALUE` pairs -> {field: value} for `args_cls` (values are JSON, else bare strings)."""
    fields = {f.name for f in dataclasses.fields(args_cls)}
    out = {}
    for kv in pairs:
        k, _, v = kv.partition("=")
        if k not in fields:
            raise SystemExit(f"--set {k}: not a field of {args_cls.__module__}.Args ({sorted(fields)})")
        try:
            out[k] = None if v in ("None", "none", "null") else json.loads(v)
        except json.JSONDecodeError:
            out[k] = v  # a bare string
    return out


def describe(cls) -> str:
    """Every field with its default and docstring, for --help epilogs (`hakisa train --help` lists the learners')."""
    docs = field_docs(cls)
    def default(f):
        return f.default_factory() if f.default is dataclasses.MISSING and callable(f.default_factory) else f.default

    return "\n".join(f"  {f.name} = {default(f)!r}: {docs.get(f.name, '')}" for f in dataclasses.fields(cls))
