"""data.yaml loading: path rules, names, splits, and the absolute data dict written for ultralytics."""

from __future__ import annotations

import os

import yaml

from tests.fixtures.fake_dataset import GOOD_ROW, make_dataset, write
from trainers.datasets.data_yaml import load_dataset, resolved_data_dict
from trainers.datasets.files import image_files

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
