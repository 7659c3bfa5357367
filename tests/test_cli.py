"""`hakisa VERB --help` exits 0 for every verb whose module exists; a missing one fails clearly."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from hakisa.cli import VERBS, main


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing too
        return False


PRESENT = [v for v, (m, _) in VERBS.items() if _exists(m)]
MISSING = [v for v, (m, _) in VERBS.items() if not _exists(m)]


def test_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "hakisa.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for verb in VERBS:
        assert verb in out.stdout


@pytest.mark.parametrize("verb", PRESENT)
def test_verb_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: hakisa " + verb in capsys.readouterr().out


@pytest.mark.parametrize("which", ["io", "duel", "train"])
def test_bench_subcommand_help(which, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", which, "--help"])
    assert e.value.code == 0 and "--json-only" in capsys.readouterr().out


@pytest.mark.skipif(not MISSING, reason="every verb's module exists")
def test_missing_verb_is_a_clear_message():
    with pytest.raises(SystemExit) as e:
        main([MISSING[0], "--help"])
    assert "not available in this build" in str(e.value.code)


def test_dataclass_flags_carry_their_field_comments(capsys):
    """`hakisa study --help` documents each flag with the comment on its StudyArgs field (one source of truth),
    including comments continued on the next line, and the default."""
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--label-lag LABEL_LAG seconds: label each frame with the input this long BEFORE its grab" in out
    assert "see Transitions.relabel) (default: 0.0)" in out  # the continuation line, then the default
    assert "--lr LR Adam learning rate (default: 0.0003)" in out
