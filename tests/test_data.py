"""The episode store: round trip, chunking, crash leftovers, corruption named clearly, memory-mapped
transitions, and the `hakisa data` CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hakisa.cli import main as hakisa
from hakisa.data import DataError, EpisodeStore, EpisodeWriter, Transitions
from hakisa.input_map import InputMap
from hakisa.preprocess import ObsSpec

SPEC = ObsSpec(width=16, height=9, stack=4)
FPS = 10


def _meta(**kw):
    return {"input_map": InputMap.load("duel"), "obs_spec": SPEC, "fps": FPS, "source": "teacher", "game": "test", **kw}


def _frame(ep: int, t: int) -> np.ndarray:
    # pixels encode (episode, step) so any misplaced frame shows up
    f = np.full(SPEC.frame_shape, (ep * 50 + t) % 256, np.uint8)
    f[0, 0, 0] = ep
    return f


def _write(root, lengths, terminated=True, **kw):
    data = []
    with EpisodeWriter(root, _meta(), **kw) as w:
        for L in lengths:
            ep = w.begin_episode()
            acts = [[(ep + t) % 8, 0, 0] for t in range(L)]
            for t in range(L):
                w.add(_frame(ep, t), acts[t], reward=float(t), done=terminated and t == L - 1, t=100.0 * ep + t / FPS)
                w.add_events(
                    [
                        (100.0 * ep + t / FPS, "down", "left", None, None),
                        {"t": 100.0 * ep + t / FPS, "type": "move", "x": t, "y": 2},
                    ]
                )
            w.end_episode()
            data.append(acts)
    return data


def test_round_trip_and_chunking(tmp_path):
    root = tmp_path / "ds"
    acts = _write(root, [25, 7, 10])
    s = EpisodeStore(root)
    assert [e.frames for e in s.episodes] == [25, 7, 10]
    assert all(e.complete and e.terminated for e in s.episodes)
    # ~1 s per chunk: FPS frames, the remainder in a last short chunk
    assert [[c["n"] for c in e.chunks] for e in s.episodes] == [[10, 10, 5], [7], [10]]
    assert len(list((root / "chunks").glob("*.npz"))) == 5
    for i, L in enumerate([25, 7, 10]):
        e = s.episode(i)
        assert e["frames"].shape == (L, *SPEC.frame_shape) and e["frames"].dtype == np.uint8
        assert np.array_equal(e["frames"], np.stack([_frame(i, t) for t in range(L)]))
        assert np.array_equal(e["actions"], np.array(acts[i]))
        assert np.array_equal(e["rewards"], np.arange(L, dtype=np.float32))
        assert e["dones"].sum() == 1 and e["dones"][-1]
        assert np.allclose(e["timestamps"], 100.0 * i + np.arange(L) / FPS)
        assert len(e["events"]) == 2 * L and set(e["events"]["type"]) == {"down", "move"}
    assert s.meta["source"] == "teacher" and s.meta["version"] == 1
    assert s.input_map.same_as(InputMap.load("duel")) and s.obs_spec == SPEC
    assert s.action_histogram().sum() == 42


def test_behaviour_logp_and_value_round_trip_only_where_given(tmp_path):
    """Explored episodes carry the acting policy's log-prob and V per step; a teacher's carry neither,
    and a store mixing both offers them to learners only when every chunk has them."""
    root = tmp_path / "ds"
    with EpisodeWriter(root, _meta(source="explore")) as w:
        w.begin_episode()
        for t in range(12):
            w.add(_frame(0, t), [1, 0, 0], 0.5, t == 11, t=float(t) / FPS, logp=-0.1 * t, value=2.0 + t)
        w.end_episode()
    s = EpisodeStore(root)
    e = s.episode(0)
    assert np.allclose(e["logp"], -0.1 * np.arange(12)) and np.allclose(e["value"], 2.0 + np.arange(12))
    assert s.check().ok
    tr = Transitions(s, stack=2)
    assert tr.logp is not None and np.allclose(tr.values, 2.0 + np.arange(12))
    with EpisodeWriter(root, _meta(source="explore")) as w:  # append a teacher-like episode: no log-probs
        w.begin_episode()
        for t in range(3):
            w.add(_frame(1, t), [0, 0, 0], 0.0, t == 2, t=10.0 + t / FPS)
        w.end_episode()
    s = EpisodeStore(root)
    assert "logp" not in s.episode(1) and s.check().ok
    tr = Transitions(s, stack=2)
    assert tr.logp is None and tr.values is None


def test_writer_rejects_stacks_and_bad_meta(tmp_path):
    with EpisodeWriter(tmp_path / "a", _meta()) as w:
        w.begin_episode()
        with pytest.raises(ValueError, match="ONE preprocessed frame"):
            w.add(np.zeros(SPEC.shape, np.uint8), [0, 0, 0])  # a stack, not a frame
    with pytest.raises(ValueError, match="source"):
        EpisodeWriter(tmp_path / "b", _meta(source="somebody"))
    # appending to an existing store must keep the same obs spec
    with pytest.raises(ValueError, match="obs_spec"):
        EpisodeWriter(tmp_path / "a", {**_meta(), "obs_spec": ObsSpec(width=32, height=18)})


def test_append_continues_episode_ids(tmp_path):
    root = tmp_path / "ds"
    _write(root, [5, 5])
    _write(root, [3])
    s = EpisodeStore(root)
    assert [e.id for e in s.episodes] == [0, 1, 2] and s.episodes[2].frames == 3


def _crash(root, n_frames):
    """A writer that dies without end_episode/close, like kill -9 (the OS closes the file)."""
    w = EpisodeWriter(root, _meta())
    w.begin_episode()
    for t in range(n_frames):
        w.add(_frame(w.ep, t), [1, 0, 0], t=1000.0 + t / FPS)
    w._manifest.close()  # the frames still buffered in RAM are simply never written
    return w


def test_cut_episode_and_torn_manifest(tmp_path, capsys):
    root = tmp_path / "ds"
    _write(root, [10])
    _crash(root, 27)  # 2 durable chunks, 7 frames lost in RAM
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b'{"kind":"chunk","ep":1,"fi')  # a line torn by the crash
    s = EpisodeStore(root)
    cut = s.episodes[1]
    assert not cut.complete and cut.frames == 20
    rep = s.check()
    assert rep.ok and rep.cut == [1] and rep.frames_ok == 30
    assert any("episode 1 is CUT" in w for w in rep.warnings) and any("torn" in w for w in rep.warnings)
    assert hakisa(["data", "check", str(root)]) == 0
    assert "episode 1 is CUT" in capsys.readouterr().out
    # a cut episode's last step has no next frame and no done: learners never see it
    tr = Transitions(s, stack=2, cache_dir=tmp_path / "cache")
    assert len(tr) == 10 + 19
    # recording more into the store after a crash repairs the torn tail and goes on
    _write(root, [4])
    s = EpisodeStore(root)
    assert [e.id for e in s.episodes] == [0, 1, 2] and s.episodes[2].complete and not s.problems


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupt_chunk_is_named(tmp_path, capsys, damage):
    root = tmp_path / "ds"
    _write(root, [25])
    victim = root / "chunks" / "e000000-c00001.npz"
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    else:
        victim.unlink()
    s = EpisodeStore(root)
    with pytest.raises(DataError, match="e000000-c00001.npz"):
        s.episode(0)
    rep = s.check()
    assert not rep.ok and rep.chunks_ok == 2 and "e000000-c00001.npz" in rep.errors[0]
    assert hakisa(["data", "check", str(root)]) == 1
    assert "e000000-c00001.npz" in capsys.readouterr().out
    with pytest.raises(DataError, match="e000000-c00001.npz"):
        Transitions(s, cache_dir=tmp_path / "cache")


def test_transitions_stack_memmap_and_split(tmp_path):
    root = tmp_path / "ds"
    _write(root, [12, 6, 9, 5])
    with EpisodeWriter(root, _meta()) as w:  # a truncated (not terminated) episode: last step dropped
        w.begin_episode()
        for t in range(8):
            w.add(_frame(4, t), [2, 0, 0], t=400.0 + t / FPS)
    s = EpisodeStore(root)
    tr = Transitions(s, stack=4, cache_dir=tmp_path / "cache")
    assert isinstance(tr.frames, np.memmap) and len(list((tmp_path / "cache").glob("frames-*.u8"))) == 1
    assert len(tr) == 12 + 6 + 9 + 5 + 7
    b = tr.get(np.arange(len(tr)))
    for k in range(len(tr)):
        ep, t = int(b["episode"][k]), int(b["index"][k] - tr.ep_start[b["index"][k]])
        want = np.concatenate([_frame(ep, max(t - j, 0)) for j in (3, 2, 1, 0)])  # oldest first, start repeated
        assert np.array_equal(b["obs"][k], want)
        if not b["dones"][k]:
            want_next = np.concatenate([_frame(ep, max(t + 1 - j, 0)) for j in (3, 2, 1, 0)])
            assert np.array_equal(b["next_obs"][k], want_next)
        assert b["actions"][k, 0] == (ep + t) % 8 or ep == 4
    assert b["dones"].sum() == 4  # four terminated episodes, none from the truncated one
    # split by episode: disjoint, covering
    train, val = tr.split(0.4, seed=1)
    assert set(train.episode_ids).isdisjoint(val.episode_ids) and len(train) + len(val) == len(tr)
    assert len(val.episode_ids) == 2
    mb = train.sample(16, np.random.default_rng(0))
    assert mb["obs"].shape == (16, 4, 9, 16) and set(mb["episode"]) <= set(train.episode_ids)
    assert sum(len(x["actions"]) for x in val.batches(4)) == len(val)
    # a second open reuses the cache; growing the store builds a new one and drops the old
    assert np.array_equal(Transitions(s, stack=4, cache_dir=tmp_path / "cache").frames, tr.frames)


def test_transitions_stride_stacks_every_nth_frame_and_keeps_every_label(tmp_path):
    """A 60 fps recording studied as a 15 Hz stack: frames t, t-3, t-6, t-9 (stride 3 here), clamped to
    the episode's start, and still one sample (with its own label) per recorded frame."""
    root = tmp_path / "ds"
    _write(root, [12, 6])
    s = EpisodeStore(root)
    tr = Transitions(s, stack=4, cache_dir=tmp_path / "cache", stride=3)
    assert len(tr) == len(Transitions(s, stack=4, cache_dir=tmp_path / "cache")) == 12 + 6
    b = tr.get(np.arange(len(tr)))
    for k in range(len(tr)):
        ep, t = int(b["episode"][k]), int(b["index"][k] - tr.ep_start[b["index"][k]])
        want = np.concatenate([_frame(ep, max(t - 3 * j, 0)) for j in (3, 2, 1, 0)])
        assert np.array_equal(b["obs"][k], want), (ep, t)
        assert b["actions"][k, 0] == (ep + t) % 8
    with pytest.raises(ValueError, match="stride"):
        Transitions(s, stack=4, cache_dir=tmp_path / "cache", stride=0)


