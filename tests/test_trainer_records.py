"""The records the composed trainer's mixins share (trainers/customizations/records.py, declared by the base mixin):
one per-class table per validation read by every customization and the telemetry, the run_start event doctor_stop
gets is the one written, and no mixin reads another's state with getattr or by tuple position."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.conftest import REPO, recipe_for, run_trainer
from trainers.customizations.best_metric import BestMetricMixin
from trainers.customizations.per_class_f1 import PerClassF1Mixin
from trainers.customizations.records import ChosenMetric, Validation
from trainers.metrics import F1_KEY
from trainers.recipe import Recipe
from trainers.training.base import WorkbenchBase

NAMES = {0: "disc", 1: "block", 2: "ring"}


class _Box:
    """ultralytics' box metrics for classes 0 and 2 (class 1 absent from validation)."""

    ap_class_index = [0, 2]
    p, r, f1, ap50, ap = [0.9, 0.5], [0.6, 0.5], [0.72, 0.5], [0.8, 0.4], [0.6, 0.3]


class _Validator:
    class metrics:  # noqa: N801 (the validator's attribute)
        box = _Box()


class _StockValidate:
    """Stands in for the ultralytics trainer around ``validate``."""

    def __init__(self, customizations: dict):
        self.recipe = Recipe.from_dict({"model": "yolo26n.yaml", "data": "d.yaml", "customizations": customizations})
        self.validator, self.data, self.best_fitness = _Validator(), {"names": NAMES}, None

    def validate(self):
        return {"metrics/mAP50-95(B)": 0.4}, 0.4


@pytest.fixture
def table_calls(monkeypatch):
    """Counts the per-class tables computed, by the base mixin or by anything that imports the function later."""
    import trainers.metrics
    import trainers.training.base as base

    calls = []
    real = trainers.metrics.per_class_table

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(base, "per_class_table", counted)
    monkeypatch.setattr(trainers.metrics, "per_class_table", counted)
    return calls


@pytest.mark.parametrize("mixins", [(BestMetricMixin, PerClassF1Mixin), (BestMetricMixin,)], ids=["with", "without"])
def test_one_table_per_validation_read_by_per_class_f1_and_best_metric(table_calls, mixins):
    blocks = {"best_metric": {"metric": "f1"}, **({"per_class_f1": {}} if PerClassF1Mixin in mixins else {})}
    trainer = type("T", (*mixins, WorkbenchBase, _StockValidate), {})(blocks)
    assert trainer.validation == Validation()  # the base's default, before any validation
    metrics, score = trainer.validate()
    assert len(table_calls) == 1
    table = trainer.validation.per_class
    assert [r["name"] for r in table] == ["disc", "block", "ring"] and [r["present"] for r in table] == [1, 0, 1]
    assert score == pytest.approx((0.72 + 0.5) / 2)  # mean F1 over the classes present, from that one table
    assert trainer.validation.chosen == ChosenMetric("f1", score)
    assert (F1_KEY in metrics) is (PerClassF1Mixin in mixins)
    trainer.validate()
    assert len(table_calls) == 2  # once per validation


@pytest.mark.slow
def test_a_real_run_computes_one_table_per_validation_and_hands_doctor_stop_the_written_run_start(
    tiny_data, tmp_path, table_calls
):
    r = recipe_for(tiny_data, train={"epochs": 2}, per_class_f1={}, best_metric={"metric": "f1"}, doctor_stop={})
    trainer = run_trainer(r, tmp_path)
    events = [json.loads(line) for line in (tmp_path / "telemetry.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == 3 and len(table_calls) == 3  # two epochs and the final evaluation: one table each
    assert trainer.validation.per_class == epochs[-1]["per_class"]  # the latest, as the telemetry wrote it
    assert [e["best_metric"] for e in epochs[:2]] == [{"name": "f1", "value": e["mean_f1"]} for e in epochs[:2]]
    start = [e for e in events if e["event"] == "run_start"]
    assert trainer.doctor.log.run_starts == start  # the event as written, not one rebuilt by hand


# ---- no mixin reads another's state with getattr, by position, or computes the table again -------------------------
MIXIN_FILES = sorted((REPO / "trainers" / "customizations").glob("*.py")) + [
    REPO / "trainers" / "training" / "base.py",
    REPO / "trainers" / "training" / "telemetry_mixin.py",
]
ULTRALYTICS_OPTIONAL = {"platform"}  # set by ultralytics only with a platform session


def _self_getattrs(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}:
            target, name = node.args[0], node.args[1] if len(node.args) > 1 else None
            if isinstance(target, ast.Name) and target.id == "self" and isinstance(name, ast.Constant):
                if name.value not in ULTRALYTICS_OPTIONAL:
                    found.append(f"{path.name}:{node.lineno} {node.func.id}(self, {name.value!r})")
        if isinstance(node, ast.Attribute) and node.attr == "__dict__" and getattr(node.value, "id", "") == "self":
            found.append(f"{path.name}:{node.lineno} self.__dict__")
    return found


def test_mixins_read_shared_state_from_declared_records_not_getattr():
    assert [hit for path in MIXIN_FILES for hit in _self_getattrs(path)] == []


def _uses_the_validator_table(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "trainers.metrics":
            if any(alias.name == "per_class_table" for alias in node.names):
                return True
        if isinstance(node, ast.Attribute) and node.attr == "per_class_table" and getattr(node.value, "id", "") in {
            "metrics", "trainers"}:  # fmt: skip
            return True
    return False


def test_the_per_class_table_is_computed_by_the_base_mixin_only():
    callers = {
        str(path.relative_to(REPO)) for path in (REPO / "trainers").rglob("*.py") if _uses_the_validator_table(path)
    }
    assert callers == {"trainers/training/base.py"}
