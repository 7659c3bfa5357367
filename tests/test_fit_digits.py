"""DigitReader's unknown-glyph rejection and the `hakisa game digits` engine, on digits drawn with cv2."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

from hakisa.rewards import DigitReader, fit_digits

SEEN = [0, 1, 2, 5, 33, 12, 50, 21, 305]  # digits 0 1 2 3 5 only


def _number(n, rng, h: int = 28, w: int = 110) -> np.ndarray:
    """A HUD score: light digits on a dark panel (BGR), jittered in place and brightness."""
    img = np.full((h, w, 3), (40, 30, 20), np.uint8)
    fg = int(rng.integers(200, 256))
    cv2.putText(img, str(n), (int(rng.integers(3, 8)), 22), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (fg, fg, fg), 2, cv2.LINE_AA)
    return img


@pytest.fixture
def reader():
    rng = np.random.default_rng(0)
    return DigitReader(fg_tol=60).fit([_number(n, rng) for n in SEEN], SEEN)


def test_unseen_digits_read_none_not_nearest_template(reader):
    rng = np.random.default_rng(1)
    assert set(reader.templates) == set("01235")
    assert 0 < reader.max_dist < 0.2
    for n in (0, 1, 2, 5, 33, 12, 103, 2051, 5120, 3):  # known digits, new combinations
        assert reader.read_crop(_number(n, rng)) == n
    for n in (6, 99, 8, 4, 7, 9, 16, 528):  # each holds a digit with no template
        assert reader.read_crop(_number(n, rng)) is None, n


def test_glyphs_that_do_not_fit_read_none(reader):
    rng = np.random.default_rng(2)
    assert reader.read_crop(_number("1.5", rng)) is None  # a '.' is sized like no digit
    assert reader.read_crop(_number("-5", rng)) is None
    img = _number(12, rng)
    cv2.line(img, (2, 24), (60, 24), (255, 255, 255), 2)  # an underline joins both digits into one run
    assert reader.read_crop(img) is None
    reader.glyph_w = None  # no width to split the run by: one glyph twice too wide
    assert reader.read_crop(img) is None
    assert reader.read_crop(np.full((28, 110, 3), 30, np.uint8)) is None  # nothing there


def _slanted(text: str, rng, pitch: int = 13) -> np.ndarray:
    """A zero-padded counter in a slanted font whose glyphs touch their neighbours (xjump's floor counter):
    upright glyphs at a fixed pitch, sheared so that each one's top leans over its right neighbour's bottom."""
    img = np.zeros((28, 24 + pitch * len(text), 3), np.uint8)
    x0 = int(rng.integers(3, 6))
    for i, ch in enumerate(text):
        cv2.putText(img, ch, (x0 + i * pitch, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.75, (255,) * 3, 2)
    shear = np.float32([[1, -0.15, 0.15 * 28], [0, 1, 0]])
    return cv2.warpAffine(img, shear, (img.shape[1], img.shape[0]))


def test_a_font_whose_glyphs_all_touch_is_cut_at_its_pitch():
    """Before, fit found no crop whose runs were its characters and gave up ("no glyphs found")."""
    from hakisa.rewards.readers import _run_widths

    rng = np.random.default_rng(4)
    train = [f"{v:06d}" for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 47, 58, 69, 390)]
    crops = [_slanted(t, rng) for t in train]
    assert all(len(_run_widths(c, 60)) < len(t) for c, t in zip(crops, train))  # no crop shows glyphs apart
    r = DigitReader(fg_tol=60).fit(crops, train)
    assert set(r.templates) == set("0123456789") and 12 <= r.glyph_w <= 14  # its pitch
    values = list(range(0, 400, 7))
    got = [r.read_crop(_slanted(f"{v:06d}", rng)) for v in values]
    # a vertical cut through slanted glyphs leaves a sliver of a neighbour in each: most read right, not all
    # (xjump's real counter: 34 of 34 on frames of another recording, benchmarks/zoo/README.md)
    assert sum(g == v for g, v in zip(got, values)) >= 0.9 * len(values), list(zip(got, values))


def test_red_digits_on_a_dithered_panel():
    """Circus Linux draws its score in red on a checker of black and slate: in gray the panel's two colours (0, 54)
    are as far apart as the ink (76) is from the slate, so a one-colour border rule found one glyph-less blob."""
    from hakisa.rewards.readers import _run_widths

    def crop(n: int) -> np.ndarray:
        img = np.zeros((32, 150, 3), np.uint8)
        yy, xx = np.mgrid[:32, :150]
        img[((yy + xx) % 2 == 1) & (xx % 10 != 0)] = (80, 50, 50)  # BGR slate on nearly every other pixel
        cv2.putText(img, str(n), (4, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 255), 2, cv2.LINE_8)
        return img

    train = [0, 4, 10, 16, 25, 35, 42, 50, 68, 76, 83, 97, 109, 1134, 1284]
    assert max(_run_widths(crop(1284), 40)) < 30  # glyphs apart, not the whole panel as one run
    r = DigitReader(fg_tol=40).fit([crop(n) for n in train], train)
    assert set(r.templates) == set("0123456789")
    values = [3, 61, 128, 507, 999, 2468, 1357]
    assert [r.read_crop(crop(v)) for v in values] == values


def test_scaled_window_reads_right_or_none():
    """Fit on frames of a few window sizes: reads at other sizes are right (or None), never wrong."""
    rng = np.random.default_rng(3)
    train = [1234567890, 4071, 98256, 3, 58, 602]
    scale = lambda img, s: cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    r = DigitReader(fg_tol=60).fit([scale(_number(n, rng), s) for s in (1, 0.8, 1.2) for n in train], train * 3)
    got = [(r.read_crop(scale(_number(n, rng), s)), n) for s in (0.9, 1.1) for n in rng.integers(0, 100000, 20)]
    assert all(g in (None, n) for g, n in got)
    assert sum(g == n for g, n in got) >= 26  # the rest: None, never a wrong number


def test_save_load_keeps_threshold_and_old_json_loads(reader, tmp_path):
    reader.max_dist = 0.0421
    reader.save(tmp_path / "score")
    again = DigitReader.load(tmp_path / "score")
    assert again.max_dist == pytest.approx(0.0421) and again.size_range == pytest.approx(reader.size_range)
    assert again.crop_h == reader.crop_h
    rng = np.random.default_rng(4)
    assert again.read_crop(_number(305, rng)) == 305
    # a reader saved before the threshold existed: the learned fields are absent, defaults apply
    meta = json.loads((tmp_path / "score.json").read_text())
    for k in ("max_dist", "size_range", "crop_h"):
        del meta[k]
    (tmp_path / "score.json").write_text(json.dumps(meta))
    old = DigitReader.load(tmp_path / "score")
    assert old.max_dist == pytest.approx(0.1) and old.size_range is None and old.crop_h is None
    assert old.read_crop(_number(2051, rng)) == 2051
    assert old.read_crop(_number(4, rng)) is None  # far from every template even at the lenient default


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    fit_digits.add_args(p)
    return fit_digits.main(p.parse_args(argv))


def _frames(tmp_path, values, rng) -> list[str]:
    """Whole 200x100 frames (RGB PNGs on disk) with the number at region 40,30,110,28."""
    paths = []
    for i, v in enumerate(values):
        frame = np.full((100, 200, 3), (90, 120, 60), np.uint8)
        frame[30:58, 40:150] = _number(v, rng)
        paths.append(str(tmp_path / f"f{i}.png"))
        cv2.imwrite(paths[-1], frame)
    return paths


def test_cli_frames_fit_reports_unseen_and_writes_files(tmp_path, capsys):
    rng = np.random.default_rng(5)
    paths = _frames(tmp_path, SEEN, rng)
    out = tmp_path / "cfg" / "score"
    assert _run(["--frames", *paths, "--values", *map(str, SEEN), "--region", "40,30,110,28", "--out", str(out),
                 "--fg-tol", "60"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["unseen"] == list("46789") and report["chars"] == list("01235")
    assert report["samples"] == len(SEEN) and report["train_acc"] == 1.0
    assert report["heldout_acc"] is not None and 0 <= report["heldout_acc"] <= 1
    assert any("unseen: 4 6 7 8 9" in line for line in lines)
    r = DigitReader.load(out)
    assert (
        r.region == (40, 30, 110, 28)
        and r.canvas == (200, 100)
        and r.max_dist == pytest.approx(report["max_dist"], abs=1e-4)
    )
    frame = cv2.imread(_frames(tmp_path, [2153], rng)[0])
    assert r.read(frame) == 2153
    assert r.read(cv2.resize(frame, (300, 150))) in (2153, None)  # a bigger window: region scaled


def test_cli_crops_dir(tmp_path, capsys):
    rng = np.random.default_rng(6)
    for i, n in enumerate([1234567890, 4071, 98256, 3, 58, 602]):
        cv2.imwrite(str(tmp_path / f"{n}_{i}.png"), _number(n, rng, w=170))
    assert _run(["--crops", str(tmp_path), "--out", str(tmp_path / "t"), "--fg-tol", "60"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["unseen"] == [] and report["samples"] == 6 and report["train_acc"] == 1.0


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--region", "40,30,110"], "region '40,30,110' is not"),
        (["--region", "150,30,110,28"], "reaches outside"),
        (["--region", "40,30,0,28"], "WIDTH,HEIGHT > 0"),
        (["--region", "40,30,110,28", "--values", "1"], "2 frames but 1 values"),
        (["--region", "0,0,20,20"], "no glyphs found"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, argv, msg):
    paths = _frames(tmp_path, [12, 7], np.random.default_rng(7))
    if "--values" not in argv:
        argv = [*argv, "--values", "12", "7"]
    with pytest.raises(SystemExit) as e:
        _run(["--frames", *paths, *argv, "--out", str(tmp_path / "x"), "--fg-tol", "60"])
    text = str(e.value.code)
    assert text.startswith("hakisa game digits: ") and msg in text and "\n" not in text


def test_cli_missing_file(tmp_path):
    with pytest.raises(SystemExit, match="hakisa game digits: no such file"):
        _run(
            [
                "--frames",
                str(tmp_path / "nope.png"),
                "--values",
                "3",
                "--region",
                "0,0,10,10",
                "--out",
                str(tmp_path / "x"),
            ]
        )
