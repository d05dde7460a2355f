"""The files of a split: image listing, label paths, and the label files no image maps to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.fake_dataset import GOOD_ROW, make_dataset, write
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.files import image_files, label_path, orphan_label_files

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
# orphan_label_files (counted and shown by tests/test_dataset_summary.py)


def test_image_list_split_skips_labels_of_images_it_leaves_out(tmp_path):
    # train.txt and val.txt share one images/ folder: val's labels are not train's orphans, a deleted image's label is
    for stem in ("t0", "t1", "v0"):
        write(tmp_path / f"images/{stem}.jpg", b"\xff\xd8\xff")
        write(tmp_path / f"labels/{stem}.txt", GOOD_ROW)
    write(tmp_path / "labels/deleted.txt", GOOD_ROW)
    write(tmp_path / "train.txt", "./images/t0.jpg\n./images/t1.jpg\n")
    write(tmp_path / "val.txt", "./images/v0.jpg\n")
    ds = load_dataset(write(tmp_path / "data.yaml", "path: .\ntrain: train.txt\nval: val.txt\nnames: [a]\n"))
    assert orphan_label_files(ds, "train") == [str(tmp_path / "labels/deleted.txt")]
    assert orphan_label_files(ds, "val") == [str(tmp_path / "labels/deleted.txt")]


def test_last_images_component_only_like_ultralytics(tmp_path):
    # /d/images/x/images/a.jpg -> /d/images/x/labels/a.txt; /d/labels/x/images/a.txt maps to no image
    write(tmp_path / "images/x/images/a.jpg", b"\xff\xd8\xff")
    write(tmp_path / "images/x/labels/a.txt", GOOD_ROW)
    write(tmp_path / "images/x/labels/b.txt", GOOD_ROW)
    write(tmp_path / "v/images/v.jpg", b"\xff\xd8\xff")
    ds = load_dataset(write(tmp_path / "data.yaml", "path: .\ntrain: images/x/images\nval: v/images\nnames: [a]\n"))
    assert orphan_label_files(ds, "train") == [str(tmp_path / "images/x/labels/b.txt")]
    assert orphan_label_files(ds, "val") == []  # v/labels does not exist


def test_an_unreadable_label_subfolder_is_skipped(tmp_path, monkeypatch):
    make_dataset(tmp_path, train={"a": GOOD_ROW})
    write(tmp_path / "labels/train/locked/x.txt", GOOD_ROW)
    write(tmp_path / "labels/train/gone.txt", GOOD_ROW)
    ds = load_dataset(tmp_path / "data.yaml")
    real_scandir = os.scandir

    def scandir(path):  # simulated: the tests run as root, who reads anything
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert orphan_label_files(ds, "train") == [str(tmp_path.resolve() / "labels/train/gone.txt")]
