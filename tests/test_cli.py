"""`hakisa VERB --help` exits 0 for every verb."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hakisa.cli import all_verbs, main


def test_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "hakisa.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for verb in all_verbs():
        assert verb in out.stdout
    assert "duel" in out.stdout  # a game's verbs (hakisa/games/duel.json `verbs`) join the table


@pytest.mark.parametrize("verb", list(all_verbs()))
def test_verb_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: hakisa " + verb in capsys.readouterr().out


@pytest.mark.parametrize("which", ["io"])
def test_bench_subcommand_help(which, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", which, "--help"])
    assert e.value.code == 0 and "--json-only" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["serve", "open", "perception", "boss-train", "boss-elo", "boss-learn", "bench",
                                   "bench-train", "demo"])
def test_game_verb_subcommand_help(which, capsys):
    """The duel's tools are reached through its game file's `verbs`, not a table entry naming the duel."""
    with pytest.raises(SystemExit) as e:
        main(["duel", which, "--help"])
    assert e.value.code == 0 and f"usage: hakisa duel {which}" in capsys.readouterr().out


def test_dataclass_flags_carry_their_field_docstrings(capsys):
    """`hakisa study --help` documents each flag with the docstring of its StudyArgs field (one source of truth),
    including comments continued on the next line, and the default."""
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--label-lag LABEL_LAG seconds: label each frame with the input this long BEFORE its grab" in out
    assert "best on held-out episodes wins (4x slower) (default: visible)" in out  # a continuation line, the default
    assert "--lr LR peak AdamW learning rate (after a warm-up, decayed by a cosine to a tenth) (default: 0.001)" in out


# every verb that opens or plays a game names it the same way (issue 36 item 4); `game` and `data` are tool groups
GAME_VERBS = ["record", "study", "explore", "play", "train", "evolve", "sweep", "plot", "arena", "diagnose", "doctor"]


@pytest.mark.parametrize("verb", GAME_VERBS)
def test_every_verb_that_opens_a_game_takes_game(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert "--game" in capsys.readouterr().out, f"hakisa {verb} has no --game"
