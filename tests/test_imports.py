"""The layering of hakisa's modules, read from the source (no import runs): the verbs in hakisa/phases/ sit
on a library that never imports them, the learners in hakisa/algos/ know no verb and no particular game,
and no two modules import each other, directly or round a loop.

Every import counts, at module level or inside a function: a function-level import is still a dependency,
only a later one. hakisa/cli.py names the verbs by module-name strings, which this scan does not see."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hakisa"

# Upward imports that stay for now, each with why. (The duel's league, perception and expert import the
# learners; they were exceptions while the duel lived under hakisa/envs/. A game package, hakisa/games/NAME/, is
# an application on top of the library and may import it.)
ALLOWED_UPWARD: set[tuple[str, str]] = set()
# Import edges left out of the cycle check, each with why. hakisa/backends/__init__.py defines the backend
# interface AND picks an implementation at call time (get_backend), and each implementation subclasses that
# interface: a loop until the interface moves into a module of its own (e.g. hakisa/backends/base.py).
ALLOWED_CYCLE_EDGES = {
    ("hakisa.backends", "hakisa.backends.x11"),
    ("hakisa.backends", "hakisa.backends.portable"),
}
GAME_PACKAGES = ("hakisa.games",)  # hakisa/games/<game>/: one game's code, which only the game itself imports


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The hakisa modules `name` imports anywhere in its file. `from a import b` counts as a.b when a.b is a
    module (a submodule), else as a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y, from .. import z
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # import hakisa.x.Y where Y is not a module: the module is hakisa.x
                t = t.rpartition(".")[0]
            if (t == "hakisa" or t.startswith("hakisa.")) and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def game_of(module: str) -> str:
    """hakisa.games.duel.league.pool -> hakisa.games.duel: the game package a module belongs to."""
    return ".".join(module.split(".")[:3])


def upward(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in sorted(g.items()):
        for d in sorted(deps):
            allowed = any(under(m, a) and under(d, b) for a, b in ALLOWED_UPWARD)
            if under(d, "hakisa.phases") and not under(m, "hakisa.phases"):
                bad.append(f"{m} -> {d}: only a verb imports a verb (the library it needs goes outside phases/)")
            elif under(m, "hakisa.algos") and any(under(d, gp) for gp in GAME_PACKAGES) and not allowed:
                bad.append(f"{m} -> {d}: a learner knows no particular game")
            elif any(under(d, gp) for gp in GAME_PACKAGES) and not under(m, game_of(d)) and not allowed:
                bad.append(f"{m} -> {d}: generic code reaches a game through its game file (sim.module, verbs, "
                           "expert), never by importing it")
            elif under(m, "hakisa.envs") and under(d, "hakisa.algos") and not allowed:
                bad.append(f"{m} -> {d}: an environment does not import a learner")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_scan_sees_the_imports():
    """The scan finds what is known to be there (a scan that reads nothing would pass every check below)."""
    g = graph()
    assert "hakisa.model" in g["hakisa.phases.play"]
    assert "hakisa.algos.ppo" in g["hakisa.phases.train"]  # function-level `from hakisa.algos import ... ppo`
    assert "hakisa.games.duel.sim" in g["hakisa.games.duel.env"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_exceptions_are_still_needed():
    """An exception whose import has gone is deleted, so it cannot hide a new one."""
    g = graph()
    for a, b in ALLOWED_UPWARD | ALLOWED_CYCLE_EDGES:
        assert any(under(m, a) and under(d, b) for m, deps in g.items() for d in deps), f"no import {a} -> {b} left"


def test_generic_code_imports_no_game():
    """The check below sees a generic module importing a game (a scan that missed it would pass anything)."""
    fake = {"hakisa.envs.make": {"hakisa.games.duel.env"}, "hakisa.games.duel.cli": {"hakisa.games.duel.web"}}
    assert [b.split(":")[0] for b in upward(fake)] == ["hakisa.envs.make -> hakisa.games.duel.env"]


def test_no_upward_import():
    bad = upward(graph())
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle():
    g = {m: {d for d in deps if (m, d) not in ALLOWED_CYCLE_EDGES} for m, deps in graph().items()}
    found = cycles(g)
    report = []
    for comp in found:
        edges = [f"  {m} -> {d}" for m in comp for d in sorted(g[m]) if d in comp]
        report.append(f"cycle among {len(comp)} modules:\n" + "\n".join(edges))
    assert not found, "\n".join(report)
