"""per_class_f1 on real tiny training: F1 per class equals the validator's, mean F1 lands in results.csv."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import recipe_for, run_trainer
from tests.customizations.helpers import events, results


@pytest.mark.slow
def test_per_class_f1_matches_validator_and_lands_in_results_csv(demo, tmp_path):
    seen = {}

    def grab(trainer):
        box = trainer.validator.metrics.box
        seen[trainer.epoch] = (np.array(box.p), np.array(box.r), np.array(box.f1), list(box.ap_class_index))

    # fine-tune the demo base checkpoint so that P/R/F1 are non-zero and differ per class
    data, base = demo
    r = recipe_for(data, str(base), train={"epochs": 3, "imgsz": 128, "batch": 16, "nbs": 16}, per_class_f1={})
    trainer = run_trainer(r, tmp_path, {"on_fit_epoch_end": grab})
    names = list(trainer.data["names"].values())
    epoch_events = [e for e in events(tmp_path, "epoch") if not e["final_eval"]]
    rows = results(tmp_path)
    assert len(epoch_events) == 3 and "metrics/F1(B)" in rows[0]
    for ev, row in zip(epoch_events, rows, strict=True):
        p, rr, f1, idx = seen[ev["epoch"] - 1]
        assert [c["name"] for c in ev["per_class"]] == names  # every class, in id order
        for c in ev["per_class"]:
            if c["present"]:
                j = idx.index(c["id"])
                assert c["f1"] == pytest.approx(f1[j], abs=1e-9)
                assert c["f1"] == pytest.approx(2 * p[j] * rr[j] / (p[j] + rr[j]) if p[j] + rr[j] else 0.0, abs=1e-6)
            else:
                assert c["f1"] == 0.0
        present = [c["f1"] for c in ev["per_class"] if c["present"]]
        assert row["metrics/F1(B)"] == pytest.approx(np.mean(present), abs=1e-5)  # results.csv rounds to 6 digits
        assert ev["mean_f1"] == pytest.approx(np.mean(present), abs=1e-9)
    assert max(c["f1"] for c in epoch_events[0]["per_class"]) > 0.1  # real, non-zero F1 was checked
    final = [e for e in events(tmp_path, "epoch") if e["final_eval"]]
    assert len(final) == 1 and [c["name"] for c in final[0]["per_class"]] == names
    assert trainer.validation.per_class == final[0]["per_class"]  # one record: the latest validation's, as written