def test_info_cli(tmp_path, capsys):
    root = tmp_path / "ds"
    _write(root, [25, 7])
    assert hakisa(["data", "info", "--json", str(root)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["episodes"] == 2 and d["frames"] == 32 and d["cut"] == [] and d["source"] == "teacher"
    assert sum(d["actions"].values()) == 32 and d["actions"]["left"] == 4  # (ep + t) % 8 == 1
    assert abs(d["duration_s"] - (2.4 + 0.6)) < 1e-6
    assert hakisa(["data", "info", str(root)]) == 0
    assert "right+roll" in capsys.readouterr().out
    assert hakisa(["data", "info", str(tmp_path / "nothing")]) == 1


def test_export_minari(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "m"))  # restored after the test
    root = tmp_path / "ds"
    _write(root, [12, 6])
    assert (
        hakisa(
            ["data", "export-minari", str(root), "--id", "hakisa/test-v0", "--out", str(tmp_path / "m"), "--stack", "2"]
        )
        == 0
    )
    ds = minari.load_dataset("hakisa/test-v0")
    assert ds.total_episodes == 2 and ds.total_steps == 18
    e = ds[0]
    s = EpisodeStore(root).episode(0)
    assert e.observations.shape == (13, 2, 9, 16)  # T+1 observations of 2-frame stacks
    assert np.array_equal(e.observations[5, 1], s["frames"][5, 0]) and np.array_equal(
        e.observations[5, 0], s["frames"][4, 0]
    )
    assert np.array_equal(e.actions, s["actions"]) and e.terminations[-1] and not e.truncations.any()


def _recorder_actions(events, times, imap):
    """What `hakisa record`'s InputState makes of `events` when it snapshots at `times`."""
    from hakisa.input_map import InputState

    inp, out, j = InputState(), [], 0
    for q in times:
        while j < len(events) and events[j][0] <= q:
            inp.key(events[j][1] == "down", events[j][2], t=events[j][0])
            j += 1
        out.append(inp.snapshot(imap, (0, 0, 640, 360))[0])
    return np.array(out)


def test_relabel_from_the_key_log_matches_the_recorder_and_shifts_by_the_lag(tmp_path):
    """Re-deriving actions from the stored raw key log gives exactly what the recorder labelled (lag 0),
    and with a lag the labels the recorder WOULD have given frames grabbed that much earlier: presses
    held across frames, taps inside one frame, chords, auto-repeat (a "down" while held is no new
    press), ticks the recorder missed (a window of two periods) and a gap between two episodes."""
    imap = InputMap.load("duel")
    rng = np.random.default_rng(3)
    ticks = np.arange(320) / FPS  # the recorder's clock; it snapshots at every tick it does not miss
    snap = np.ones(len(ticks), bool)
    snap[rng.choice(np.arange(5, 310), 12, replace=False)] = False  # missed ticks: no snapshot at all
    stored = snap & ((ticks < 15.0) | (ticks >= 16.0))  # two episodes; between them it snapshots, stores nothing
    events, t = [], 0.01
    held: set = set()
    while t < ticks[-1]:
        key = str(rng.choice(["left", "right", "space", "j", "k"]))
        if key in held and rng.random() < 0.3:
            events.append((t, "down", key))  # auto-repeat
        else:
            events.append((t, "up" if key in held else "down", key))
            (held.discard if key in held else held.add)(key)
        t += float(rng.exponential(0.06))  # several events per frame at times, none for a while at others
    snaps = ticks[snap]
    actions = _recorder_actions(events, snaps, imap)[stored[snap]]
    assert len(np.unique(actions[:, 0])) >= 6  # the log exercises most of the map
    with EpisodeWriter(tmp_path / "ds", _meta()) as w:
        for k, ep_ticks in enumerate(
            (np.flatnonzero(stored & (ticks < 15.0)), np.flatnonzero(stored & (ticks >= 16.0)))
        ):
            w.begin_episode()
            for i in ep_ticks:
                w.add(
                    _frame(0, i % 200),
                    actions[np.searchsorted(ticks[stored], ticks[i])],
                    t=float(ticks[i]),
                    done=i == ep_ticks[-1],
                )
            w.add_events([e for e in events if (e[0] <= 15.5) == (k == 0)])  # each event stored once
            w.end_episode()
    data = Transitions(EpisodeStore(tmp_path / "ds"))
    train, _ = data.split(0.5, seed=0)
    assert data.relabel(0.0, 1 / FPS) == 0.0
    assert np.array_equal(data.actions, actions)
    for lag in (0.5 / FPS, 2 / FPS):
        changed = data.relabel(lag, 1 / FPS)
        want = _recorder_actions(events, snaps - lag, imap)[stored[snap]]
        assert np.array_equal(data.actions, want), (data.actions[:, 0] != want[:, 0]).nonzero()
        assert changed > 0.2
    assert np.array_equal(train.actions, data.actions)  # a split's views see the new labels


def test_relabel_mouse_clicks_and_moves_as_the_recorder_and_ahead_of_the_grab(tmp_path):
    """A mouse game's labels (clicks and moves at binned positions inside the recorded region) re-derive
    exactly as the recorder made them at lag 0; a negative lag labels each frame with what the player did
    in the period AFTER its grab, which a lag-free recorder would have given the next frame."""
    from hakisa.input_map import InputState

    imap = InputMap.from_dict(
        {
            "name": "m",
            "x_bins": 4,
            "y_bins": 4,
            "commands": [
                {"name": "noop", "kind": "noop"},
                {"name": "move", "kind": "move"},
                {"name": "click", "kind": "click_left"},
            ],
        }
    )
    region = (100, 50, 400, 300)
    rng = np.random.default_rng(7)
    ticks = 1.0 + np.arange(120) / FPS
    events, t = [], 1.0
    while t < ticks[-1]:
        x, y = 100 + rng.uniform(0, 400), 50 + rng.uniform(0, 300)
        events.append((t, "move", "", x, y))
        if rng.random() < 0.4:
            events += [(t + 0.002, "press", "left", x, y), (t + 0.01, "release", "left", x, y)]
        t += 0.02 + float(rng.exponential(0.15))  # time-ordered, as a real log

    def recorder(times):  # snapshots at every tick, from the one before the episode's first frame
        inp, out, j = InputState(), [], 0
        for q in np.r_[times[0] - 1 / FPS, times]:
            while j < len(events) and events[j][0] <= q:
                e = events[j]
                inp.move(e[3], e[4], t=e[0]) if e[1] == "move" else inp.button(
                    e[3], e[4], e[2], e[1] == "press", t=e[0]
                )
                j += 1
            out.append(inp.snapshot(imap, region)[0])
        return np.array(out[1:])

    actions = recorder(ticks)
    assert {0, 1, 2} <= set(actions[:, 0].tolist()) and len(np.unique(actions[:, 1])) == 4  # clicks, moves, all x bins
    with EpisodeWriter(tmp_path / "ds", _meta(input_map=imap, region=list(region))) as w:
        w.begin_episode()
        for i, tk in enumerate(ticks):
            w.add(_frame(0, i), actions[i], t=float(tk), done=i == len(ticks) - 1)
        w.add_events(events)
        w.end_episode()
    data = Transitions(EpisodeStore(tmp_path / "ds"))
    assert data.relabel(0.0, 1 / FPS) == 0.0
    assert np.array_equal(data.actions, actions)
    assert data.relabel(-1 / FPS, 1 / FPS) > 0.3
    assert np.array_equal(data.actions, recorder(ticks + 1 / FPS))


def test_relabel_refuses_stores_without_a_key_log(tmp_path):
    """Explored episodes (the agent's own actions) and stores with no key events cannot be relabelled:
    a clear error instead of every label silently becoming noop."""
    with EpisodeWriter(tmp_path / "explored", _meta(source="explore")) as w:
        w.begin_episode()
        for i in range(12):
            w.add(_frame(0, i), [1, 0, 0], t=i / FPS, done=i == 11)
            w.add_events([(i / FPS, "down", "left")])
        w.end_episode()
    with pytest.raises(DataError, match="only a recorded teacher"):
        Transitions(EpisodeStore(tmp_path / "explored")).relabel(0.05, 1 / FPS)
    with EpisodeWriter(tmp_path / "silent", _meta()) as w:
        w.begin_episode()
        for i in range(12):
            w.add(_frame(0, i), [0, 0, 0], t=i / FPS, done=i == 11)
        w.end_episode()
    with pytest.raises(DataError, match="no input events"):
        Transitions(EpisodeStore(tmp_path / "silent")).relabel(0.05, 1 / FPS)
