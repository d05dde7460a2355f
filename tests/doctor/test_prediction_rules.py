"""The prediction rules (trainers/doctor/predictions.py) on synthetic evidence folders: a class taken for another,
likely missing labels, background taken for a class; their thresholds, directions and edges (no evidence, no boxes,
80 classes), and that a diagnosis with nothing new reads no table again."""

from __future__ import annotations

import pytest

from tests.doctor.synthetic import epoch, log
from tests.doctor.synthetic_evidence import matrix, tables, write_evidence
from trainers.doctor import diagnose
from trainers.doctor.predictions import (
    BACKGROUND_MIN,
    BACKGROUND_SHARE,
    CONFUSED_MIN,
    CONFUSED_SHARE,
    LOOKBACK,
    MISSING_LISTED,
    MISSING_RECUR,
)
from trainers.run_files import DATA_FILE

CONFUSED, MISSING, BACKGROUND = "predictions.confused_classes", "predictions.missing_labels", "predictions.background"
BOXES = [40, 20, 8, 8]  # val boxes per class (circle, square, triangle, cross)
BOX = (10.0, 10.0, 50.0, 50.0)


def findings(run, n_epochs: int = 3):
    return {f.id: f for f in diagnose(log([epoch(i) for i in range(1, n_epochs + 1)]), run_dir=run)}


def confusion_run(tmp_path, per_epoch: dict, boxes=BOXES, names=None):
    """Evidence whose epochs take ``per_epoch[e]`` = {(true, pred): n} of the true class' boxes for the other."""
    return write_evidence(tmp_path, {e: tables(matrix(boxes, taken)) for e, taken in per_epoch.items()}, names)


# ---- a class taken for another -------------------------------------------------------------------------------------
def test_square_taken_for_circle_names_the_pair_its_share_and_the_epochs_it_held(tmp_path):
    assert CONFUSED_SHARE == 0.3 and CONFUSED_MIN == 5  # the 30 %, and the measured noise floor
    # square (1) predicted as circle (0): 2 of 20 in epoch 1, then 6 of 20 (30 %) in epochs 2, 3 and the final one
    run = confusion_run(tmp_path, {1: {(1, 0): 2}, 2: {(1, 0): 6}, 3: {(1, 0): 6}, "final": {(1, 0): 6}})
    f = findings(run)[CONFUSED]
    assert f.severity == "warning" and f.recipe_change is None  # advice: no recipe setting relabels data
    assert f.title == "'square' predicted as 'circle' for 30% of its boxes"
    assert f.numbers["at"] == "final"
    pair = f.numbers["pairs"][0]
    assert (pair["true"], pair["pred"], pair["count"], pair["boxes"]) == ("square", "circle", 6, 20)
    assert pair["share"] == pytest.approx(0.3) and pair["epochs"] == [2, 3] and not pair["both_ways"]
    assert f.epochs == (2, 3) and f.steps == (11, 20)  # marked where it started holding: epoch 2's steps
    assert "6 of 20 val 'square' boxes predicted as 'circle' (30%, held in epochs 2-3)" in f.evidence
    assert "final evaluation" in f.evidence and "labels" in f.fix and "merge" not in f.fix


@pytest.mark.parametrize(
    ("taken", "why"),
    [({(1, 0): 5}, "share 25 %, under 30 %"), ({(2, 0): 4}, "4 of 8 triangles (50 %): under 5 boxes"),
     ({(0, 1): 11}, "11 of 40 circles (27.5 %) taken for squares: under 30 %")],
)  # fmt: skip
def test_no_confusion_finding_just_under_a_threshold(tmp_path, taken, why):
    assert CONFUSED not in findings(confusion_run(tmp_path, {1: taken, 2: taken})), why


def test_the_direction_is_true_class_taken_for_predicted_class(tmp_path):
    # 12 of 40 circles (30 %) predicted as squares: names circle -> square, not square -> circle
    pair = findings(confusion_run(tmp_path, {1: {(0, 1): 12}}), 1)[CONFUSED].numbers["pairs"][0]
    assert (pair["true"], pair["pred"], pair["count"], pair["boxes"]) == ("circle", "square", 12, 40)


