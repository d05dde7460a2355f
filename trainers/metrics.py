"""The metric catalogue (every validation metric the workbench names, one row each), and the per-class detection
metrics read from an ultralytics validator, shared by customizations and telemetry.

A :class:`Metric` row ties together the recipe's name for a metric (``customizations.best_metric.metric``), where an
epoch holds it (ultralytics' ``metrics/mAP50-95(B)`` key, or the epoch event's own ``mean_f1``), its on-screen label,
whether higher or lower is better, and its per-class column. This is the only module of ``trainers/`` and ``app/``
that spells those keys (``tests/test_vocabulary.py`` checks it): best-metric, charts, compare, export, the sweep
table and the doctor read them from here.

Pure numpy on the validator's arrays: no torch import, so it is cheap and unit-testable with a stub validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

F1_KEY = "metrics/F1(B)"  # same shape as ultralytics' own 'metrics/precision(B)' names
PER_CLASS_COLUMNS = ("precision", "recall", "f1", "ap50", "ap")  # per_class_table's metric columns, in this order


@dataclass(frozen=True)
class Metric:
    """One row of the metric catalogue.

    Attributes:
        name: How a recipe names it (``customizations.best_metric.metric``; also ``best_metric.name`` in status.json
            and telemetry).
        key: Where an epoch holds it: ultralytics' ``epoch.metrics`` key, or a field of the epoch event itself
            (``fitness``, ``mean_f1``); :meth:`trainers.telemetry.run_log.RunLog.epoch_metric` reads either.
        label: How screens and tables name it.
        direction: ``max``: higher is better; ``min``: lower is better (losses).
        per_class: Its column in :func:`per_class_table`, when it also has one value per class.
        selectable: Whether ``best_metric`` can pick it.
    """

    name: str
    key: str
    label: str
    direction: Literal["max", "min"] = "max"
    per_class: str | None = None
    selectable: bool = True


FITNESS = Metric("fitness", "fitness", "fitness")  # what best.pt is chosen by (8.4's default: mAP50-95); epoch field
MAP50_95 = Metric("mAP50-95", "metrics/mAP50-95(B)", "mAP50-95", per_class="ap")
MAP50 = Metric("mAP50", "metrics/mAP50(B)", "mAP50", per_class="ap50")
PRECISION = Metric("precision", "metrics/precision(B)", "precision", per_class="precision")
RECALL = Metric("recall", "metrics/recall(B)", "recall", per_class="recall")
F1 = Metric("f1", F1_KEY, "F1", per_class="f1")  # in epoch.metrics only with per_class_f1 on
MEAN_F1 = Metric("mean_f1", "mean_f1", "mean F1", per_class="f1", selectable=False)  # the same value, in every epoch
VAL_LOSSES = {
    "yolo": ("val/box_loss", "val/cls_loss", "val/dfl_loss", "val/l1_loss"),  # YOLO26 has l1, YOLO11 dfl
    "rtdetr": ("val/giou_loss", "val/cls_loss", "val/l1_loss"),
}
CATALOGUE: tuple[Metric, ...] = (
    FITNESS, MAP50_95, MAP50, PRECISION, RECALL, F1, MEAN_F1,
    *(Metric(k, k, k, "min") for k in dict.fromkeys(k for losses in VAL_LOSSES.values() for k in losses)),
)  # fmt: skip
DETECTION: tuple[Metric, ...] = (MAP50, MAP50_95, PRECISION, RECALL)  # ultralytics' box metrics, in chart order
SELECTABLE: tuple[str, ...] = tuple(m.name for m in CATALOGUE if m.selectable)  # best_metric's choices, in order
_BY_NAME = {m.name: m for m in CATALOGUE}
_BY_KEY = {m.key: m for m in CATALOGUE}


def find_metric(name_or_key: str | None) -> Metric | None:
    """The catalogue row named ``name_or_key`` (a recipe name such as ``mAP50-95``, or a key such as
    ``metrics/mAP50-95(B)``), or None when the catalogue has no such metric."""
    key = str(name_or_key or "")
    return _BY_NAME.get(key) or _BY_KEY.get(key)


def metric_label(name_or_key: str | None) -> str:
    """How screens name a metric: its catalogue label (``metrics/mAP50-95(B)`` -> ``mAP50-95``), or the name as
    it is when the catalogue has no such metric."""
    row = find_metric(name_or_key)
    return row.label if row is not None else str(name_or_key or "")


def per_class_table(validator: Any, names: dict[int, str] | list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1, AP50 and AP50-95 for EVERY class, in class-id order.

    ultralytics reports per-class arrays only for classes present in the validation labels
    (``box.ap_class_index``); every other class gets zeros and ``present=False`` so charts keep one row per class.
    F1 is ultralytics' own ``box.f1``: 2PR/(P+R) at the confidence that maximises mean F1.
    """
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    box = getattr(getattr(validator, "metrics", None), "box", None)
    index = {int(c): j for j, c in enumerate(getattr(box, "ap_class_index", []) if box is not None else [])}
    cols = {}
    if index:
        cols = {
            "precision": np.asarray(box.p, dtype=float),
            "recall": np.asarray(box.r, dtype=float),
            "f1": np.asarray(box.f1, dtype=float),
            "ap50": np.asarray(box.ap50, dtype=float),
            "ap": np.asarray(box.ap, dtype=float),
        }
    rows = []
    for cid in sorted(names):
        j = index.get(cid)
        row = {"id": cid, "name": str(names[cid]), "present": j is not None}
        for key in PER_CLASS_COLUMNS:
            row[key] = float(cols[key][j]) if j is not None and len(cols[key]) > j else 0.0
        rows.append(row)
    return rows


def mean_f1(table: list[dict[str, Any]]) -> float:
    """Mean F1 over the classes present in validation, zero-F1 classes included.

    Dropping zero-F1 classes before averaging inflates the mean ([0.9, 0, 0.6] -> 0.75 instead of 0.5), which is
    the guide's recipe bug. Classes absent from validation have no defined F1 and are left out, exactly as
    ultralytics' own mean precision/recall do.
    """
    present = [r["f1"] for r in table if r["present"]]
    return float(np.mean(present)) if present else 0.0
