"""The split summary: counts equal ultralytics' own label cache, orphan label files and images without labels found,
and the human lines the CLI and the UI show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.fake_dataset import GOOD_ROW, make_dataset, write
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.files import orphan_label_files
from trainers.datasets.label_counts import ClassCounts
from trainers.datasets.summary import SplitSummary, dataset_notes, summarize_split
from trainers.errors import DatasetError

NAMES = ["cat", "dog", "owl"]


def real_dataset(root: Path) -> Path:
    """Real (decodable) images, with every case the summary must tell apart; class 2 only in an orphan file."""
    from PIL import Image

    def image(rel: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (90, 120, 150)).save(path)

    for i in range(6):
        image(f"images/train/{i}.jpg")
        write(root / f"labels/train/{i}.txt", f"{i % 2} 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.1 0.1\n")
    image("images/train/sub/nested.png")  # a subfolder: its labels folder is labels/train/sub
    write(root / "labels/train/sub/nested.txt", "0 0.4 0.4 0.2 0.2\n")
    image("images/train/bg_a.jpg")  # no label file: background
    image("images/train/bg_b.png")
    image("images/train/empty.jpg")  # empty label file: background too
    write(root / "labels/train/empty.txt", "")
    # label files no image maps to: ultralytics never reads them
    write(root / "labels/train/gone_0.txt", "2 0.5 0.5 0.3 0.3\n2 0.2 0.2 0.1 0.1\n0 0.7 0.7 0.1 0.1\n")
    write(root / "labels/train/gone_1.txt", "2 0.5 0.5 0.3 0.3\n")
    write(root / "labels/train/old/deleted.txt", "1 0.5 0.5 0.3 0.3\n")  # a label subfolder without images
    write(root / "labels/train/.hidden.txt", "0 0.5 0.5 0.3 0.3\n")  # hidden: ignored like hidden images
    image("images/val/v.jpg")
    write(root / "labels/val/v.txt", "0 0.5 0.5 0.2 0.2\n")
    return write(root / "data.yaml", f"path: .\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")


def naive_count(folder: Path, nc: int) -> list[int]:
    """Boxes per class in every visible label file under a folder, image or not."""
    out = [0] * nc
    for path in folder.rglob("*.txt"):
        if not path.name.startswith("."):
            for line in path.read_text().splitlines():
                if line.strip():
                    out[int(line.split()[0])] += 1
    return out


def test_counts_equal_ultralytics_label_cache_and_orphans_are_the_difference(tmp_path):
    """ultralytics builds its label cache as it does when it trains (YOLODataset -> verify_image_label per image)."""
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import load_dataset_cache_file

    data = real_dataset(tmp_path)
    summary = summarize_split(load_dataset(data), "train")

    ul = YOLODataset(
        img_path=str(tmp_path / "images/train"),
        imgsz=32,
        augment=False,
        data={"names": dict(enumerate(NAMES)), "nc": len(NAMES), "channels": 3},
        task="detect",
        batch_size=4,
    )
    nf, nm, ne, n_corrupt, n = load_dataset_cache_file(tmp_path / "labels/train.cache")["results"]
    instances, images = [0] * len(NAMES), [0] * len(NAMES)
    for label in ul.labels:
        classes = [int(c) for c in label["cls"].ravel()]
        for c in classes:
            instances[c] += 1
        for c in set(classes):
            images[c] += 1
    counts = summary.counts
    assert (counts.instances, counts.images) == (instances, images) == ([4, 9, 0], [4, 6, 0])
    assert counts.n_images == len(ul.labels) == n == 10 and n_corrupt == 0
    assert len(summary.images_without_labels) == nm == 2
    assert summary.n_empty_labels == ne == 1
    assert counts.n_labelled == nf - ne == 7

    # the orphans are exactly the label files ultralytics did not read, and their boxes exactly the difference
    read_by_ultralytics = {os.path.normpath(p) for p in ul.label_files if os.path.exists(p)}
    every_label_file = {str(p) for p in (tmp_path / "labels/train").rglob("*.txt") if not p.name.startswith(".")}
    assert set(summary.orphan_labels) == every_label_file - read_by_ultralytics
    assert [Path(p).relative_to(tmp_path).as_posix() for p in summary.orphan_labels] == [
        "labels/train/gone_0.txt",
        "labels/train/gone_1.txt",
        "labels/train/old/deleted.txt",
    ]
    assert summary.orphan_instances == [1, 1, 3]
    naive = naive_count(tmp_path / "labels/train", len(NAMES))
    assert [a - b for a, b in zip(naive, counts.instances, strict=True)] == summary.orphan_instances


def test_notes_name_orphans_backgrounds_and_classes_only_in_orphans(tmp_path):
    summary = summarize_split(load_dataset(real_dataset(tmp_path)), "train")
    assert dataset_notes(summary) == [
        "3 label files without an image (skipped in training, 5 boxes): labels/train/gone_0.txt, "
        "labels/train/gone_1.txt, labels/train/old/deleted.txt",
        "class 'owl' has boxes only in label files without an image (none to train on)",
        "2 images without a label file (background): images/train/bg_a.jpg, images/train/bg_b.png",
    ]
    assert dataset_notes(summary, first=1)[0].endswith(": labels/train/gone_0.txt and 2 more")
    assert dataset_notes(summarize_split(load_dataset(tmp_path / "data.yaml"), "val")) == []


def test_to_dict_lists_every_orphan_and_counts_backgrounds(tmp_path):
    summary = summarize_split(load_dataset(real_dataset(tmp_path)), "train")
    doc = summary.to_dict(first=1)
    assert doc["counts"] == summary.counts.to_dict() and doc["split"] == "train"
    assert doc["orphan_labels"] == summary.orphan_labels and len(doc["orphan_labels"]) == 3
    assert doc["orphan_instances"] == [1, 1, 3] and doc["orphan_malformed"] == []
    assert doc["images_without_labels"] == {"count": 2, "first": [str(tmp_path / "images/train/bg_a.jpg")]}
    assert doc["n_empty_labels"] == 1


def test_a_malformed_orphan_never_raises_and_is_named(tmp_path):
    # ultralytics never reads an orphan, so a bad row in one cannot break a run: report it, do not refuse
    train = {"a": GOOD_ROW, "b": None}
    ds = load_dataset(make_dataset(tmp_path, train=train))
    write(tmp_path / "labels/train/x.txt", "0 0.5 0.5\n")
    write(tmp_path / "labels/train/y.txt", "7 0.5 0.5 0.2 0.2\n")  # class id out of range
    write(tmp_path / "labels/train/z.txt", "1 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n")
    summary = summarize_split(ds, "train")
    assert summary.counts == ClassCounts(["a", "b", "c"], [1, 0, 0], [1, 0, 0], 2, 1, 1)
    assert [Path(p).name for p in summary.orphan_labels] == ["x.txt", "y.txt", "z.txt"]
    assert [Path(p).name for p in summary.orphan_malformed] == ["x.txt", "y.txt"]
    assert summary.orphan_instances == [0, 2, 0]
    assert dataset_notes(summary)[0].startswith(
        "3 label files without an image (skipped in training, 2 boxes; 2 do not parse as labels): "
    )
    assert dataset_notes(summary)[2] == "1 image without a label file (background): images/train/b.jpg"


def test_a_bad_row_in_a_used_label_file_still_raises(tmp_path):
    ds = load_dataset(make_dataset(tmp_path, train={"a": "0 0.5 0.5\n"}))
    with pytest.raises(DatasetError, match="a.txt: line 1: expected 5 values"):
        summarize_split(ds, "train")
    with pytest.raises(DatasetError, match="has no labelled boxes"):
        summarize_split(load_dataset(make_dataset(tmp_path / "e", train={"a": None})), "train", require_labels=True)


def test_labels_beside_images_and_image_lists_in_the_folder(tmp_path):
    # no /images/ component: ultralytics looks for a.txt next to a.jpg; the dataset's own list file is not a label
    write(tmp_path / "pics/a.jpg", b"\xff\xd8\xff")
    write(tmp_path / "pics/a.txt", GOOD_ROW)
    write(tmp_path / "pics/b.JPG", b"\xff\xd8\xff")
    write(tmp_path / "pics/b.txt", GOOD_ROW)  # the same stem as b.JPG: not an orphan
    write(tmp_path / "pics/lonely.txt", GOOD_ROW)
    write(tmp_path / "pics/val.txt", "./a.jpg\n")
    ds = load_dataset(write(tmp_path / "data.yaml", "path: .\ntrain: pics\nval: pics/val.txt\nnames: [a]\n"))
    assert orphan_label_files(ds, "train") == [str(tmp_path / "pics/lonely.txt")]
    summary = summarize_split(ds, "train")
    assert summary.counts.instances == [2] and summary.orphan_instances == [1]


def test_nothing_to_report_on_a_clean_split(tiny_data):
    summary = summarize_split(load_dataset(tiny_data), "val")
    assert isinstance(summary, SplitSummary)
    assert (summary.orphan_labels, summary.images_without_labels, summary.n_empty_labels) == ([], [], 0)
    assert dataset_notes(summary) == []
