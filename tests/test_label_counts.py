"""Label counting per class: exact counts on both parsers, and the module stays light for the UI."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

import trainers.datasets.label_counts as label_counts
from tests.fixtures.fake_dataset import make_dataset
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.label_counts import ClassCounts, count_labels
from trainers.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["fast", "general"])
def parse_path(request, monkeypatch):
    """Run a test on both label parsers: the no-float fast path and numpy's full parse."""
    if request.param == "general":
        monkeypatch.setattr(label_counts, "_fast_class_ids", lambda *a, **k: None)
    return request.param


# ----------------------------------------------------------------------------------------------------------------
# count_labels


def test_count_labels_exact_counts_with_background_crlf_bom_and_edge_boxes(tmp_path, parse_path):
    train = {
        "img0": "0 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n0 0.7 0.7 0.1 0.1\n",
        "img1": "2 0.500000 0.500000 1.000000 1.000000",  # full-image box, no final newline
        "img2": "",  # empty label file: background
        "img3": None,  # no label file: background
        "img4": "\n\n   \n",  # only blank lines: background
        "img5": b"\xef\xbb\xbf1 0.1 0.1 0.1 0.1\r\n\r\n1\t0.2 0.2 0.1 0.1\r\n",  # BOM, CRLF, tab
    }
    ds = load_dataset(make_dataset(tmp_path, train=train))
    counts = count_labels(ds, "train")
    assert counts == ClassCounts(
        names=["a", "b", "c"], instances=[2, 3, 1], images=[1, 2, 1], n_images=6, n_labelled=3, n_background=3
    )
    assert counts.to_dict() == {
        "names": ["a", "b", "c"],
        "instances": [2, 3, 1],
        "images": [1, 2, 1],
        "n_images": 6,
        "n_labelled": 3,
        "n_background": 3,
    }
    assert count_labels(ds, "val").to_dict()["instances"] == [1, 0, 0]


def test_count_labels_general_number_formats_and_tolerance(tmp_path):
    # '%g'-style values (1, 1e-05) and ultralytics' 1% tolerance take the full numpy parse
    train = {
        "a": "0 0.5 0.5 1 1\n1 1e-05 0.5 0.2 0.2\n",
        "b": "2 1.005 0.5 0.2 0.2\n2 -0.005 0.5 0.1 0.1\n2.0 .5 +0.5 0.1 0.1\n",
    }
    counts = count_labels(load_dataset(make_dataset(tmp_path, train=train)))
    assert (counts.instances, counts.images, counts.n_labelled) == ([1, 1, 3], [1, 1, 1], 2)


def test_fast_path_covers_fixed_and_g_formats_without_parsing_floats(tmp_path, monkeypatch):
    # '%.6f' and '%g' exports (bare '0' and '1' included) are counted without numpy's float parser
    train = {"a": "0 0.500000 0.500000 1.000000 1.000000\n12 0.25 0.75 1 0\n", "b": "3 0 0 0.5 0.5\n"}
    names = tuple(f"c{i}" for i in range(13))
    ds = load_dataset(make_dataset(tmp_path, train=train, names=names))

    def no_float_parse(*args, **kwargs):
        raise AssertionError("the fast path should have handled these labels")

    monkeypatch.setattr(label_counts, "_parse_and_check_values", no_float_parse)
    counts = count_labels(ds)
    assert counts.instances == [1, 0, 0, 1] + [0] * 8 + [1]
    assert counts.images == counts.instances


def test_polygon_rows_count_as_one_box_each(tmp_path, parse_path):
    train = {"a": "1 0.1 0.1 0.9 0.1 0.5 0.9\n1 0.2 0.2 0.3 0.2 0.3 0.3 0.2 0.3\n", "b": "0 0.5 0.5 0.2 0.2\n"}
    counts = count_labels(load_dataset(make_dataset(tmp_path, train=train)))
    assert (counts.instances, counts.images) == ([1, 2, 0], [1, 1, 0])


def test_fast_and_general_paths_match_a_plain_python_reference(tmp_path, monkeypatch):
    rng = random.Random(3)
    nc, train = 7, {}
    for i in range(300):
        kind = rng.random()
        if kind < 0.1:
            train[f"i{i:03d}"] = None
        elif kind < 0.15:
            train[f"i{i:03d}"] = ""
        else:
            rows = [
                f"{rng.randrange(nc)} {rng.random():.6f} {rng.random():.6f} {rng.random():.4f} {rng.random():.4f}"
                for _ in range(rng.randrange(1, 12))
            ]
            train[f"i{i:03d}"] = "\n".join(rows) + rng.choice(["", "\n"])
    ds = load_dataset(make_dataset(tmp_path, train=train, names=tuple("abcdefg")))
    instances, images = [0] * nc, [0] * nc
    for content in train.values():
        classes = [int(line.split()[0]) for line in (content or "").splitlines() if line.strip()]
        for c in classes:
            instances[c] += 1
        for c in set(classes):
            images[c] += 1
    labelled = sum(1 for c in train.values() if c and c.strip())
    expected = ClassCounts(list("abcdefg"), instances, images, 300, labelled, 300 - labelled)
    assert count_labels(ds) == expected
    monkeypatch.setattr(label_counts, "_fast_class_ids", lambda *a, **k: None)
    assert count_labels(ds) == expected


def test_no_boxes_is_fine_unless_labels_are_required(tmp_path):
    ds = load_dataset(make_dataset(tmp_path, train={"a": "", "b": None}))
    counts = count_labels(ds)
    assert (counts.instances, counts.n_images, counts.n_background) == ([0, 0, 0], 2, 2)
    with pytest.raises(DatasetError) as err:
        count_labels(ds, "train", require_labels=True)
    msg = str(err.value)
    assert f"{ds.yaml_path}: split 'train' has no labelled boxes in its 2 images" in msg
    assert str(tmp_path.resolve() / "labels/train/a.txt") in msg and "\n" not in msg


DATASET_MODULES = ["data_yaml", "files", "label_counts", "summary", "corrupt_images"]


def test_module_stays_light_for_the_ui_process():
    imports = ", ".join(f"trainers.datasets.{m}" for m in [*DATASET_MODULES, "class_weights"])
    code = f"import sys, {imports}; print(sorted({{'torch', 'ultralytics', 'PIL'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", DATASET_MODULES)
def test_each_dataset_module_imports_first_without_a_cycle(module):
    # Imported alone in a fresh process, a module caught in an import cycle fails on a half-initialised partner.
    code = f"import trainers.datasets.{module} as m; print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(REPO / "trainers" / "datasets" / f"{module}.py")
