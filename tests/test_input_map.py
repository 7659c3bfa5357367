"""Input map round trips: triple -> command -> the events a sink sends -> triple; and file round trips."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from hakisa.input_map import Command, InputMap
from hakisa.sink import DryRunSink

REGION = (100, 50, 640, 360)


def mouse_rel_map() -> InputMap:
    return InputMap("mouse+rel", [
        Command("noop", "noop"), Command("fwd", "keys", ("w",)), Command("fwd+jump", "keys", ("w", "space")),
        Command("reload", "tap", ("r",)), Command("aim", "move"), Command("shoot", "click_left"),
        Command("use", "click_right"), Command("look", "rel_move")], x_bins=8, y_bins=6, rel_max=100.0, mu=10.0)


def events_to_triple(imap: InputMap, sink: DryRunSink, action) -> np.ndarray:
    """What the human-teacher recorder does: turn the events seen during one step back into a triple."""
    pointer_before, n = sink.pointer, len(sink.log)
    sink.send(action)
    events = [e for _, e in sink.log[n:]]
    down = set(sink.held)  # keys still down at the end of the step
    pressed = [e[1] for e in events if e[0] == "press"]
    released = {e[1] for e in events if e[0] == "release"}
    taps = [k for k in pressed if k in released and k not in down]
    moves = [e for e in events if e[0] == "move"]
    clicks = [e[1] for e in events if e[0] == "click"]
    left, top, w, h = REGION
    mouse = ((sink.pointer[0] - left) / w, (sink.pointer[1] - top) / h)
    rel = (sink.pointer[0] - pointer_before[0], sink.pointer[1] - pointer_before[1]) if moves else None
    # pointer events look the same for absolute and relative moves; a real recorder knows which kind
    # its game uses (its map has one or the other), here the command's kind tells it.
    is_abs = imap.commands[int(action[0])].kind in ("move", "click_left", "click_right")
    return imap.encode(keys_down=down, mouse=mouse, click=clicks[0] if clicks else None, taps=taps,
                       rel=None if is_abs else rel, mouse_moved=bool(moves) and is_abs)


@pytest.mark.parametrize("imap", [InputMap.load("duel"), mouse_rel_map()], ids=lambda m: m.name)
def test_round_trip_every_command(imap):
    for c, cmd in enumerate(imap.commands):
        bins = itertools.product(range(imap.x_bins), range(imap.y_bins)) if cmd.uses_xy else [(0, 0)]
        for x, y in bins:
            sink = DryRunSink(imap, REGION)  # pointer at rest in the centre, nothing held
            back = events_to_triple(imap, sink, [c, x, y])
            assert back.tolist() == [c, x, y], (cmd, x, y, sink.log)


def test_held_keys_across_steps_round_trip():
    imap = InputMap.load("duel")
    sink = DryRunSink(imap, REGION)
    seq = [1, 1, 6, 7, 2, 0, 5, 5, 4, 3, 0]
    assert [int(events_to_triple(imap, sink, [c, 0, 0])[0]) for c in seq] == seq


def test_masks_and_space():
    imap = mouse_rel_map()
    assert imap.uses_xy.tolist() == [False, False, False, False, True, True, True, True]
    assert imap.action_space.nvec.tolist() == [8, 8, 6]
    assert imap.xy_mask(np.array([0, 4, 7])).tolist() == [False, True, True]
    duel = InputMap.load("duel")
    assert duel.nvec.tolist() == [8, 1, 1] and not duel.uses_xy.any()
    assert duel.keys == ["j", "k", "left", "right", "space"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_round_trip(tmp_path, suffix):
    for imap in (InputMap.load("duel"), mouse_rel_map()):
        path = tmp_path / f"{imap.name.replace('+', '_')}{suffix}"
        imap.save(path)
        back = InputMap.load(path)
        assert back.same_as(imap) and back.to_dict() == imap.to_dict()
        assert back.uses_xy.tolist() == imap.uses_xy.tolist()
    if suffix == ".yaml":
        assert path.read_text().startswith("name:")  # really YAML, not JSON in disguise


def test_unknown_map_lists_shipped():
    with pytest.raises(FileNotFoundError, match="duel"):
        InputMap.load("no-such-map")
