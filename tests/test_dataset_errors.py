"""Every dataset error (data.yaml and label rows) is one line that names the file (and key or line) and the fix.

``ERROR_CASES`` is re-run by ``tests/test_robustness.py`` to show that each rejection leaves every file unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import trainers.datasets.label_counts as label_counts
from tests.fixtures.fake_dataset import GOOD_ROW, make_dataset, write
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.label_counts import count_labels
from trainers.errors import DatasetError, WorkbenchError


@pytest.fixture(params=["fast", "general"])
def parse_path(request, monkeypatch):
    """Run a test on both label parsers: the no-float fast path and numpy's full parse."""
    if request.param == "general":
        monkeypatch.setattr(label_counts, "_fast_class_ids", lambda *a, **k: None)
    return request.param


# ----------------------------------------------------------------------------------------------------------------
# Errors: one line, naming the file (and key or line) and the fix


def _yaml_case(text: str) -> Callable[[Path], tuple[Callable[[], object], str]]:
    def build(tmp: Path):
        return (lambda: load_dataset(make_dataset(tmp, yaml_text=text))), "data.yaml"

    return build


def _label_case(bad: str | bytes, names: tuple[str, ...] = ("a", "b", "c"), **kwargs):
    def build(tmp: Path):
        ds = load_dataset(make_dataset(tmp, train={"good": GOOD_ROW, "bad": bad}, names=names))
        return (lambda: count_labels(ds, "train", **kwargs)), "bad.txt"

    return build


def _missing_file(tmp: Path):
    return (lambda: load_dataset(tmp / "nope.yaml")), "nope.yaml"


def _zero_images(tmp: Path):
    yaml_path = make_dataset(tmp)
    for f in (tmp / "images/train").iterdir():
        f.unlink()
    write(tmp / "images/train/readme.txt", "not an image")
    return (lambda: load_dataset(yaml_path)), "data.yaml"


def _empty_label_set(tmp: Path):
    ds = load_dataset(make_dataset(tmp, train={"a": "\n", "b": None}))
    return (lambda: count_labels(ds, require_labels=True)), "data.yaml"


def _undefined_split(tmp: Path):
    ds = load_dataset(make_dataset(tmp))
    return (lambda: count_labels(ds, "test")), "data.yaml"


Y = "path: .\ntrain: images/train\nval: images/val\n"
ERROR_CASES = {
    "file missing": (_missing_file, "nope.yaml: file not found; pass the path of an existing dataset YAML"),
    "invalid yaml": (
        _yaml_case("path: .\ntrain: images/train\n  val: images/val\nnames: [a]\n"),
        "invalid YAML at line 3: mapping values are not allowed here",
    ),
    "not a mapping": (_yaml_case("- a\n- b\n"), "expected a mapping with keys path, train, val, names, got a list"),
    "empty yaml": (_yaml_case("# nothing\n"), "expected a mapping with keys path, train, val, names, got empty"),
    "names missing": (_yaml_case(Y), "key 'names' is missing; add the class names"),
    "names empty": (_yaml_case(Y + "names: []\n"), "'names' is empty; list at least one class name"),
    "names wrong type": (_yaml_case(Y + "names: cat\n"), "'names' must be a list or an {id: name} mapping, got str"),
    "names ids with a gap": (
        _yaml_case(Y + "names: {0: a, 2: c}\n"),
        "'names' ids must be contiguous from 0 (missing 1); renumber them 0..1",
    ),
    "nc mismatch": (
        _yaml_case(Y + "nc: 3\nnames: [a, b]\n"),
        "'nc: 3' does not match the 2 entries in 'names'; set 'nc: 2' or remove it",
    ),
    "train missing": (_yaml_case("path: .\nval: images/val\nnames: [a]\n"), "key 'train' is missing; add 'train:"),
    "val missing": (_yaml_case("path: .\ntrain: images/train\nnames: [a]\n"), "key 'val' is missing; add 'val:"),
    "path missing": (
        _yaml_case("path: no_such_dir\ntrain: images/train\nval: images/val\nnames: [a]\n"),
        "'path: no_such_dir' not found next to the YAML",
    ),
    "split folder missing": (
        _yaml_case("path: .\ntrain: images/nope\nval: images/val\nnames: [a]\n"),
        "'train: images/nope' not found (looked for",
    ),
    "split list file missing": (
        _yaml_case("path: .\ntrain: images/train\nval: val.txt\nnames: [a]\n"),
        "'val: val.txt' not found (looked for",
    ),
    "split with zero images": (_zero_images, "split 'train' has no images in"),
    "undefined split": (_undefined_split, "split 'test' is not defined; available: train, val"),
    "too few values": (
        _label_case("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n"),
        "line 2: expected 5 values 'class x_center y_center width height', got 4 ('0 0.5 0.5 0.2')",
    ),
    "six values": (_label_case("1 0.5 0.5 0.2 0.2 0.9\n"), "line 1: expected 5 values"),
    "not a number": (_label_case("\n0 0.5 abc 0.2 0.2\n"), "line 2: 'abc' is not a number"),
    "class id out of range": (
        _label_case("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n"),
        "line 2: class id 3 is out of range for nc=3 (valid 0-2); fix the id or add the class to 'names'",
    ),
    "class id out of range, general path": (
        _label_case("7 0.5 0.5 1 1\n"),
        "line 1: class id 7 is out of range for nc=3 (valid 0-2)",
    ),
    "class id not an integer": (
        _label_case("1.5 0.5 0.5 0.2 0.2\n"),
        "line 1: class id 1.5 is not a non-negative integer",
    ),
    "negative class id": (_label_case("-1 0.5 0.5 0.2 0.2\n"), "line 1: class id -1 is not a non-negative integer"),
    "coordinate above 1": (
        _label_case("0 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n"),
        "line 2: has coordinates outside [0, 1] ('0 1.5 0.5 0.2 0.2')",
    ),
    "pixel coordinates": (_label_case("0 320 240 50 80\n"), "line 1: has coordinates outside [0, 1]"),
    "negative width": (_label_case("0 0.5 0.5 -0.2 0.2\n"), "line 1: has a negative width/height"),
    "polygon outside": (
        _label_case("0 0.1 0.1 0.9 0.1 0.5 1.9\n"),
        "line 1: polygon has coordinates outside [0, 1]",
    ),
    "mixed box and polygon rows": (
        _label_case("0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.9 0.1 0.5 0.9\n"),
        "mixes box rows (5 values) and polygon rows",
    ),
    "binary garbage": (
        _label_case(b"0 0.5 0.5 0.2 0.2\n\x00\x01\x02 0.5 0.5 0.2 0.2\n"),
        "line 2: contains the non-text byte 0x00",
    ),
    "empty label set": (_empty_label_set, "split 'train' has no labelled boxes in its 2 images"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_dataset_errors_are_one_line_and_name_the_file(tmp_path, case, parse_path):
    build, fragment = ERROR_CASES[case]
    call, file_name = build(tmp_path)
    with pytest.raises(DatasetError) as err:
        call()
    msg = str(err.value)
    assert isinstance(err.value, WorkbenchError)
    assert "\n" not in msg
    assert fragment in msg
    assert file_name in msg
    assert msg.startswith(str(tmp_path.resolve()) if case != "file missing" else str(tmp_path))
