"""The issue's acceptance runs, trained for real (tiny) on the demo data from the demo base checkpoint:

- SGD lr0 1.0, momentum 0.99, no warmup, no clipping: a critical divergence finding, whose fix applies;
- stock clipping (threshold 10): a saturation finding with a suggested max_norm;
- max_norm 1e5: no clipping finding;
- the diverging recipe with doctor_stop on: stopped early, the finding as the stop reason.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA
from trainers.doctor import apply_fix, diagnose_run, read_run_log
from trainers.recipe import Recipe, load_recipe
from trainers.recipe.dotted import flatten
from trainers.runs.compare import recipe_diff

pytestmark = pytest.mark.slow

TRAIN = {"epochs": 3, "imgsz": 64, "batch": 16, "nbs": 16, "workers": 0, "plots": False, "seed": 0,
         "deterministic": True}  # fmt: skip
DIVERGING = {"optimizer": "SGD", "lr0": 1.0, "momentum": 0.99, "warmup_epochs": 0}


def train(tmp_path, name: str, train: dict | None = None, **customizations):
    from trainers.training.run import train_run

    recipe = {"model": str(DEMO_BASE), "data": str(DEMO_DATA), "train": {**TRAIN, **(train or {})},
              "customizations": {"per_class_f1": {}, **customizations}}  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert train_run(path, tmp_path / "runs", name=name) == 0
    return tmp_path / "runs" / name


def by_id(findings):
    return {f.id: f for f in findings}


def test_the_diverging_run_gets_a_critical_divergence_finding_with_a_fix_that_applies(tmp_path):
    run = train(tmp_path, "diverge", DIVERGING, grad_clip={"max_norm": 0})
    assert json.loads((run / "status.json").read_text())["status"] == "completed"  # what the doctor is for
    found = by_id(diagnose_run(run))
    f = found["training.divergence"]
    assert f.severity == "critical" and f.epochs[0] == 1 and f.steps is not None
    assert f.numbers["grad_norm_growth"] > 1e3 or f.numbers.get("cls_loss_growth", 0) > 1e2
    assert "epoch 1" in f.evidence and "lr0" in f.fix
    assert f.recipe_change["train.lr0"] == pytest.approx(0.1)
    old = load_recipe(run / "recipe.yaml")
    new = apply_fix(old, f)
    assert set(recipe_diff({"old": old, "new": new})) == set(flatten(f.recipe_change))
    assert all(x.evidence and x.fix for x in found.values()) and "doctor.rule_error" not in found


def test_stock_clipping_gets_a_saturation_finding_with_a_suggested_max_norm(tmp_path):
    run = train(tmp_path, "stock")
    found = by_id(diagnose_run(run))
    f = found["training.clip_saturation"]
    suggested = f.numbers["suggested_max_norm"]
    assert f.numbers["clipped_share"] >= 0.9 and 10.0 < suggested < 1e4
    assert "batch size" in f.fix and f.recipe_change == {"customizations.grad_clip.max_norm": suggested}
    assert "training.divergence" not in found and "doctor.rule_error" not in found
    new = apply_fix(load_recipe(run / "recipe.yaml"), f)
    assert new.customizations.grad_clip.max_norm == suggested


def test_a_threshold_of_1e5_gets_no_clipping_finding(tmp_path):
    run = train(tmp_path, "loose", grad_clip={"max_norm": 1e5})
    found = by_id(diagnose_run(run))
    assert not [i for i in found if i.startswith("training.clip")], found
    assert "training.divergence" not in found and "doctor.rule_error" not in found


def test_doctor_stop_ends_the_diverging_run_early_with_the_finding_as_stop_reason(tmp_path):
    run = train(tmp_path, "diverge-stop", DIVERGING, grad_clip={"max_norm": 0}, doctor_stop={})
    log = read_run_log(run)
    assert log.status == "stopped" and len(log.epochs) < TRAIN["epochs"]
    reason = log.run_end["stop_reason"]
    assert reason.startswith("doctor: ") and ("training.divergence" in reason or "training.nonfinite" in reason)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "stopped" and status["stop_reason"] == reason
    events = [json.loads(line) for line in (run / "telemetry.jsonl").read_text().splitlines()]
    stop = [e for e in events if e["event"] == "doctor_stop"]
    assert len(stop) == 1 and stop[0]["finding"]["severity"] == "critical" and stop[0]["stopping"] is True
    assert Recipe.from_dict(log.run_starts[0]["recipe"]).customizations.doctor_stop.severity == "critical"
