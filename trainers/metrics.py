"""Per-class detection metrics read from an ultralytics validator, shared by customizations and telemetry.

Pure numpy on the validator's arrays: no torch import, so it is cheap and unit-testable with a stub validator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F1_KEY = "metrics/F1(B)"  # same shape as ultralytics' own 'metrics/precision(B)' names


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
        for key in ("precision", "recall", "f1", "ap50", "ap"):
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
