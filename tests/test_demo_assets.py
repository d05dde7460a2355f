"""The committed demo dataset and base checkpoint: reproducible, imbalanced as intended, loadable by ultralytics, and a
fine-tune at the New run defaults in which the rare class visibly lags (issue 11, item 7)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.files import image_files
from trainers.datasets.label_counts import count_labels

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
    assert counts.instances == [40, 16, 8, 8]
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


def test_base_set_is_another_collection_with_yellow_crosses(tmp_path):
    """The base checkpoint's training set: generated, not committed, other images, crosses yellow (demo: magenta)."""
    import numpy as np
    from PIL import Image

    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "assets" / "make_demo_data.py")
    make_demo_data = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_demo_data", make_demo_data)  # dataclasses look their module up there
    spec.loader.exec_module(make_demo_data)

    data = make_demo_data.generate(tmp_path / "base", spec=make_demo_data.BASE)
    assert "--base (seed 1)" in data.read_text()
    ds = load_dataset(data)
    counts = count_labels(ds, "train", require_labels=True)
    assert counts.instances == [100, 100, 100, 12]
    assert counts.n_images == 64
    assert not {v for k, v in _tree(tmp_path / "base").items() if k.endswith(".jpg")} & set(_tree(DEMO).values())

    def cross_colour(root: Path) -> np.ndarray:
        """Mean colour of the pixels at the centre of every cross (the bars cross there)."""
        pixels = []
        for label in sorted((root / "labels" / "train").glob("*.txt")):
            with Image.open(root / "images" / "train" / f"{label.stem}.jpg") as im:
                rgb = np.asarray(im.convert("RGB"), dtype=float)
            for row in label.read_text().splitlines():
                cls, cx, cy, *_ = row.split()
                if cls == "3":
                    x, y = int(float(cx) * 128), int(float(cy) * 128)
                    pixels.append(rgb[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0))
        return np.mean(pixels, axis=0)

    base_rgb, demo_rgb = cross_colour(tmp_path / "base"), cross_colour(DEMO)
    assert base_rgb[1] > 150 and base_rgb[2] < 100  # yellow: green high, blue low
    assert demo_rgb[1] < 100 and demo_rgb[2] > 150  # magenta: green low, blue high


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
def test_demo_base_knows_the_common_classes_but_not_the_demo_crosses(tmp_path):
    """The base detects circles, squares and triangles on the demo val split, and not the demo's magenta crosses."""
    import yaml

    from trainers.datasets.data_yaml import resolved_data_dict
    from trainers.offline import apply_offline_env

    apply_offline_env()
    from ultralytics import YOLO

    shutil.copytree(DEMO, tmp_path / "demo")  # ultralytics writes labels/*.cache next to the labels
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump(resolved_data_dict(load_dataset(tmp_path / "demo" / "data.yaml"))))
    metrics = YOLO(str(BASE)).val(
        data=str(data), imgsz=128, batch=16, device="cpu", plots=False, project=str(tmp_path), verbose=False
    )
    # measured when committed: F1 circle 0.994, square 0.994, triangle 0.986, cross 0.0 (mAP50 0.754)
    assert metrics.ap_class_index.tolist() == [0, 1, 2, 3]
    f1 = metrics.box.f1.tolist()
    assert min(f1[:3]) >= 0.8
    assert f1[3] <= 0.3


@pytest.mark.slow
def test_rare_class_lags_the_mean_in_the_first_3_epochs_at_the_new_run_defaults(tmp_path):
    """Acceptance (issue 11, item 7): at the New run page's defaults, the rarest class's F1 trails the mean F1 by at
    least 0.2 in each of epochs 1, 2 and 3.

    The recipe is the one the page builds with its defaults (demo data and base, 10 epochs, imgsz 128, batch 16,
    nbs 16, optimizer auto, per-class F1 on); the F1 values are the product's own epoch telemetry. The run stops after
    epoch 3 (the LR schedule stays the 10-epoch one, so epochs 1-3 are those of the full run).
    Measured when committed (seed 0): cross F1 0.00, 0.00, 0.00; mean F1 0.74, 0.73, 0.62.
    """
    from app.recipe_form import ON_BY_DEFAULT, FormValues, build_recipe
    from tests.conftest import run_trainer
    from trainers.telemetry.events import read_events

    draft = build_recipe(FormValues())
    assert draft.ok, draft.problems
    recipe = draft.recipe.to_dict()
    assert Path(recipe["model"]) == BASE and Path(recipe["data"]) == DEMO / "data.yaml"
    assert {k: recipe["train"][k] for k in ("epochs", "imgsz", "batch", "nbs")} == {
        "epochs": 10, "imgsz": 128, "batch": 16, "nbs": 16
    }  # fmt: skip
    assert set(recipe["customizations"]) == set(ON_BY_DEFAULT)

    def stop_after_3(trainer):
        if trainer.epoch + 1 >= 3:
            trainer.stop = True

    run_trainer(recipe, tmp_path, callbacks={"on_fit_epoch_end": stop_after_3})
    events, _ = read_events(tmp_path / "telemetry.jsonl")
    epochs = [e for e in events if e["event"] == "epoch" and not e["final_eval"]]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    counts = count_labels(load_dataset(DEMO / "data.yaml"), "train", require_labels=True)
    rarest = counts.names[counts.instances.index(min(counts.instances))]
    assert rarest == "cross"
    for e in epochs:
        rare = next(r["f1"] for r in e["per_class"] if r["name"] == rarest)
        print(f"epoch {e['epoch']}: {rarest} F1 {rare:.3f}, mean F1 {e['mean_f1']:.3f}")
        assert rare <= e["mean_f1"] - 0.2, f"epoch {e['epoch']}: {rarest} {rare:.3f} vs mean {e['mean_f1']:.3f}"
        # the lag is the rare class's own, not a fine-tune that failed as a whole
        assert min(r["f1"] for r in e["per_class"] if r["name"] != rarest) >= 0.5
