"""Every public class in hakisa/ says what it is (issue 36: Gymnasium's env docstrings are the model).

A class is public when its name does not start with "_", wherever it is defined (a class made inside a function
counts too). Read from the source with `ast`: nothing is imported, so this runs in a fraction of a second."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hakisa"


def undocumented_classes() -> list[str]:
    """'path:line Name' for each public class under hakisa/ with no docstring."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not ast.get_docstring(node):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return out


def test_every_public_class_has_a_docstring():
    missing = undocumented_classes()
    assert not missing, (f"{len(missing)} public class(es) without a docstring (say what it is, what it holds "
                         "or returns, and the contract a caller relies on):\n  " + "\n  ".join(missing))
