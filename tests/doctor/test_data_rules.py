"""Data rules: on synthetic facts (positive case, near miss, fix) and on a real scan of a small dataset with a label
file without an image and a truncated image, cached in the run folder."""

from __future__ import annotations

import json

from tests.conftest import make_dataset
from tests.doctor.synthetic import check_fix, epoch, facts, ids, log, recipe, run_start
from trainers.doctor import data as d
from trainers.doctor import dataset_facts_for_run, diagnose, scan_dataset
from trainers.run_files import DATASET_CHECK_FILE


def only(findings, rule_id):
    return next((f for f in findings if f.id == rule_id), None)


def test_a_clean_dataset_has_no_findings():
    assert diagnose(log([epoch(1)]), facts()) == []


def test_orphan_labels():
    f = only(diagnose(log([epoch(1)]), facts(n_orphans=2, orphan_labels=["labels/train/a.txt", "labels/train/b.txt"],
                                             orphan_instances=[3, 0, 0, 1])), "data.orphan_labels")  # fmt: skip
    assert f.severity == "warning" and "2 label files (4 boxes)" in f.evidence and f.recipe_change is None


def test_corrupt_images_dropped_and_repaired():
    bad = [{"path": "images/train/x.jpg", "action": "dropped", "reason": "image file is truncated"}]
    f = only(diagnose(log([]), facts(corrupt=bad, n_dropped=1, n_repaired=2)), "data.corrupt_images")
    assert f.severity == "warning" and "x.jpg (image file is truncated)" in f.evidence and "2 JPEGs" in f.evidence
    f = only(diagnose(log([]), facts(n_repaired=1)), "data.corrupt_images")
    assert f.severity == "info"


def test_class_without_val_from_the_epochs_or_the_counts():
    absent = epoch(1, present=[True, True, True, False])
    f = only(diagnose(log([absent])), "data.class_without_val")
    assert f.numbers["classes"] == ["cross"]
    assert only(diagnose(log([]), facts(val=[4, 1, 1, 0])), "data.class_without_val").numbers["class_ids"] == [3]
    assert "data.class_without_val" not in ids(diagnose(log([epoch(1)]), facts()))


def test_class_without_train():
    f = only(diagnose(log([]), facts(train=[10, 5, 0, 1])), "data.class_without_train")
    assert f.numbers["classes"] == ["triangle"]


def test_weights_on_zero_count_classes():
    rec = recipe(class_weights={"zero_count": "max"})  # not the default ('one', which this rule never flags)
    start = run_start(rec, class_weights=[0.5, 0.8, 2.0, 2.0])
    f = only(diagnose(log([epoch(1)], start), facts(train=[100, 30, 10, 0])), "data.weights_on_zero_count")
    assert f.numbers["classes"] == ["cross"] and f.recipe_change == {"customizations.class_weights.zero_count": "one"}
    check_fix(f, rec)
    explicit = recipe(class_weights={"weights": [0.5, 0.8, 2.0, 2.0]})
    start = run_start(explicit, class_weights=[0.5, 0.8, 2.0, 2.0])
    f = only(diagnose(log([epoch(1)], start), facts(train=[100, 30, 10, 0])), "data.weights_on_zero_count")
    assert f.recipe_change == {"customizations.class_weights.weights": [0.5, 0.8, 2.0, 1.0]}
    check_fix(f, explicit)
    neutral = run_start(rec, class_weights=[0.5, 0.8, 2.0, 1.0])  # zero_count 'one': near miss
    assert "data.weights_on_zero_count" not in ids(diagnose(log([epoch(1)], neutral), facts(train=[100, 30, 10, 0])))


def _system(share: float) -> dict:
    return {"data_s": share, "compute_s": 1 - share, "data_share": share, "cpu_percent": 180.0}


def test_data_bound_suggests_cache_then_workers():
    epochs = [epoch(1, system=_system(0.9))] + [epoch(i, system=_system(0.6)) for i in range(2, 5)]
    f = only(diagnose(log(epochs)), "data.data_bound")
    assert f.epochs == (2, 3, 4) and f.recipe_change == {"train.cache": "ram"}
    check_fix(f, recipe())
    cached = recipe({"cache": "ram", "workers": 2})
    f = only(diagnose(log(epochs, run_start(cached))), "data.data_bound")
    assert f.recipe_change == {"train.workers": 4}
    check_fix(f, cached)


def test_data_bound_near_miss_and_the_first_epoch_is_left_out():
    slow_start = [epoch(1, system=_system(0.95))] + [epoch(i, system=_system(0.49)) for i in range(2, 5)]
    assert "data.data_bound" not in ids(diagnose(log(slow_start)))
    assert d.DATA_BOUND_SHARE == 0.5


def test_a_real_scan_finds_the_orphan_and_the_truncated_image(tmp_path):
    data = make_dataset(tmp_path / "ds", n_train=6, n_val=3)
    root = tmp_path / "ds"
    (root / "labels" / "train" / "orphan.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    image = root / "images" / "train" / "002.png"
    image.write_bytes(image.read_bytes()[:200])  # cut short: PIL's verify() fails, ultralytics drops it
    facts_ = scan_dataset(data)
    assert facts_.splits["train"].n_orphans == 1 and facts_.splits["train"].n_dropped == 1
    found = ids(diagnose(log([]), facts_))
    assert "data.orphan_labels" in found and "data.corrupt_images" in found

    run = tmp_path / "run"
    run.mkdir()
    (run / "data.yaml").write_text(data.read_text())
    first = dataset_facts_for_run(run)
    assert first.splits == facts_.splits and (run / DATASET_CHECK_FILE).is_file()
    cached = json.loads((run / DATASET_CHECK_FILE).read_text())
    assert cached["splits"]["train"]["n_dropped"] == 1
    image.unlink()  # the cache is the run's dataset as it was: a later change does not show ...
    assert dataset_facts_for_run(run) == first
    assert dataset_facts_for_run(run, refresh=True) != first  # ... until asked to scan again


def test_a_run_without_a_readable_dataset_has_no_dataset_facts(tmp_path):
    assert dataset_facts_for_run(tmp_path) is None
    (tmp_path / "data.yaml").write_text("path: /nowhere\ntrain: images/train\nval: images/val\nnames: [a]\n")
    assert dataset_facts_for_run(tmp_path) is None
