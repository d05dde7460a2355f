"""Downloads (app/exports.py): run files, and class weights as a recipe block or JSON."""

from __future__ import annotations

import pytest
import yaml

from app import exports, recipe_form
from trainers.customizations.class_weights import ClassWeights
from trainers.datasets.class_weights import compute_weights
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.label_counts import count_labels
from trainers.recipe import Recipe


def test_artifacts_lists_existing_files(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"x")
    (tmp_path / "telemetry.jsonl").write_text("")
    assert [label for label, _, _ in exports.artifacts(tmp_path)] == ["last.pt", "telemetry.jsonl"]


# ---- class weights -------------------------------------------------------------------------------------------------
def test_class_weights_match_training_and_export_to_a_valid_recipe():
    counts = count_labels(load_dataset(recipe_form.DEMO_DATA), "train")
    weights = ClassWeights(scheme="power", power=1.0, cap=5.0).from_counts(counts.instances)
    params = {**ClassWeights().scheme_params(), "power": 1.0, "cap": 5.0}
    assert weights == compute_weights(counts.instances, "power", **params)
    block = yaml.safe_load(exports.weights_yaml(counts.names, weights, "demo"))
    recipe = Recipe.from_dict({"model": "yolo26n.yaml", "data": "d.yaml", **block})
    assert recipe.customizations.class_weights.weights == pytest.approx(weights, rel=1e-5)
    doc = yaml.safe_load(exports.weights_json(counts.names, weights, split="train"))
    assert doc["names"] == counts.names and doc["weights"] == weights and doc["split"] == "train"