def test_confused_both_ways_suggests_merging_and_lists_every_pair_largest_share_first(tmp_path):
    taken = {(1, 0): 8, (0, 1): 14, (2, 3): 5}  # square->circle 40 %, circle->square 35 %, triangle->cross 62 %
    f = findings(confusion_run(tmp_path, {1: taken}), 1)[CONFUSED]
    pairs = [(p["true"], p["pred"]) for p in f.numbers["pairs"]]
    assert pairs == [("triangle", "cross"), ("square", "circle"), ("circle", "square")]
    assert f.title.endswith("(and 2 more pairs)") and "also the other way" in f.evidence
    assert [p["both_ways"] for p in f.numbers["pairs"]] == [False, True, True]


def test_a_pair_that_stopped_holding_before_the_newest_epoch_is_not_reported(tmp_path):
    run = confusion_run(tmp_path, {1: {(1, 0): 10}, 2: {(1, 0): 10}, 3: {}})
    assert CONFUSED not in findings(run)


def test_80_classes_name_the_confused_pair_among_them(tmp_path):
    names = [f"class_{i:02d}" for i in range(80)]
    boxes = [10] * 80
    taken = {(57, 12): 4, (3, 4): 2, **{(i, (i + 1) % 80): 1 for i in range(20, 40)}}
    run = confusion_run(tmp_path, {1: taken, 2: {**taken, (57, 12): 6}}, boxes, names)
    f = findings(run, 2)[CONFUSED]
    assert [(p["true"], p["pred"], p["epochs"]) for p in f.numbers["pairs"]] == [("class_57", "class_12", [2])]
    assert f.title == "'class_57' predicted as 'class_12' for 60% of its boxes"


def test_the_held_epochs_reach_back_at_most_lookback_epochs(tmp_path):
    n = LOOKBACK + 5
    run = confusion_run(tmp_path, {e: {(1, 0): 10} for e in range(1, n + 1)})
    f = findings(run, n)[CONFUSED]
    assert f.numbers["pairs"][0]["epochs"] == list(range(6, n + 1))


# ---- likely missing labels -----------------------------------------------------------------------------------------
def unlabelled_run(tmp_path, per_epoch: dict, names=None, taken=None):
    (tmp_path / DATA_FILE).write_text("path: /data\nval: images/val\nnames: [circle, square, triangle, cross]\n")
    return write_evidence(tmp_path, {e: tables(matrix(BOXES, taken), rows) for e, rows in per_epoch.items()}, names)


def shift(box, d):
    return tuple(v + d for v in box)


def test_missing_labels_ranks_recurring_boxes_first_then_confidence_and_links_the_images(tmp_path):
    seen = ("/d/images/val/seen.jpg", 0, 0.85, BOX)  # in every epoch, moving a little (IoU >= 0.5 with epoch 3)
    once = ("/d/images/val/once.jpg", 1, 0.99, BOX)  # more confident, only in the newest epoch
    twice = ("/d/images/val/twice.jpg", 2, 0.9, BOX)
    moved = ("/d/images/val/seen.jpg", 0, 0.81, shift(BOX, 4))  # IoU 0.68 with BOX
    run = unlabelled_run(tmp_path, {1: [moved], 2: [seen, twice], 3: [seen, twice, once]})
    f = findings(run)[MISSING]
    assert f.severity == "warning" and f.recipe_change is None
    assert [i["file"] for i in f.numbers["images"]] == ["/d/images/val/seen.jpg", "/d/images/val/twice.jpg",
                                                        "/d/images/val/once.jpg"]  # fmt: skip
    assert [i["epochs"] for i in f.numbers["images"]] == [3, 2, 1]
    assert f.title == "Likely missing labels in 3 val images"
    assert "seen.jpg (1 circle box, conf up to 0.85, in 3 of 3 epochs); twice.jpg" in f.evidence
    assert f.numbers["dataset_link"] == {"path": str(tmp_path / DATA_FILE), "split": "val",
                                         "image": [i["file"] for i in f.numbers["images"]]}  # fmt: skip


