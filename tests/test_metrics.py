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
