"""Command-line flags from an args dataclass, with each field's trailing comment as its --help text.

The dataclass stays the one place a setting is documented (CleanRL style: `lr: float = 3e-4  # why`),
and `hakisa study --help` shows the same words instead of a bare list of flags."""
from __future__ import annotations

import argparse
import inspect
import re


def field_comments(cls) -> dict[str, str]:
    """{field: its comment}; a comment may go on over the following comment-only lines."""
    out: dict[str, str] = {}
    last = None
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # installed without sources: flags without help, still working
        return out
    for line in source.splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*#\s?(.*)$", line)
        if m:
            last = m.group(1)
            out[last] = m.group(2).strip()
        elif last and re.match(r"\s+#", line):
            out[last] += " " + line.strip().lstrip("#").strip()
        else:
            last = None
    return out


def add_dataclass_args(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of `cls` (bools get --x/--no-x), defaulting to the field's default."""
    helps = field_comments(cls)
    for f in cls.__dataclass_fields__.values():
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = helps.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        else:
            p.add_argument(flag, type={"int": int, "float": float}.get(f.type, str), default=f.default,
                           help=text + " (default: %(default)s)")


def from_args(cls, args: argparse.Namespace):
    return cls(**{k: getattr(args, k) for k in cls.__dataclass_fields__})
