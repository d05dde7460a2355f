"""Per-class views for 80-365 classes (trainers/telemetry/per_class.py): the class x epoch matrix grown with the run,
one row per class, the sorts, and the default classes with the reason each is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from trainers.telemetry import per_class
from trainers.telemetry.run_log import RunLog

N_CLASSES, N_EPOCHS = 80, 8


def f1_of(c: int, e: int) -> float:
    """Class c's F1 at epoch e: rising slowly; class 7 collapses after epoch 4, class 50 jumps from 0.1 to 0.9 then;
    class 3 is absent from val."""
    if c == 7 and e > 4:
        return 0.0
    if c == 50:
        return 0.1 if e <= 4 else 0.9
    return round(0.2 + 0.6 * c / N_CLASSES + 0.01 * e, 6)


def epoch(e: int, classes: int = N_CLASSES) -> dict:
    rows = [
        {"id": c, "name": f"c{c:02d}", "precision": 0.5, "recall": 0.5, "f1": f1_of(c, e), "ap50": 0.4, "ap": 0.2,
         "present": c != 3}
        for c in range(classes)
    ]  # fmt: skip
    return {"v": 1, "event": "epoch", "t": float(e), "epoch": e, "final_eval": False, "per_class": rows}


def log_of(epochs: int = N_EPOCHS, classes: int = N_CLASSES) -> RunLog:
    start = {"v": 1, "event": "run_start", "t": 0.0, "names": [f"c{c:02d}" for c in range(classes)], "epochs": 10}
    return RunLog.from_events([start, *(epoch(e, classes) for e in range(1, epochs + 1))])


def test_matrix_is_class_by_epoch_and_grows_one_column_per_epoch():
    log = log_of(3)
    names, epochs, values = per_class.matrix(log)
    assert names[:2] == ["c00", "c01"] and epochs == [1, 2, 3] and values.shape == (N_CLASSES, 3)
    assert values[10, 2] == f1_of(10, 3)
    log.extend([epoch(4)])  # a live refresh: the cached matrix gains a column
    grown = per_class.matrix(log)[2]
    assert np.array_equal(grown, per_class.matrix(log_of(4))[2]) and grown.shape == (N_CLASSES, 4)


def test_class_rows_hold_the_last_epoch_the_train_count_and_the_change_over_the_last_n_epochs():
    counts = [1000 - 10 * c for c in range(N_CLASSES)]
    rows = per_class.class_rows(log_of(), counts)
    assert len(rows) == N_CLASSES and [r.id for r in rows] == list(range(N_CLASSES))
    r = rows[10]
    assert (r.name, r.train_count, r.present, r.f1, r.ap50) == ("c10", 900, True, f1_of(10, 8), 0.4)
    assert r.change == pytest.approx(f1_of(10, 8) - f1_of(10, 8 - per_class.CHANGE_EPOCHS))
    assert rows[7].change == pytest.approx(0.0 - f1_of(7, 3)) and not rows[3].present
    assert per_class.class_rows(log_of(1), counts)[0].change is None  # one epoch: nothing to compare with
    assert set(rows[0].as_dict()) == {"id", "name", "train_count", "present", *per_class.KEYS, "change"}


def test_sorts_worst_rarest_largest_change_and_refuses_others():
    counts = [1000 - 10 * c for c in range(N_CLASSES)]
    rows = per_class.class_rows(log_of(), counts)
    by_f1 = [r.name for r in per_class.sort_rows(rows, "f1")]
    assert by_f1[0] == "c07" and by_f1[-1] == "c03"  # worst first; a class absent from val last
    assert [r.name for r in per_class.sort_rows(rows, "frequency")][:2] == ["c79", "c78"]  # rarest first
    assert [r.name for r in per_class.sort_rows(rows, "change")][:2] == ["c50", "c07"]  # the largest moves, up or down
    with pytest.raises(ValueError, match="sort must be one of f1, frequency, change, id"):
        per_class.sort_rows(rows, "name")


def test_default_classes_take_the_worst_the_rarest_and_the_most_changed_in_turn():
    counts = [1000 - 10 * c for c in range(N_CLASSES)]
    picked = per_class.default_classes(per_class.class_rows(log_of(), counts))
    assert len(picked) == per_class.SHOWN
    assert list(picked.items())[:3] == [("c07", "lowest F1"), ("c79", "rarest in train"), ("c50", "largest change")]
    assert "c03" not in picked  # absent from val: no F1 to be worst at
    assert set(picked.values()) == {"lowest F1", "rarest in train", "largest change"}
    without_counts = per_class.default_classes(per_class.class_rows(log_of()))
    assert "rarest in train" not in without_counts.values() and len(without_counts) == per_class.SHOWN


def test_a_few_classes_are_all_shown():
    rows = per_class.class_rows(log_of(classes=4))
    assert per_class.default_classes(rows) == dict.fromkeys(["c00", "c01", "c02", "c03"], "all classes")


def test_365_classes_stay_cheap_per_refresh():
    import time

    log = log_of(epochs=300, classes=365)
    per_class.class_rows(log)
    log.extend([epoch(301, 365)])
    t0 = time.perf_counter()
    rows = per_class.class_rows(log)
    per_class.default_classes(rows)
    assert len(rows) == 365 and time.perf_counter() - t0 < 0.5  # one new column, not 301 x 365 rows re-read
