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


@pytest.mark.x11
def test_round_trip_through_real_x_events(xvfb, xwin):
    """triple -> XTestSink -> the X events a real window receives -> encode -> the same triple."""
    import time

    from conftest import set_focus

    from hakisa.sink import XTestSink

    w = xwin(title="round trip", x=100, y=80, width=640, height=360)
    set_focus(w.wid)
    left, top, width, height = w.region

    def settle(n_before: int) -> list[list[str]]:
        """The window's events since line n_before, once its log has stopped growing."""
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 0.08:
            n = len(w.events())
            if n != last:
                last, stable_since = n, time.monotonic()
            time.sleep(0.01)
        return w.events()[n_before:]

    for imap in (InputMap.load("duel"), mouse_rel_map()):
        down: set[str] = set()
        with XTestSink(imap, w.region, require_focus=w.wid, kill_key=None, guardian=False) as sink:
            steps = []
            for c, cmd in enumerate(imap.commands):
                if cmd.kind == "rel_move":  # from the centre, so the whole range stays inside the window
                    steps += [([4, 4, 3], False), ([c, 0, 5], True), ([4, 4, 3], False), ([c, 7, 1], True)]
                elif cmd.uses_xy:
                    steps += [([c, 0, 0], True), ([c, 7, 5], True)]
                else:
                    steps += [([c, 0, 0], True), ([c, 0, 0], True)]  # twice: a held chord sends nothing new
            pointer = None
            for action, check in steps:
                n = len(w.events())
                sink.send(action)
                sink.sync()
                events = settle(n)
                pressed = [e[2].lower() for e in events if e[0] == "KeyPress"]
                released = {e[2].lower() for e in events if e[0] == "KeyRelease"}
                down = (down | set(pressed)) - released  # a key pressed and released in one step was a tap
                motion = [(int(e[1]), int(e[2])) for e in events if e[0] == "Motion"]
                clicks = [{"1": "left", "3": "right"}[e[1]] for e in events if e[0] == "ButtonPress"]
                now = motion[-1] if motion else pointer
                kind = imap.commands[action[0]].kind
                if check:
                    back = imap.encode(
                        keys_down=down, mouse=None if now is None else (now[0] / width, now[1] / height),
                        click=clicks[0] if clicks else None,
                        taps=[k for k in pressed if k in released and k not in down],
                        rel=(now[0] - pointer[0], now[1] - pointer[1]) if kind == "rel_move" and motion else None,
                        mouse_moved=bool(motion) and kind != "rel_move")
                    assert back.tolist() == action, (imap.name, action, events)
                pointer = now
