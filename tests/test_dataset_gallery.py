"""The dataset page's library: label rows read tolerantly, image headers, the split scan (each planted label problem
found, named, and listed first) and thumbnails made once and cached."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.dataset_problems import CLEAN, NAMES, PLANTED, make_problem_dataset
from trainers.datasets import image_headers, thumbnails
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.gallery import Problem, scan_split
from trainers.datasets.image_headers import read_header, scan_headers
from trainers.datasets.label_counts import count_labels
from trainers.datasets.label_rows import parse_label_rows

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo" / "data.yaml"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    ds = load_dataset(make_problem_dataset(tmp_path_factory.mktemp("planted")))
    return ds, scan_split(ds, "train")


def _stem(scan, item: int) -> str:
    return os.path.basename(scan.items[item]).rsplit(".", 1)[0]


# ---- the scan ----------------------------------------------------------------------------------------------------
def test_every_planted_problem_is_found_and_named(planted):
    _, scan = planted
    found = {_stem(scan, i): issues for i, issues in scan.issues.items()}
    assert set(found) == set(PLANTED), f"flagged {sorted(found)}, planted {sorted(PLANTED)}"
    for name, (problem, words, _) in PLANTED.items():
        assert [x.problem for x in found[name]] == [problem], (name, found[name])  # one issue, named once
        assert words in found[name][0].text, (name, found[name][0].text)


def test_problems_come_first_worst_first_then_clean_images_by_path(planted):
    _, scan = planted
    order = [_stem(scan, i) for i in scan.order]
    assert order[: len(PLANTED)] == list(PLANTED)  # PLANTED is written in Problem order
    assert order[len(PLANTED) :] == [f"clean-{i:02d}" for i in range(CLEAN)]
    ranks = [scan.issues[i][0].problem.rank for i in scan.order[: len(PLANTED)]]
    assert ranks == sorted(ranks) and ranks[0] == Problem.ORPHAN.rank


def test_filters_keep_the_order(planted):
    _, scan = planted
    only = [_stem(scan, i) for i in scan.shown(problems_only=True)]
    assert only == list(PLANTED)
    birds = [_stem(scan, i) for i in scan.shown(cls=NAMES.index("bird"))]
    assert birds[:2] == ["outside", "dup"] and all(s.startswith("clean") for s in birds[2:])
    assert set(birds[2:]) == {f"clean-{i:02d}" for i in range(CLEAN) if 2 in (i % 3, (i + 1) % 3)}


def test_counts_leave_out_what_ultralytics_drops(planted):
    ds, scan = planted
    instances, images = scan.counts()
    # clean images: classes i%3 and (i+1)%3; tiny adds a cat and a dog, dup two birds and a cat (duplicates counted,
    # as label_counts does); the orphan, corrupt, unparsable, bad-id and outside files add nothing.
    assert instances == [8 + 1 + 1, 8 + 1, 8 + 2] and images == [8 + 2, 8 + 1, 8 + 1]


def test_counts_equal_label_counts_on_a_clean_dataset():
    ds = load_dataset(DEMO)
    for split in ("train", "val"):
        scan = scan_split(ds, split)
        expected = count_labels(ds, split)
        assert scan.counts() == (expected.instances, expected.images) and not scan.issues


def test_box_pixels_and_image_sizes(planted):
    _, scan = planted
    cls, w, h = scan.box_pixels()
    assert cls.size == sum(scan.counts()[0])
    assert np.isclose(w.max(), 0.4 * 96) and np.isclose(h.max(), 0.4 * 64) and np.isclose(w.min(), 0.01 * 96)
    assert scan.image_sizes() == {(96, 64): CLEAN + len(PLANTED) - 2}  # not the orphan, not the text file


def test_a_split_with_nothing_wrong_has_no_issues(planted):
    ds, _ = planted
    val = scan_split(ds, "val")
    assert not val.issues and val.n_images == 3 and list(val.order) == [0, 1, 2]


# ---- label rows ------------------------------------------------------------------------------------------------
def test_label_rows_keep_good_files_and_name_the_first_problem_of_bad_ones():
    rows = parse_label_rows([
        b"0 0.5 0.5 0.2 0.2\n\n1 0.1 0.1 0.05 0.05\n",
        None,
        b"0 0.5 0.5 0.2\n",
        b"2 0.1 0.2 0.3 0.4 0.5 0.6\n",  # a polygon: kept as its bounding box
        b"0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.2 0.2 0.3 0.3\n",
        b"0 nan 0.5 0.2 0.2\n",
        b"0 1.2.3 0.5 0.2 0.2\n",
        b"7 0.5 0.5 1.5 0.2\n-1 0.5 0.5 1e-1 0.1\n",
    ])  # fmt: skip
    assert rows.file.tolist() == [0, 0, 3, 7, 7] and rows.line.tolist() == [1, 3, 1, 1, 2]
    assert rows.cls.tolist() == [0, 1, 2, 7, -1]
    assert np.allclose(rows.box[2], [0.3, 0.4, 0.4, 0.4]) and np.allclose(rows.box[4], [0.5, 0.5, 0.1, 0.1])
    assert rows.outside.tolist() == [False, False, False, True, False]
    assert rows.malformed == {
        2: "line 1: expected 5 values 'class x_center y_center width height', got 4",
        4: "mixes box rows (5 values) and polygon rows: ultralytics refuses such a file",
        5: "line 1: 'n' is not part of a number; rows are 'class x_center y_center width height'",
        6: "line 1: '1.2.3' is not a number",
    }


def test_plain_decimals_read_the_same_doubles_as_strtod():
    values = np.random.default_rng(0).uniform(1e-4, 1, (20_000, 4))  # %g writes an exponent below 1e-4
    text = "".join(f"{i % 80} {a:.6f} {b:.9f} {c:.3f} {d:g}\n" for i, (a, b, c, d) in enumerate(values)).encode()
    expected = np.fromstring(text, sep=" ").reshape(-1, 5)
    assert b"e" not in text  # every token plain: the fast path reads them all
    rows = parse_label_rows([text])
    assert np.array_equal(rows.cls, expected[:, 0]) and np.array_equal(rows.box, expected[:, 1:])
    signed = parse_label_rows([text.replace(b"\n0 ", b"\n0 +", 1) + b"1 1e-1 0.5 0.5 0.5\n"])  # np.fromstring
    assert np.array_equal(signed.box[:-1], expected[:, 1:]) and signed.box[-1, 0] == 0.1


# ---- image headers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "kw"), [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("BMP", {}), ("WEBP", {}),
                    ("WEBP", {"lossless": True}), ("TIFF", {}), ("JPEG", {"exif": b"Exif\0\0" + bytes(9000)})],
)  # fmt: skip
def test_header_sizes_equal_pil(tmp_path, fmt, kw):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (53, 37), (10, 200, 30)).save(path, fmt, **kw)
    assert read_header(str(path)) == ((53, 37), None)


def test_header_problems(tmp_path, monkeypatch):
    good = tmp_path / "good.jpg"
    Image.new("RGB", (40, 30)).save(good)
    data = good.read_bytes()
    cases = {
        "cut.jpg": data[: len(data) // 2],
        "head.jpg": data[:40],
        "empty.jpg": b"",
        "text.jpg": b"hello, not an image",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    Image.new("RGB", (5, 50)).save(tmp_path / "small.png")
    paths = [str(tmp_path / n) for n in [*cases, "small.png", "missing.jpg", "good.jpg"]]
    scan = scan_headers(paths)
    problems = {os.path.basename(paths[i]): text.split(":")[0].split(" (")[0] for i, text in scan.problems.items()}
    assert problems == {
        "cut.jpg": "JPEG without its end marker FF D9",
        "head.jpg": "JPEG header cut short",
        "empty.jpg": "empty image file",
        "text.jpg": "not a JPEG, PNG, BMP, WEBP or TIFF image",
        "small.png": "image size 5x50 is under 10 pixels",
        "missing.jpg": "image not found",
    }
    assert scan.width.tolist() == [40, -1, -1, -1, 5, -1, 40] and scan.height.tolist()[-1] == 30
    monkeypatch.setattr(image_headers, "_THREADED", 2)  # a big split's path: threads over chunks, same order
    threaded = scan_headers(paths * 3)
    assert threaded.width.tolist() == scan.width.tolist() * 3 and threaded.height.tolist() == scan.height.tolist() * 3
    assert threaded.problems == {i + k * len(paths): text for k in range(3) for i, text in scan.problems.items()}


# ---- thumbnails ------------------------------------------------------------------------------------------------
def test_thumbnails_are_made_once_and_cached(tmp_path, monkeypatch):
    image = tmp_path / "a.jpg"
    Image.new("RGB", (640, 480), (200, 10, 10)).save(image)
    cache = tmp_path / "cache"
    calls = []
    make = thumbnails._make
    monkeypatch.setattr(thumbnails, "_make", lambda *a: calls.append(a) or make(*a))

    first = thumbnails.thumbnail(str(image), cache)
    assert not first.cached and first.error is None and len(calls) == 1
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".jpg"
    with Image.open(files[0]) as im:
        assert im.size == (thumbnails.THUMB_PX, thumbnails.THUMB_PX * 3 // 4)
    stamp = files[0].stat().st_mtime_ns

    again = thumbnails.make_thumbnails([str(image)] * 3, cache)
    assert [t.cached for t in again] == [True] * 3 and {t.jpeg for t in again} == {first.jpeg}
    assert len(calls) == 1 and files[0].stat().st_mtime_ns == stamp  # never decoded or written again

    time.sleep(0.01)
    Image.new("RGB", (640, 480), (10, 10, 200)).save(image)  # edited: a new key, a new thumbnail
    assert not thumbnails.thumbnail(str(image), cache).cached and len(calls) == 2


def test_an_image_that_does_not_decode_is_remembered_too(tmp_path, monkeypatch):
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 64)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:200])
    calls = []
    make = thumbnails._make
    monkeypatch.setattr(thumbnails, "_make", lambda *a: calls.append(a) or make(*a))
    first = thumbnails.thumbnail(str(bad), tmp_path / "cache")
    assert first.jpeg is None and first.error.startswith("cannot decode the image")
    second = thumbnails.thumbnail(str(bad), tmp_path / "cache")
    assert second.cached and second.error == first.error and len(calls) == 1


def test_thumbnail_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert thumbnails.thumbnail_cache_dir(tmp_path) == tmp_path / ".thumbnails"
    assert thumbnails.thumbnail_cache_dir(tmp_path / "absent") == tmp_path / "xdg" / "workbench" / "thumbnails"


def test_the_scan_modules_stay_light_for_the_ui_process():
    modules = ["gallery", "thumbnails", "image_headers", "label_rows"]
    imports = ", ".join(f"trainers.datasets.{m}" for m in modules) + ", app.dataset_grid, app.dataset_view"
    code = f"import sys, {imports}; print(sorted({{'torch', 'ultralytics', 'PIL'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
