"""data.yaml loading (path rules, names, splits), image listing, label counting, and every dataset error."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import trainers.data as data_mod
from trainers.data import (
    ClassCounts,
    count_labels,
    image_files,
    label_path,
    load_dataset,
    resolved_data_dict,
)
from trainers.errors import DatasetError, WorkbenchError

REPO = Path(__file__).resolve().parents[1]
GOOD_ROW = "0 0.5 0.5 0.2 0.2\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, newline="")
    return path


def make_dataset(
    root: Path,
    train: dict[str, str | bytes | None] | None = None,
    val: dict[str, str | bytes | None] | None = None,
    yaml_text: str | None = None,
    names: tuple[str, ...] = ("a", "b", "c"),
) -> Path:
    """Write images (never opened: a few bytes) and labels (``None``: no label file) plus a data.yaml."""
    splits = {"train": train if train is not None else {"t0": GOOD_ROW}, "val": val or {"v0": GOOD_ROW}}
    for split, labels in splits.items():
        for stem, content in labels.items():
            write(root / "images" / split / f"{stem}.jpg", b"\xff\xd8\xff")
            if content is not None:
                write(root / "labels" / split / f"{stem}.txt", content)
    text = yaml_text or f"path: .\ntrain: images/train\nval: images/val\nnames: {list(names)}\n"
    return write(root / "data.yaml", text)


@pytest.fixture(params=["fast", "general"])
def parse_path(request, monkeypatch):
    """Run a test on both label parsers: the no-float fast path and numpy's full parse."""
    if request.param == "general":
        monkeypatch.setattr(data_mod, "_fast_class_ids", lambda *a, **k: None)
    return request.param


# ----------------------------------------------------------------------------------------------------------------
# load_dataset: path rules


def test_path_dot_resolves_against_the_yaml_folder_not_the_cwd(tmp_path, monkeypatch):
    yaml_path = make_dataset(tmp_path / "ds")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ds = load_dataset(os.path.relpath(yaml_path, elsewhere))
    assert ds.yaml_path == yaml_path.resolve()
    assert ds.root == (tmp_path / "ds").resolve()
    assert ds.splits == {
        "train": [(tmp_path / "ds/images/train").resolve()],
        "val": [(tmp_path / "ds/images/val").resolve()],
    }
    assert ds.names == ["a", "b", "c"] and ds.nc == 3


def test_missing_path_means_the_yaml_folder(tmp_path):
    yaml_path = make_dataset(tmp_path, yaml_text="train: images/train\nval: images/val\nnames: [a]\n")
    assert load_dataset(yaml_path).root == tmp_path.resolve()


def test_parent_relative_path_next_to_the_yaml(tmp_path):
    make_dataset(tmp_path / "data")
    cfg = write(tmp_path / "configs/data.yaml", "path: ../data\ntrain: images/train\nval: images/val\nnames: [a]\n")
    ds = load_dataset(cfg)
    assert ds.root == (tmp_path / "data").resolve()
    assert ds.splits["val"] == [(tmp_path / "data/images/val").resolve()]


def test_cwd_relative_path_is_accepted_when_not_next_to_the_yaml(tmp_path, monkeypatch):
    make_dataset(tmp_path / "work/datasets/d")
    cfg = write(tmp_path / "cfg/data.yaml", "path: datasets/d\ntrain: images/train\nval: images/val\nnames: [a]\n")
    monkeypatch.chdir(tmp_path / "work")
    assert load_dataset(cfg).root == (tmp_path / "work/datasets/d").resolve()


def test_yaml_folder_wins_over_cwd_when_both_exist(tmp_path, monkeypatch):
    make_dataset(tmp_path / "cfg/d")
    make_dataset(tmp_path / "work/d")
    cfg = write(tmp_path / "cfg/data.yaml", "path: d\ntrain: images/train\nval: images/val\nnames: [a]\n")
    monkeypatch.chdir(tmp_path / "work")
    assert load_dataset(cfg).root == (tmp_path / "cfg/d").resolve()


def test_absolute_path_and_directory_argument(tmp_path):
    make_dataset(tmp_path / "d")
    write(tmp_path / "y/data.yaml", f"path: {tmp_path / 'd'}\ntrain: images/train\nval: images/val\nnames: [a]\n")
    ds = load_dataset(tmp_path / "y")  # a folder holding data.yaml is accepted too
    assert ds.yaml_path == (tmp_path / "y/data.yaml").resolve()
    assert ds.root == (tmp_path / "d").resolve()