def test_another_class_image_or_place_in_an_earlier_epoch_is_not_the_same_box(tmp_path):
    now = ("/d/a.jpg", 0, 0.9, BOX)
    run = unlabelled_run(tmp_path, {1: [("/d/a.jpg", 1, 0.9, BOX), ("/d/b.jpg", 0, 0.9, BOX)],
                                    2: [("/d/a.jpg", 0, 0.9, shift(BOX, 30))], 3: [now]})  # fmt: skip
    f = findings(run)[MISSING]
    assert f.numbers["images"][0]["epochs"] == 1 and f.severity == "info"  # seen once: maybe a confident mistake


def test_a_box_seen_in_two_epochs_makes_it_a_warning(tmp_path):
    assert MISSING_RECUR == 2
    box = ("/d/a.jpg", 0, 0.9, BOX)
    assert findings(unlabelled_run(tmp_path, {1: [], 2: [box], 3: [box]}))[MISSING].severity == "warning"


def test_missing_labels_lists_the_first_images_and_counts_the_rest(tmp_path):
    rows = [(f"/d/img_{i:02d}.jpg", 0, 0.99 - i / 100, BOX) for i in range(MISSING_LISTED + 3)]
    f = findings(unlabelled_run(tmp_path, {1: rows}), 1)[MISSING]
    assert len(f.numbers["dataset_link"]["image"]) == MISSING_LISTED
    assert f.numbers["images"][0]["file"] == "/d/img_00.jpg" and "and 3 more images" in f.evidence


def test_no_candidates_no_missing_labels_finding(tmp_path):
    assert MISSING not in findings(unlabelled_run(tmp_path, {1: [("/d/a.jpg", 0, 0.9, BOX)], 2: []}), 2)


# ---- background taken for a class ---------------------------------------------------------------------------------
def background_rows(cls: int, n: int):
    return [(f"/d/bg_{cls}_{i}.jpg", cls, 0.9, BOX) for i in range(n)]


def test_background_taken_for_a_class_at_a_quarter_of_its_boxes(tmp_path):
    assert BACKGROUND_SHARE == 0.25 and BACKGROUND_MIN == 5
    # square has 20 val boxes: 5 confident predictions on nothing = 25 % fires; triangle (8 boxes) at 4 does not
    # (10 circles predicted as squares: the share is over square's true boxes, not over its predictions)
    rows = background_rows(1, 5) + background_rows(2, 4)
    run = unlabelled_run(tmp_path, {1: background_rows(1, 2), 2: rows, 3: rows}, taken={(0, 1): 10})
    f = findings(run)[BACKGROUND]
    assert f.severity == "warning" and f.recipe_change is None
    classes = [(c["cls"], c["count"], c["boxes"], c["epochs"]) for c in f.numbers["classes"]]
    assert classes == [("square", 5, 20, [2, 3])]
    assert f.title == "'square' predicted where nothing is labelled, 5 times" and f.epochs == (2, 3)
    assert "'square' 5 times (25% of its 20 val boxes, held in epochs 2-3)" in f.evidence


@pytest.mark.parametrize(("cls", "n"), [(0, 9), (1, 4)], ids=["circle-9-of-40-under-a-quarter", "square-4-under-5"])
def test_no_background_finding_just_under_a_threshold(tmp_path, cls, n):
    assert BACKGROUND not in findings(unlabelled_run(tmp_path, {1: background_rows(cls, n)}), 1)


def test_background_for_a_class_without_val_boxes(tmp_path):
    (tmp_path / DATA_FILE).write_text("names: [a, b]\n")
    run = write_evidence(tmp_path, {1: tables(matrix([10, 0]), background_rows(1, 5))}, ["a", "b"])
    f = findings(run, 1)[BACKGROUND]
    assert f.numbers["classes"][0]["share"] is None and "it has no val box" in f.evidence


