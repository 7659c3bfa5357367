"""`hakisa arena` on a score game with no simulator: its agents ranked by mean score with the score's 95 %
interval, beside an untrained net and uniform random commands playing the same real window."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hakisa.arena import run_arena


@pytest.mark.x11
@pytest.mark.browser
def test_arena_ranks_a_window_score_game_by_score_beside_its_untrained_and_random_rows(xvfb, tmp_path):
    """~20 s. A score game with no simulator (tests/games/lights: +1 a hit, 20 presses a game): the untrained net
    and uniform random commands each play its real window; every row is ranked by its mean score, with the
    score's 95 % interval, and the table says so."""
    import io

    from rich.console import Console

    from hakisa.arena import print_leaderboard

    lights = str(Path(__file__).parent / "games" / "lights.json")
    # sampled: a game ends after 20 presses, which an untrained argmax may never make
    doc = run_arena([], episodes=3, baselines=("untrained", "random", "expert"), game=lights, out=tmp_path,
                    deterministic=False)
    rows = doc["boards"]["lights"]
    assert [r["agent"] for r in rows] in (["untrained", "random"], ["random", "untrained"])  # no expert: no sim
    scores = [r["mean_score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in rows] == [1, 2]
    for r in rows:
        c = r["cells"]["score"]
        assert c["episodes"] == 3 and c["ci_low"] <= c["mean_score"] <= c["ci_high"]
        assert 0 <= c["mean_score"] <= 20 and r["params"] == 0 and r["checkpoint"] is None
    assert rows[0]["cells"]["score"]["mode"] in ("sample", "random")
    out = io.StringIO()
    print_leaderboard(doc, Console(file=out, width=200))
    assert "score [95% interval]" in out.getvalue()
    with open(tmp_path / "leaderboard.csv") as f:
        assert {line["agent"] for line in csv.DictReader(f)} == {"untrained", "random"}
