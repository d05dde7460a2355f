"""The files of a split: image listing and label paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.fake_dataset import make_dataset, write
from trainers.data_yaml import load_dataset
from trainers.dataset_files import image_files, label_path

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
