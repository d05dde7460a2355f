"""What differs between runs: exactly the differing recipe keys, defaults filled in, and the final metrics; the same
from ``workbench compare --json`` and ``workbench doctor --json``."""

from __future__ import annotations

import json

import pytest

from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch, recipe
from trainers.cli import commands as cli
from trainers.runs.compare import compare_runs, recipe_diff


def test_recipe_diff_lists_exactly_the_keys_that_differ():
    a = recipe({"lr0": 0.01, "imgsz": 128}, per_class_f1={}, grad_clip={"max_norm": 10.0})
    b = recipe({"imgsz": 128, "momentum": 0.9}, per_class_f1={}, grad_clip={"max_norm": 100.0})
    # lr0 written out at ultralytics' default and left out are the same setting
    assert recipe_diff({"a": a, "b": b}) == {
        "train.momentum": [0.937, 0.9],
        "customizations.grad_clip.max_norm": [10.0, 100.0],
    }
    assert recipe_diff({"a": a, "same": a}) == {}
    c = recipe({"lr0": 0.01, "imgsz": 128}, grad_clip={"max_norm": 10.0})  # per_class_f1 off
    assert recipe_diff({"a": a, "c": c}) == {"customizations.per_class_f1": [{}, None]}


@pytest.fixture
def two_runs(tmp_path):
    root = tmp_path / "runs"
    base = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3, "lr0": 0.01}}
    make_run(root, "a", {**base, "customizations": {"grad_clip": {"max_norm": 10.0}}})
    b = {**base, "train": {"epochs": 3, "lr0": 0.02}, "customizations": {"grad_clip": {"max_norm": 1e5}}}
    make_run(root, "b", b, [epoch(1), epoch(2, f1=[0.2] * 4)])
    return root


def test_compare_runs_gives_the_diff_and_the_final_metrics(two_runs):
    c = compare_runs([two_runs / "a", two_runs / "b"])
    assert c.runs == ["a", "b"]
    assert c.diff == {"train.lr0": [0.01, 0.02], "customizations.grad_clip.max_norm": [10.0, 1e5]}
    a, b = c.results
    assert (a.status, a.epochs_done, a.best_epoch) == ("completed", 3, 1)
    # the metrics of the weights each run kept: best.pt is epoch 1's (no final evaluation in these logs)
    assert a.map50 == pytest.approx(0.52) and b.mean_f1 == pytest.approx(0.53) and b.epochs_done == 2
    assert a.metrics_from == b.metrics_from == "best epoch 1"


def test_workbench_compare_json_and_text(two_runs, capsys):
    assert cli.main(["compare", "a", "b", "--runs-dir", str(two_runs), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["diff"] == {"train.lr0": [0.01, 0.02], "customizations.grad_clip.max_norm": [10.0, 100000.0]}
    assert [r["name"] for r in doc["results"]] == ["a", "b"] and doc["results"][0]["map50"] == pytest.approx(0.52)
    assert cli.main(["compare", "a", "b", "--runs-dir", str(two_runs)]) == 0
    out = capsys.readouterr().out
    assert "train.lr0" in out and "customizations.grad_clip.max_norm" in out and "MAP50" in out


def test_workbench_doctor_json_is_a_list_of_findings(two_runs, capsys):
    run = two_runs / "sat"
    make_run(two_runs, "sat", {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}},
             [epoch(i, max_norm=10.0, clipped=1.0) for i in range(1, 4)])  # fmt: skip
    assert cli.main(["doctor", str(run), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in findings] == ["training.clip_saturation"]
    assert set(findings[0]) >= {"id", "severity", "title", "evidence", "fix", "recipe_change", "epochs", "steps"}
    assert cli.main(["doctor", "sat", "--runs-dir", str(two_runs)]) == 0
    out = capsys.readouterr().out
    assert "WARNING  training.clip_saturation" in out and "recipe change: customizations.grad_clip.max_norm" in out
    assert cli.main(["doctor", "a", "--runs-dir", str(two_runs)]) == 0
    assert "0 findings" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["doctor", "nope"], ["compare", "a", "nope"]])
def test_a_missing_run_exits_2_with_one_line(two_runs, capsys, argv):
    assert cli.main([*argv, "--runs-dir", str(two_runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error:") and "nope" in err and len(err.splitlines()) == 1