def test_names_dict_with_nc_and_validation_alias_and_optional_test(tmp_path):
    make_dataset(tmp_path)
    write(tmp_path / "images/test/x.png", b"\x89PNG")
    yaml_path = write(
        tmp_path / "data.yaml",
        "path: .\ntrain: images/train\nvalidation: images/val\ntest: images/test\n"
        "nc: 3\nnames:\n  0: person\n  '1': car\n  2: 7\n",
    )
    ds = load_dataset(yaml_path)
    assert ds.names == ["person", "car", "7"]
    assert list(ds.splits) == ["train", "val", "test"]
    assert image_files(ds, "test") == [(tmp_path / "images/test/x.png").resolve()]


def test_list_of_train_folders_and_txt_image_lists(tmp_path):
    make_dataset(tmp_path, train={"a": GOOD_ROW})
    write(tmp_path / "extra/images/b.jpg", b"x")
    write(tmp_path / "more/images/c.png", b"x")
    write(tmp_path / "lists/other/images/d.jpg", b"x")
    write(
        tmp_path / "lists/train.txt",
        f"./other/images/d.jpg\nmore/images/c.png\n{tmp_path / 'extra/images/b.jpg'}\n\nnotes.md\n",
    )
    yaml_path = write(
        tmp_path / "data.yaml",
        "path: .\ntrain: [images/train, extra/images, lists/train.txt]\nval: images/val\nnames: [a]\n",
    )
    ds = load_dataset(yaml_path)
    assert ds.splits["train"] == [
        (tmp_path / "images/train").resolve(),
        (tmp_path / "extra/images").resolve(),
        (tmp_path / "lists/train.txt").resolve(),
    ]
    root = tmp_path.resolve()
    # './' lines resolve against the list's folder (as ultralytics does), other relative lines against the root
    assert image_files(ds, "train") == sorted(
        [
            root / "images/train/a.jpg",
            root / "extra/images/b.jpg",
            root / "extra/images/b.jpg",
            root / "more/images/c.png",
            root / "lists/other/images/d.jpg",
        ]
    )


def test_resolved_data_dict_is_absolute_and_round_trips_through_yaml(tmp_path):
    make_dataset(tmp_path, names=("cat", "dog"))
    write(tmp_path / "extra/images/b.jpg", b"x")
    yaml_path = write(
        tmp_path / "data.yaml", "path: .\ntrain: [images/train, extra/images]\nval: images/val\nnames: [cat, dog]\n"
    )
    got = resolved_data_dict(load_dataset(yaml_path))
    root = tmp_path.resolve()
    assert got == {
        "path": str(root),
        "train": [str(root / "images/train"), str(root / "extra/images")],
        "val": str(root / "images/val"),
        "names": {0: "cat", 1: "dog"},
        "nc": 2,
    }
    assert yaml.safe_load(yaml.safe_dump(got)) == got
    # the written dict is itself a valid data.yaml, from any folder
    again = load_dataset(write(tmp_path / "elsewhere/run/data.yaml", yaml.safe_dump(got)))
    assert resolved_data_dict(again) == got


# ----------------------------------------------------------------------------------------------------------------
# image_files / label_path


def test_image_files_filters_suffixes_recursively_skips_hidden_and_sorts(tmp_path):
    make_dataset(tmp_path, train={"m": None})
    for name in ("b.JPG", "a.png", "notes.txt", ".hidden.jpg", "sub/d.webp", "e.gif", "f.tiff", ".cache/g.jpg"):
        write(tmp_path / "images/train" / name, b"x")
    ds = load_dataset(tmp_path / "data.yaml")
    root = (tmp_path / "images/train").resolve()
    assert image_files(ds, "train") == [
        root / "a.png",
        root / "b.JPG",
        root / "f.tiff",
        root / "m.jpg",
        root / "sub/d.webp",
    ]


@pytest.mark.parametrize(
    ("image", "label"),
    [
        ("/d/images/train/a.jpg", "/d/labels/train/a.txt"),
        ("/images/x/images/train/a.b.png", "/images/x/labels/train/a.b.txt"),  # last /images/ only, last suffix only
        ("/d/pics/a.jpeg", "/d/pics/a.txt"),  # no /images/ component: label next to the image
        ("/d/my_images/train/a.jpg", "/d/my_images/train/a.txt"),  # a whole component, not a substring
    ],
)
def test_label_path_follows_ultralytics(image, label):
    assert label_path(Path(image)) == Path(label)


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

    monkeypatch.setattr(data_mod, "_parse_and_check_values", no_float_parse)
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
    monkeypatch.setattr(data_mod, "_fast_class_ids", lambda *a, **k: None)
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


def test_module_stays_light_for_the_ui_process():
    code = "import sys, trainers.data, trainers.weights; print(sorted({'torch', 'ultralytics'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
