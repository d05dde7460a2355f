"""A recipe's dotted keys (trainers/recipe/dotted.py): get, set (a new validated recipe), leaves and diff, as sweeps,
the doctor's fixes and run comparison use them."""

from __future__ import annotations

import pytest

from trainers.errors import RecipeError
from trainers.recipe import Recipe, dotted

BASE = {
    "model": "yolo26n.yaml",
    "data": "/d/data.yaml",
    "train": {"epochs": 3, "lr0": 0.02},
    "customizations": {"per_class_f1": {}, "grad_clip": {"max_norm": 10.0}},
}


def test_get_reads_a_leaf_a_block_or_the_default():
    r = Recipe.from_dict(BASE)
    assert dotted.get(r, "train.lr0") == 0.02 and dotted.get(BASE, "model") == "yolo26n.yaml"
    assert dotted.get(r, "customizations.grad_clip") == {"max_norm": 10.0}
    assert dotted.get(r, "customizations.layer_lr.backbone_ratio") is None  # off
    assert dotted.get(r, "train.momentum", "default") == "default"
    assert dotted.get(BASE, "model.x") is None  # a leaf has no sub-keys
    dotted.get(BASE, "customizations.grad_clip")["max_norm"] = 1.0
    assert BASE["customizations"]["grad_clip"]["max_norm"] == 10.0  # a copy: the recipe is never changed through it


def test_leaves_and_flatten():
    assert dotted.flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
    leaves = dotted.leaves({**BASE, "train": {}})
    assert "train" not in leaves  # no argument set is no setting
    assert leaves["customizations.per_class_f1"] == {} and leaves["customizations.grad_clip.max_norm"] == 10.0
    assert dotted.leaves(Recipe.from_dict(BASE))["train.lr0"] == 0.02


def test_put_creates_the_path_removes_a_default_and_turns_a_block_off():
    assert dotted.put({}, "a.b.c", [1]) == {"a": {"b": {"c": [1]}}}
    data = {"train": {"lr0": 0.1}, "customizations": {"per_class_f1": {}, "grad_clip": None}}
    dotted.put(data, "train.lr0", None)  # back to ultralytics' default
    dotted.put(data, "customizations.per_class_f1", False)  # off
    dotted.put(data, "customizations.grad_clip.max_norm", 5.0)  # on with defaults ('null'), then set
    dotted.put(data, "customizations.layer_lr.backbone_ratio", 0.1)  # off: turned on
    assert data == {
        "train": {},
        "customizations": {"grad_clip": {"max_norm": 5.0}, "layer_lr": {"backbone_ratio": 0.1}},
    }
    value = {"max_norm": 1.0}
    dotted.put(data, "customizations.grad_clip", value)
    value["max_norm"] = 2.0
    assert data["customizations"]["grad_clip"] == {"max_norm": 1.0}  # a copy of the value: variants never share one


def test_changed_gives_a_new_validated_recipe_or_dict_and_leaves_the_input():
    r = Recipe.from_dict(BASE)
    new = dotted.changed(r, {"train.lr0": 0.005, "customizations.grad_clip": False}, source="fixed")
    assert isinstance(new, Recipe) and new.train["lr0"] == 0.005 and new.customizations.grad_clip is None
    assert r.train["lr0"] == 0.02 and r.customizations.grad_clip is not None
    assert dotted.diff({"old": r, "new": new}) == {
        "train.lr0": [0.02, 0.005],
        "customizations.grad_clip.max_norm": [10.0, None],
    }
    data = dotted.changed(BASE, {"model": "yolo11n.yaml", "train.lr0": 0.1, "customizations.grad_clip.max_norm": 1.0})
    assert isinstance(data, dict) and data["model"] == "yolo11n.yaml" and data["train"]["lr0"] == 0.1
    assert BASE["model"] == "yolo26n.yaml" and BASE["train"]["lr0"] == 0.02  # the input dict, nested ones included
    assert BASE["customizations"]["grad_clip"]["max_norm"] == 10.0
    with pytest.raises(RecipeError, match="customizations.grad_clip.max_norm") as e:
        dotted.changed(r, {"customizations.grad_clip.max_norm": -1.0}, source="fixed")
    assert "fixed" in str(e.value)


def test_diff_fills_in_defaults_and_normalises_recorded_recipes():
    written = {**BASE, "train": {"epochs": 3, "lr0": 0.01}}  # lr0 at ultralytics' default
    left_out = {**BASE, "train": {"epochs": 3}, "customizations": {"per_class_f1": None, "grad_clip": {"max_norm": 10}}}
    # lr0 written out and left out are the same; per_class_f1 null and {} are both on; max_norm 10 and 10.0 are equal
    assert dotted.diff({"a": written, "b": left_out}) == {}
    assert dotted.diff({"a": BASE, "b": written}) == {"train.lr0": [0.02, 0.01]}
    old = {**BASE, "customizations": {"gone": {}}}  # no longer validates: compared as written
    assert dotted.diff({"a": old, "b": BASE}) == {
        "customizations.gone": [{}, None],
        "customizations.per_class_f1": [None, {}],
        "customizations.grad_clip.max_norm": [None, 10.0],
    }
