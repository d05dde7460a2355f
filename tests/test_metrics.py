"""Per-class metrics read from a validator (trainers/metrics.py): every class, zeros kept, mean F1 as documented."""

from __future__ import annotations

import numpy as np
import pytest


class _StubBox:
    def __init__(self, p, r, idx):
        self.p, self.r = np.array(p), np.array(r)
        self.f1 = 2 * self.p * self.r / (self.p + self.r + 1e-16)
        self.ap50, self.ap, self.ap_class_index = self.p * 0.9, self.p * 0.5, np.array(idx)


def test_per_class_table_keeps_zero_and_absent_classes():
    from trainers.metrics import mean_f1, per_class_table

    validator = type(
        "V", (), {"metrics": type("M", (), {"box": _StubBox([0.9, 0.0, 0.6], [0.9, 0.0, 0.6], [0, 2, 3])})}
    )
    table = per_class_table(validator, ["a", "b", "c", "d"])
    assert [r["name"] for r in table] == ["a", "b", "c", "d"]
    assert [r["present"] for r in table] == [True, False, True, True]
    assert table[1]["f1"] == 0.0 and table[2]["f1"] == 0.0
    # zero-F1 class c counts; absent class b has no F1 at all: (0.9 + 0 + 0.6) / 3, not the guide's 0.75
    assert mean_f1(table) == pytest.approx(0.5)


# ---- the metric catalogue ------------------------------------------------------------------------------------------
def test_catalogue_rows_are_unique_and_found_by_name_and_by_key():
    from trainers.metrics import CATALOGUE, MAP50_95, find_metric, metric_label

    assert len({m.name for m in CATALOGUE}) == len({m.key for m in CATALOGUE}) == len(CATALOGUE)
    for m in CATALOGUE:
        assert find_metric(m.name) is m and find_metric(m.key) is m
    assert find_metric("metrics/mAP50-95(B)") is MAP50_95 and find_metric("mAP50-95") is MAP50_95
    assert metric_label("metrics/mAP50-95(B)") == "mAP50-95" and metric_label("mAP50") == "mAP50"
    assert metric_label("mean_f1") == "mean F1"
    assert find_metric("metrics/other(B)") is None and metric_label("metrics/other(B)") == "metrics/other(B)"
    assert metric_label(None) == ""


def test_catalogue_keys_are_the_ones_ultralytics_writes():
    """The four box metrics, verbatim as ultralytics 8.4 names them in the epoch metrics (a rename fails here)."""
    from ultralytics.utils.metrics import DetMetrics

    from trainers.metrics import DETECTION

    assert sorted(m.key for m in DETECTION) == sorted(DetMetrics().keys)


def test_each_per_class_column_holds_its_own_metric():
    """A row's per-class column is the same metric per class: AP50-95 is ``box.ap``, AP50 ``box.ap50``, ..."""
    from trainers.metrics import F1, MAP50, MAP50_95, MEAN_F1, PER_CLASS_COLUMNS, PRECISION, RECALL, per_class_table

    box = _StubBox([0.8, 0.6], [0.4, 0.2], [0, 1])
    box.ap50, box.ap = np.array([0.7, 0.5]), np.array([0.3, 0.1])  # distinct from p, r and f1
    table = per_class_table(type("V", (), {"metrics": type("M", (), {"box": box})}), ["a", "b"])
    arrays = {MAP50_95: box.ap, MAP50: box.ap50, PRECISION: box.p, RECALL: box.r, F1: box.f1, MEAN_F1: box.f1}
    for row, values in arrays.items():
        assert row.per_class in PER_CLASS_COLUMNS
        assert [r[row.per_class] for r in table] == pytest.approx(list(values)), row.name


def test_losses_are_lower_is_better_and_best_metric_follows_the_catalogue():
    from trainers.customizations.best_metric import direction
    from trainers.errors import RecipeError
    from trainers.metrics import CATALOGUE, SELECTABLE, VAL_LOSSES
    from trainers.recipe import Recipe

    losses = {k for keys in VAL_LOSSES.values() for k in keys}
    assert {m.name for m in CATALOGUE if m.direction == "min"} == losses
    assert SELECTABLE == ("fitness", "mAP50-95", "mAP50", "precision", "recall", "f1", "val/box_loss",
                          "val/cls_loss", "val/dfl_loss", "val/l1_loss", "val/giou_loss")  # fmt: skip
    assert direction("val/box_loss", None) == "min" and direction("mAP50", None) == "max"
    assert direction("val/box_loss", "max") == "max"

    def best(metric: str) -> Recipe:
        return Recipe.from_dict({"model": "yolo26n.yaml", "data": "d.yaml",
                                 "customizations": {"best_metric": {"metric": metric}}})  # fmt: skip

    assert best("recall").customizations.best_metric.direction == "max"
    with pytest.raises(RecipeError, match="unknown metric 'mean_f1'"):
        best("mean_f1")  # a telemetry field, not a choice
