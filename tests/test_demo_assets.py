"""The committed demo dataset and base checkpoint: reproducible, imbalanced as intended, loadable by ultralytics."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.data_yaml import load_dataset
from trainers.dataset_files import image_files
from trainers.label_counts import count_labels

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo"
BASE = REPO / "assets" / "demo_base.pt"
NAMES = ["circle", "square", "triangle", "cross"]


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file, ignoring ultralytics' ``*.cache`` label caches."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".cache"
    }


def test_dataset_regenerates_byte_identically(tmp_path):
    out = tmp_path / "demo"
    subprocess.run([sys.executable, str(REPO / "assets/make_demo_data.py"), str(out)], check=True, capture_output=True)
    generated = _tree(out)
    # data.yaml, .gitignore, train images/labels (2 background), val images/labels
    assert len(generated) == 2 + 48 + 46 + 16 + 16
    assert generated == _tree(DEMO)


def test_dataset_layout_and_size():
    ds = load_dataset(DEMO / "data.yaml")
    assert ds.names == NAMES
    assert ds.root == DEMO.resolve()
    assert "path: .\ntrain: images/train\nval: images/val\n" in (DEMO / "data.yaml").read_text()
    assert (len(image_files(ds, "train")), len(image_files(ds, "val"))) == (48, 16)
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file() and p.suffix != ".cache")
    assert total < 1.5e6


def test_images_are_128px_rgb_jpegs():
    from PIL import Image

    ds = load_dataset(DEMO / "data.yaml")
    for image in image_files(ds, "train")[:5] + image_files(ds, "val")[:5]:
        with Image.open(image) as im:
            assert (im.format, im.size, im.mode) == ("JPEG", (128, 128), "RGB")


def test_train_split_is_imbalanced_at_least_20x():
    counts = count_labels(load_dataset(DEMO / "data.yaml"), "train", require_labels=True)
    assert counts.instances == [160, 60, 30, 8]
    assert max(counts.instances) / min(counts.instances) >= 20
    assert (counts.n_images, counts.n_labelled, counts.n_background) == (48, 46, 2)


def test_every_class_is_in_val_with_at_least_3_instances():
    counts = count_labels(load_dataset(DEMO / "data.yaml"), "val", require_labels=True)
    assert counts.instances == [40, 16, 8, 5]
    assert min(counts.instances) >= 3
    assert all(n >= 3 for n in counts.images)


def test_demo_objects_are_20_to_40_px():
    ds = load_dataset(DEMO / "data.yaml")
    sizes = []
    for split in ("train", "val"):
        for label in (DEMO / "labels" / split).glob("*.txt"):
            for row in label.read_text().splitlines():
                _, _, _, w, h = map(float, row.split())
                sizes += [w * 128, h * 128]
    assert ds.nc == 4
    assert 20 <= min(sizes) and max(sizes) <= 40


def test_demo_base_checkpoint_is_small_and_plain():
    import torch

    assert BASE.stat().st_size < 10e6
    ckpt = torch.load(BASE, map_location="cpu", weights_only=False)
    assert ckpt["optimizer"] is None and ckpt["ema"] is None  # stripped, as ultralytics does after training
    model = ckpt["model"]
    assert type(model).__module__ == "ultralytics.nn.tasks" and type(model).__name__ == "DetectionModel"
    assert model.names == dict(enumerate(NAMES))
    assert model.yaml["yaml_file"].endswith("yolo26n.yaml")


def test_demo_base_loads_with_ultralytics_yolo():
    from trainers.offline import apply_offline_env

    apply_offline_env()
    from ultralytics import YOLO

    model = YOLO(str(BASE))
    assert model.task == "detect"
    assert model.names == dict(enumerate(NAMES))


@pytest.mark.slow
def test_demo_base_detects_the_demo_val_set(tmp_path):
    """The base checkpoint is what makes the demo show per-class F1 within minutes: it must already detect."""
    import yaml

    from trainers.data_yaml import resolved_data_dict
    from trainers.offline import apply_offline_env

    apply_offline_env()
    from ultralytics import YOLO

    shutil.copytree(DEMO, tmp_path / "demo")  # ultralytics writes labels/*.cache next to the labels
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump(resolved_data_dict(load_dataset(tmp_path / "demo" / "data.yaml"))))
    metrics = YOLO(str(BASE)).val(
        data=str(data), imgsz=128, batch=16, device="cpu", plots=False, project=str(tmp_path), verbose=False
    )
    # measured when committed: mAP50 0.995, F1 circle 0.88, square 0.97, triangle 0.94, cross 0.93
    assert metrics.box.map50 >= 0.9
    assert metrics.ap_class_index.tolist() == [0, 1, 2, 3]
    assert min(metrics.box.f1.tolist()) >= 0.8
