"""Recipe: YAML round trip, defaults, and invalid recipes rejected with one line naming the field."""

from __future__ import annotations

import itertools

import pytest

from trainers import customizations as table
from trainers.customizations.grad_clip import GradClip
from trainers.errors import RecipeError
from trainers.recipe import Recipe, load_recipe

CUSTOMIZATIONS = table.keys()

BASE = "model: yolo26n.yaml\ndata: data.yaml\n"


def test_round_trip_every_combination_of_blocks():
    full = {
        "per_class_f1": {},
        "class_weights": {"scheme": "effective_number", "beta": 0.99, "cap": 10.0},
        "best_metric": {"metric": "val/cls_loss"},
        "freeze": {"layers": [0, 1, 2], "frozen_epochs": 2},
        "layer_lr": {"backbone_ratio": 0.2},
        "sync_bn": {},
        "grad_clip": {"max_norm": 1.0},
        "doctor_stop": {"severity": "warning"},
    }
    for mask in itertools.product([0, 1], repeat=len(CUSTOMIZATIONS)):
        on = {k: full[k] for k, m in zip(CUSTOMIZATIONS, mask, strict=True) if m}
        r = Recipe.from_dict({"model": "yolo26n.yaml", "data": "d.yaml", "train": {"epochs": 5}, "customizations": on})
        again = Recipe.from_yaml(r.to_yaml())
        assert again == r
        assert again.customizations.enabled() == [k for k, m in zip(CUSTOMIZATIONS, mask, strict=True) if m]


def test_null_block_means_on_with_defaults():
    r = Recipe.from_yaml(BASE + "customizations:\n  grad_clip:\n  best_metric:\n")
    assert r.customizations.grad_clip.max_norm == GradClip().max_norm
    assert r.customizations.best_metric.metric == "fitness"
    assert r.customizations.best_metric.direction == "max"
    assert (
        Recipe.from_yaml(
            BASE + "customizations: {best_metric: {metric: val/box_loss}}"
        ).customizations.best_metric.direction
        == "min"
    )


def test_relative_paths_resolve_against_recipe_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.yaml").write_text("model: yolo26n.yaml\ndata: ../data/data.yaml\n")
    r = load_recipe(tmp_path / "sub" / "r.yaml")
    assert r.data == str((tmp_path / "data" / "data.yaml").resolve())
    assert r.model == "yolo26n.yaml"  # built-in name left for ultralytics


BAD = [
    ("customizations: {foo: {}}", "customizations.foo: unknown key; allowed: per_class_f1, class_weights"),
    ("train: {epochs: 0}", "train.epochs must be an integer >= 1"),
    ("train: {epoch: 3}", "train.epoch is not an ultralytics training argument; did you mean epochs"),
    ("train: {freeze: 3}", "train.freeze is set by the workbench: use the customizations.freeze block"),
    ("train: {project: x}", "train.project is set by the workbench"),
    ("train: {hsv_h: 3}", "train.hsv_h must be a number between 0.0 and 1.0"),
    ("train: {batch: big}", "train.batch"),
    ("train: {plots: 1}", "train.plots must be true or false"),
    ("customizations: {best_metric: {metric: map}}", "customizations.best_metric.metric: unknown metric 'map'"),
    ("customizations: {best_metric: {metric: mAP50, mode: up}}", "customizations.best_metric.mode"),
    (
        "customizations: {layer_lr: {backbone_ratio: -1}}",
        "customizations.layer_lr.backbone_ratio: Input should be greater than 0",
    ),
    (
        "customizations: {grad_clip: {max_norm: -1}}",
        "customizations.grad_clip.max_norm: Input should be greater than or equal to 0",
    ),
    ("customizations: {grad_clip: {max_nrm: 1}}", "customizations.grad_clip.max_nrm: unknown key; allowed: max_norm"),
    (
        "train: {cls_pw: 0.5}\ncustomizations: {class_weights: {}}",
        "train.cls_pw would weight the classes a second time",
    ),
    ("customizations: {class_weights: {scheme: foo}}", "customizations.class_weights.scheme: Input should be"),
    (
        "customizations: {class_weights: {weights: [1, -2]}}",
        "customizations.class_weights.weights: weights must be finite and >= 0",
    ),
    ("customizations: {class_weights: {weights: [0, 0, 0]}}", "customizations.class_weights.weights: at least one"),
    ("customizations: {class_weights: {beta: 1.5}}", "customizations.class_weights.beta: Input should be less than 1"),
    ("customizations: {freeze: {layers: 0}}", "customizations.freeze.layers"),
    ("customizations: {freeze: {layers: [1, 1]}}", "distinct layer indices"),
    (
        "train: {epochs: 3}\ncustomizations: {freeze: {frozen_epochs: 3}}",
        "customizations.freeze.frozen_epochs (3) must be less than train.epochs (3)",
    ),
    ("model2: x", "model2: unknown key"),
    ("train: {task: segment}", "train.task must be 'detect'"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD)
def test_invalid_recipe_rejected_with_field_named(extra, expected):
    with pytest.raises(RecipeError) as e:
        Recipe.from_yaml(BASE + extra)
    msg = str(e.value)
    assert expected in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: yolo26n.yaml\n", "data: required"),
        ("data: d.yaml\n", "model: required"),
        ("model: x.txt\ndata: d.yaml\n", "model: 'x.txt' must be a model YAML"),
        ("model: x.yaml\ndata: d.txt\n", "data: 'd.txt' must be a data.yaml"),
        ("model: [a\n", "not valid YAML (line 2"),
        ("- a\n- b\n", "must be a mapping"),
        (
            "model: rtdetr-l.yaml\ndata: d.yaml\ncustomizations: {best_metric: {metric: val/dfl_loss}}",
            "not a rtdetr loss",
        ),
    ],
)
def test_invalid_recipe_shape(text, expected):
    with pytest.raises(RecipeError) as e:
        Recipe.from_yaml(text)
    assert expected in str(e.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_recipe_module_is_light():
    import subprocess
    import sys

    code = "import trainers.recipe, sys; print(any(m in sys.modules for m in ('torch', 'ultralytics', 'streamlit')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_example_recipes_validate_and_one_has_all_seven():
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "assets" / "recipes"
    recipes = {p.name: load_recipe(p) for p in sorted(folder.glob("*.yaml"))}
    assert len(recipes) >= 3
    training = [k for k in CUSTOMIZATIONS if k != "doctor_stop"]  # the doctor's stop watches, it changes nothing
    assert recipes["demo-all-seven.yaml"].customizations.enabled() == training
    for r in recipes.values():
        assert r.data.endswith("assets/demo/data.yaml") and Path(r.data).is_absolute()
