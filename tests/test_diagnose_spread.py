"""`hakisa diagnose` flags a policy whose outputs do not change with the screen, measured per head over real
frames (here a recording, `--data`): the flag is study's own warning, and it stays quiet for heads that read
the screen. ~5 s, no window."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_study_report import SPEC, write_clicks

from hakisa.data import EpisodeStore
from hakisa.diagnose import diagnose, observations_from_store
from hakisa.envs.toy import click_map
from hakisa.model import HakisaNet, save_checkpoint
from hakisa.study_report import SPREAD_MIN


def _checkpoint(path, reads_screen: bool):
    torch.manual_seed(0)
    net = HakisaNet(SPEC, click_map(4), encoder="fine", hidden=32)
    with torch.no_grad():
        for head in (net.pi_cmd, net.pi_x, net.pi_y):
            if reads_screen:  # weights that make each head's logits follow the features strongly
                head.weight.normal_(0.0, 1.0)
            else:  # the heads' outputs are their biases: the same on every frame
                head.weight.zero_()
                head.bias.normal_(0.0, 1.0)
    save_checkpoint(path, net, {"algo": {"name": "bc"}})
    return path


def test_diagnose_flags_heads_whose_outputs_ignore_the_screen(tmp_path, capsys):
    write_clicks(tmp_path / "ds", visible=True, episodes=3, frames=30)
    still = diagnose(_checkpoint(tmp_path / "still", False), tmp_path / "d1", data=tmp_path / "ds", n_obs=64,
                     frames=1)
    assert still["observations"] == 64 and set(still["spread"]) == {"command", "x", "y"}
    for head, v in still["spread"].items():
        assert v["still"] and v["spread"] < 1e-4, (head, v)
        assert any(f"the {head} head's outputs (over 64 frames) hardly change with the screen" in f
                   for f in still["flags"]), still["flags"]
    reads = diagnose(_checkpoint(tmp_path / "reads", True), tmp_path / "d2", data=tmp_path / "ds", n_obs=64,
                     frames=1)
    assert all(v["spread"] > SPREAD_MIN and not v["still"] for v in reads["spread"].values()), reads["spread"]
    assert not any("hardly change" in f for f in reads["flags"])
    assert json.loads((tmp_path / "d1" / "diagnose.json").read_text())["flags"] == still["flags"]

    from hakisa.cli import main

    assert main(["diagnose", str(tmp_path / "still"), "--data", str(tmp_path / "ds"), "--obs", "32",
                 "--frames", "1", "--out", str(tmp_path / "d3")]) == 0
    assert "hardly change with the screen" in capsys.readouterr().out


def test_observations_from_a_store_are_its_frames_with_their_actions_and_returns(tmp_path):
    write_clicks(tmp_path / "ds", visible=True, episodes=2, frames=20)
    net = HakisaNet(SPEC, click_map(4), encoder="fine", hidden=32)
    d = observations_from_store(tmp_path / "ds", net, 1000)
    store = EpisodeStore(tmp_path / "ds")
    eps = [store.episode(i) for i in range(2)]
    assert d["obs"].shape == (40, 2, 32, 48)  # every frame: each episode ends on a done
    first = eps[0]
    assert (d["obs"][5, -1] == first["frames"][5, 0]).all() and (d["obs"][5, 0] == first["frames"][4, 0]).all()
    assert (d["actions"][:20] == first["actions"]).all()
    assert np.allclose(d["returns"][:20], 0.0)  # write_clicks pays nothing
    net2 = HakisaNet(SPEC.__class__(width=64, height=32, gray=True, stack=2), click_map(4), encoder="fine")
    from hakisa.data import DataError

    with pytest.raises(DataError, match="48x32x1 frames"):
        observations_from_store(tmp_path / "ds", net2, 10)
