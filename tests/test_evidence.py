"""Per-epoch evidence (issue 19 item 1): the sample, the stored tables, the reader and ``workbench export``.

The confusion counts are checked against an independent count: for each class, its column (true class) sums to
the number of its boxes in the val label files, read here without ultralytics.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, run_trainer
from trainers.telemetry import evidence as ev


def val_box_counts(data_yaml: Path, nc: int) -> np.ndarray:
    """Boxes per class in the val label files, counted from the text files themselves."""
    counts = np.zeros(nc, dtype=int)
    for f in sorted((data_yaml.parent / "labels" / "val").glob("*.txt")):
        for line in f.read_text().splitlines():
            if line.strip():
                counts[int(line.split()[0])] += 1
    return counts


# ---- the sample --------------------------------------------------------------------------------------------------
def test_the_sample_shows_every_class_rarest_first_and_is_deterministic():
    # image i's classes; class 3 appears once (image 7), class 2 twice, class 0 everywhere
    images = [[0], [0, 1], [0], [0, 2], [0, 1], [0], [0, 2], [0, 3], [], [0]]
    chosen = ev.choose_sample(images, 4)
    assert chosen[0] == 7  # the rarest class first
    assert {c for i in chosen for c in images[i]} == {0, 1, 2, 3}
    assert len(set(chosen)) == 4 and chosen == ev.choose_sample(images, 4)
    assert sorted(ev.choose_sample(images, 100)) == list(range(10))  # capped at the split
    assert ev.choose_sample(images, 0) == []
    filled = ev.choose_sample(images, 6)
    assert 8 not in filled  # the fill takes labelled images first


def test_the_sample_prefers_the_image_showing_most_classes_not_yet_shown():
    images = [[5], [5, 6, 7], [6], [7]]
    assert ev.choose_sample(images, 1) == [1]


# ---- the tables and the reader -------------------------------------------------------------------------------
def write_synthetic(run: Path, epochs=(1, 2), nc: int = 3) -> None:
    ev.write_sample(run, [{"file": "/x/a.jpg", "width": 100, "height": 80}], [f"c{i}" for i in range(nc)])
    for e in epochs:
        m = np.zeros((nc + 1, nc + 1), dtype=int)
        m[0, 0], m[1, 0], m[nc, 1], m[2, nc] = 6, 4, 3, e  # class 0: 6 right, 4 taken for 1; class 1 missed 3x
        pred, true = np.nonzero(m)
        ev.write_epoch(
            run, e,
            {
                "boxes": {"image": [0, 0, 0], "kind": [ev.GT, ev.PRED, ev.PRED], "cls": [0, 0, 1],
                          "conf": [1, 0.9, 0.3], "x1": [0, 1, 50], "y1": [0, 0, 50], "x2": [10, 10, 60],
                          "y2": [10, 10, 60]},
                "confusion": {"pred": pred, "true": true, "count": m[pred, true]},
                "pr": {"cls": [0, 0], "recall": [0, 1], "precision": [1, 0.5]},
            },
        )  # fmt: skip


def test_tables_round_trip_through_the_reader(tmp_path):
    write_synthetic(tmp_path)
    e = ev.Evidence(tmp_path)
    assert e.epochs == [1, 2] and e.names == ["c0", "c1", "c2"] and e.images[0]["width"] == 100
    second = e.epoch(2)
    assert second.confusion[2, 3] == 2 and second.confusion.shape == (4, 4)
    assert ev.class_box_counts(second.confusion).tolist() == [10, 3, 0]
    assert second.pr_curve(0)[1].tolist() == [1, 0.5] and len(second.pr_curve(1)[0]) == 0
    assert second.unlabelled.num_rows == 0  # a table left out is written empty
    assert ev.top_confusions(second.confusion, e.names)[0] == {"true": "c0", "pred": "c1", "count": 4, "share": 0.4}


def test_an_epoch_written_again_replaces_the_old_one_whole(tmp_path):
    write_synthetic(tmp_path, epochs=(1,))
    ev.write_epoch(tmp_path, 1, {"confusion": {"pred": [0], "true": [0], "count": [9]}})
    e = ev.Evidence(tmp_path).epoch(1)
    assert e.confusion.sum() == 9 and len(e.boxes["image"]) == 0
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == ["epoch-0001", "sample.json"]


def test_worst_first_counts_missed_and_false_boxes_at_the_threshold(tmp_path):
    write_synthetic(tmp_path, epochs=(1,))
    boxes = ev.Evidence(tmp_path).epoch(1).boxes
    assert ev.image_errors(boxes, 0, conf=0.25) == (0, 1)  # the GT box found; the class-1 box is false
    assert ev.image_errors(boxes, 0, conf=0.95) == (1, 0)  # above both predictions: the GT box is missed


def test_every_box_of_an_image_gets_its_verdict_by_one_matching_rule():
    """Image 0: GT a (class 0) and GT b (class 1); predictions: class 0 on a (correct), class 0 on a again (a is
    taken by the first, and it overlaps no box of another class: background), class 0 on b (wrong class), class 1 far
    away (background), and one below the threshold (no verdict). GT b is missed: only a wrong-class box sits on it."""
    a, b, far = (0, 0, 10, 10), (50, 50, 60, 60), (100, 100, 110, 110)
    rows = [  # kind, cls, conf, box; image 1 holds a copy of a predicted box that must not count for image 0
        (ev.GT, 0, 1.0, a), (ev.GT, 1, 1.0, b),
        (ev.PRED, 0, 0.9, a), (ev.PRED, 0, 0.8, a), (ev.PRED, 0, 0.7, b), (ev.PRED, 1, 0.6, far),
        (ev.PRED, 1, 0.1, b),
    ]  # fmt: skip
    boxes = {
        "image": np.array([0] * len(rows) + [1]),
        "kind": np.array([r[0] for r in rows] + [ev.PRED]),
        "cls": np.array([r[1] for r in rows] + [1]),
        "conf": np.array([r[2] for r in rows] + [0.9]),
        **{k: np.array([float(r[3][i]) for r in rows] + [50.0]) for i, k in enumerate(("x1", "y1", "x2", "y2"))},
    }
    assert ev.box_verdicts(boxes, 0, conf=0.25) == {
        0: ev.FOUND, 1: ev.MISSED, 2: ev.CORRECT, 3: ev.BACKGROUND, 4: ev.WRONG_CLASS, 5: ev.BACKGROUND,
    }  # fmt: skip
    assert ev.image_errors(boxes, 0, conf=0.25) == (1, 3)  # the tile's counts are the verdicts counted
    assert ev.box_verdicts(boxes, 0, conf=0.95) == {0: ev.MISSED, 1: ev.MISSED}  # no prediction that confident


def test_a_run_without_evidence_reads_as_empty(tmp_path):
    e = ev.Evidence(tmp_path)
    assert not e and e.epochs == [] and e.images == []


# ---- from real training --------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("plots", [False, True])
def test_every_epochs_confusion_columns_sum_to_the_val_boxes_per_class(tmp_path, plots, monkeypatch):
    """The recorder keeps a matrix of its own whether ultralytics keeps one (plots on) or not (plots off): every
    ground-truth box is counted once, in its true class' column. Writes are made slow: the evidence is written in a
    helper thread, and every validation's (the final one's too) must be on disk when training returns."""
    write = ev.write_epoch

    def slow_write(*args, **kwargs):
        time.sleep(0.5)
        return write(*args, **kwargs)

    monkeypatch.setattr(ev, "write_epoch", slow_write)
    recipe = {
        "model": str(DEMO_BASE), "data": str(DEMO_DATA),
        "train": {"epochs": 2, "imgsz": 64, "batch": 16, "workers": 0, "plots": plots, "seed": 0},
        "customizations": {"per_class_f1": {}},
    }  # fmt: skip
    trainer = run_trainer(recipe, tmp_path, run_dir=str(tmp_path))
    e = ev.Evidence(tmp_path)
    assert e.epochs == [1, 2, ev.FINAL]
    want = val_box_counts(DEMO_DATA, 4)
    for epoch in e.epochs:
        assert ev.class_box_counts(e.epoch(epoch).confusion).tolist() == want.tolist(), epoch
    # the sample: 16 val images, the rare class among them, boxes in the images' own pixels
    assert len(e.images) == 16 and e.names == ["circle", "square", "triangle", "cross"]
    boxes = e.epoch(2).boxes
    gt = boxes["kind"] == ev.GT
    assert sorted(set(boxes["cls"][gt].astype(int))) == [0, 1, 2, 3]
    assert gt.sum() == want.sum()  # the demo's val split is 16 images: all of them are the sample
    assert boxes["x2"].max() <= max(img["width"] for img in e.images) + 1
    assert all(b > 0 for b in trainer.evidence_bytes) and len(trainer.evidence_bytes) == 3


@pytest.mark.slow
def test_export_writes_predictions_and_confusion_tables_pandas_reads(tmp_path):
    import pandas as pd

    runs = tmp_path / "runs"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {DEMO_BASE}\ndata: {DEMO_DATA}\n"
        "train: {epochs: 3, imgsz: 64, batch: 16, workers: 0, plots: false}\ncustomizations: {per_class_f1: {}}\n"
    )
    cli = [sys.executable, "-m", "trainers.cli"]
    run = subprocess.run([*cli, "train", str(recipe), "--runs-dir", str(runs), "--name", "r"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "out"
    done = subprocess.run([*cli, "export", "r", "--runs-dir", str(runs), "--format", "parquet", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    confusion = pd.read_parquet(out / "confusion.parquet")
    predictions = pd.read_parquet(out / "predictions.parquet")
    want = dict(zip(["circle", "square", "triangle", "cross"], val_box_counts(DEMO_DATA, 4).tolist(), strict=True))
    epochs = sorted(confusion.loc[~confusion.final_eval, "epoch"].unique().astype(int).tolist())
    assert epochs == [1, 2, 3]
    for (epoch, final), cells in confusion.groupby(["epoch", "final_eval"], dropna=False):
        sums = cells[cells.true_name != "background"].groupby("true_name")["count"].sum().to_dict()
        assert sums == want, (epoch, final)
    assert set(predictions.kind) == {"gt", "pred"} and predictions.file.str.endswith(".jpg").all()
    assert (predictions[predictions.kind == "gt"].conf == 1).all()
