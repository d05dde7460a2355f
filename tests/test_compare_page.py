"""The Compare page (app/app_pages/compare.py) and its tables (app/compare_views.py): what differs between the
selected runs' recipes, exactly, and where each run ended up."""

from __future__ import annotations

import pytest

from app import compare_views
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.test_app_pages import charts_by_key, open_page
from trainers.runs.compare import compare_runs

BASE = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3, "lr0": 0.01, "imgsz": 64}}


@pytest.fixture
def runs(runs_root):
    """``a`` and ``b`` differ in exactly train.lr0 and grad_clip.max_norm; ``twin`` has a's recipe (lr0 left out:
    the same setting at ultralytics' default); ``plain`` has per_class_f1 on and grad_clip off."""
    clip = {"per_class_f1": {}, "grad_clip": {"max_norm": 10.0}}
    make_run(runs_root, "a", {**BASE, "customizations": clip})
    make_run(runs_root, "b", {**BASE, "train": {**BASE["train"], "lr0": 0.02},
                              "customizations": {**clip, "grad_clip": {"max_norm": 1e5}}},
             [epoch(1), epoch(2, f1=[0.2, 0.3, 0.4, 0.0])])  # fmt: skip
    make_run(runs_root, "twin", {**BASE, "train": {"epochs": 3, "imgsz": 64}, "customizations": clip})
    make_run(runs_root, "plain", {**BASE, "customizations": {"per_class_f1": {}}})
    return runs_root


def test_what_differs_lists_exactly_the_two_keys_that_differ_one_column_per_run(runs):
    at = open_page("compare", cmp_runs=["a", "b"])
    assert not at.exception
    (table,) = at.table
    diff = table.value
    assert list(diff.index) == ["train.lr0", "customizations.grad_clip.max_norm"]
    assert list(diff.columns) == ["a", "b"]
    assert diff.loc["train.lr0"].tolist() == ["0.01", "0.02"]
    assert diff.loc["customizations.grad_clip.max_norm"].tolist() == ["10.0", "100000.0"]
    assert "2 recipe settings differ" in " ".join(c.value for c in at.caption)
    assert [s.value for s in at.subheader][:2] == ["What differs", "Final metrics"]  # the diff comes first


def test_final_metrics_per_run_and_the_class_by_run_heatmap(runs):
    at = open_page("compare", cmp_runs=["a", "b"])
    results = at.dataframe[0].value
    assert list(results["run"]) == ["a", "b"] and list(results["epochs"]) == ["3/10", "2/10"]
    assert list(results["status"]) == ["completed", "completed"]
    assert results["mean F1"].tolist()[1] == pytest.approx(0.53)  # best.pt's (epoch 1), not the last epoch's 0.225
    assert list(results["metrics of"]) == ["best epoch 1", "best epoch 1"]
    spec = charts_by_key(at)["chart_compare_classes"]
    heat = spec["data"][0]
    assert heat["x"] == ["a", "b"]
    assert spec["layout"]["xaxis"]["side"] == "top"  # the run names stay in sight while the box scrolls
    assert heat["y"][0] == "cross"  # the class whose F1 differs most between the runs comes first (0.62 vs 0.0)


def test_nothing_differs_is_said_plainly(runs):
    at = open_page("compare", cmp_runs=["a", "twin"])
    assert not at.table
    assert "Nothing differs: these runs have the same recipe settings." in [i.value for i in at.info]
    at.multiselect(key="cmp_runs").set_value(["a"]).run()
    assert not at.table and any("Choose a second run" in i.value for i in at.info)


def test_diff_table_shows_off_and_on_like_workbench_compare(runs):
    comparison = compare_runs([runs / "a", runs / "plain"])
    table = compare_views.diff_table(comparison)
    assert table.loc["customizations.grad_clip.max_norm"].tolist() == ["10.0", "off"]
    assert comparison.diff == {"customizations.grad_clip.max_norm": [10.0, None]}  # the table adds nothing
    assert compare_views.cell("customizations.sync_bn", {}) == "on"
    assert compare_views.cell("train.device", None) == "null" and compare_views.cell("model", "x.pt") == "x.pt"


def test_files_version_changes_when_a_file_compare_runs_reads_changes(runs):
    before = compare_views.files_version([runs / "a"])
    assert compare_views.files_version([runs / "a"]) == before
    with open(runs / "a" / "telemetry.jsonl", "a") as f:
        f.write("\n")
    assert compare_views.files_version([runs / "a"]) != before