# ---- edges ---------------------------------------------------------------------------------------------------------
def test_no_run_folder_no_evidence_or_empty_tables_give_no_prediction_finding(tmp_path):
    ours = {CONFUSED, MISSING, BACKGROUND}
    assert not ours & {f.id for f in diagnose(log([epoch(1)]))}  # no run folder: the rules are skipped
    assert not ours & set(findings(tmp_path, 1))  # a run folder without evidence/
    write_evidence(tmp_path, {1: {}})  # a validation that saw no box at all: every table empty
    assert not ours & set(findings(tmp_path, 1))
    write_evidence(tmp_path / "b", {1: tables(matrix([0, 0, 0, 0]))})
    assert not ours & set(findings(tmp_path / "b", 1))


def test_the_newest_validation_is_the_final_one_and_names_come_from_the_evidence(tmp_path):
    run = confusion_run(tmp_path, {1: {(1, 0): 10}, "final": {}}, names=["c", "s", "t", "x"])
    assert CONFUSED not in findings(run, 1)  # best.pt's evaluation no longer confuses them
    run = confusion_run(tmp_path / "b", {1: {}, "final": {(1, 0): 10}}, names=["c", "s", "t", "x"])
    f = findings(run, 1)[CONFUSED]
    assert f.title.startswith("'s' predicted as 'c'") and f.epochs == () and "final evaluation only" in f.evidence


def test_a_diagnosis_with_nothing_new_reads_no_table_and_a_new_epoch_reads_only_its_own(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from trainers.telemetry.evidence import write_epoch

    run = confusion_run(tmp_path, {1: {(1, 0): 6}, 2: {(1, 0): 6}})
    reads = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, *a, **k: reads.append(str(path)) or real(path, *a, **k))
    findings(run, 2)
    assert len(reads) == 4  # confusion and unlabelled of 2 epochs, once for all three rules
    reads.clear()
    findings(run, 2)
    assert reads == []
    write_epoch(run, 3, tables(matrix(BOXES, {(1, 0): 6})))
    assert CONFUSED in findings(run, 3) and sorted(reads) == sorted(
        str(run / "evidence" / "epoch-0003" / t) for t in ("confusion.parquet", "unlabelled.parquet")
    )


def test_the_held_epochs_are_the_unbroken_run_up_to_the_newest(tmp_path):
    run = confusion_run(tmp_path, {1: {(1, 0): 10}, 2: {}, 3: {(1, 0): 10}, 4: {(1, 0): 10}})
    f = findings(run, 4)[CONFUSED]
    assert f.numbers["pairs"][0]["epochs"] == [3, 4] and f.epochs == (3, 4)  # epoch 1 held, then a gap at 2


def test_workbench_runs_json_and_doctor_count_them(tmp_path, capsys):
    import json

    from tests.doctor.runs import make_run
    from trainers import cli

    run = make_run(tmp_path, "seen", {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}})
    write_evidence(run, {e: tables(matrix(BOXES, {(1, 0): 10})) for e in (1, 2, 3)})
    assert cli.main(["runs", "--json", "--runs-dir", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["findings"]["warning"] for r in listed["runs"]] == [1]  # the confused pair (healthy telemetry)
    assert cli.main(["doctor", "seen", "--runs-dir", str(tmp_path), "--no-dataset"]) == 0
    assert "WARNING  predictions.confused_classes  'square' predicted as 'circle'" in capsys.readouterr().out


def test_the_listing_is_kept_while_the_evidence_folder_is_unchanged_and_settled(tmp_path, monkeypatch):
    import os

    from trainers.doctor import predictions
    from trainers.telemetry.evidence import write_epoch

    run = confusion_run(tmp_path, {1: {(1, 0): 6}})
    listed = []
    real = predictions.Evidence
    monkeypatch.setattr(predictions, "Evidence", lambda d: listed.append(d) or real(d))
    findings(run, 1), findings(run, 1)
    assert len(listed) == 2  # written just now: it may still be changing, so it is listed each time
    old = os.stat(run / "evidence").st_mtime_ns - 10**10
    os.utime(run / "evidence", ns=(old, old))  # settled 10 s ago
    findings(run, 1), findings(run, 1)
    assert len(listed) == 3
    write_epoch(run, 2, tables(matrix(BOXES, {(1, 0): 6})))  # a new validation changes the folder's mtime
    assert findings(run, 2)[CONFUSED].numbers["pairs"][0]["epochs"] == [1, 2] and len(listed) == 4
