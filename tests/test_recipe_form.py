"""The New run form as data (app/recipe_form.py): form values -> recipe, problems under their fields."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from app import dataset_info, devices, recipe_form, recipe_prefill, settings_form
from app.recipe_form import FormValues, build_recipe
from trainers.errors import RecipeError
from trainers.recipe import Recipe
from trainers.runs import launcher
from trainers.runs.folder import create_run_dir

DEMO = dataset_info.inspect_dataset(recipe_form.DEMO_DATA)

NEVER_UNFREEZE_FIX = (
    "lower it, or tick 'Never unfreeze' (frozen_epochs: null in a recipe file) to keep the layers frozen"
)


# ---- recipe from form values ---------------------------------------------------------------------------------------
def test_recipe_problems_carry_field_message_and_fix_as_data():
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict(
            {
                "model": "yolo26n.yaml",
                "data": "d.yaml",
                "train": {"epochs": 2},
                "customizations": {"layer_lr": {"backbone_ratio": 0}, "freeze": {"frozen_epochs": 5}},
            }
        )
    (p,) = e.value.problems  # the cross-field rule runs only on a recipe whose blocks are valid
    assert p.field == "customizations.layer_lr.backbone_ratio"
    assert p.message.startswith("customizations.layer_lr.backbone_ratio: Input should be greater than 0")
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict(
            {
                "model": "yolo26n.yaml",
                "data": "d.yaml",
                "train": {"epochs": 2},
                "customizations": {"freeze": {"frozen_epochs": 5}},
            }
        )
    (p,) = e.value.problems
    assert p.field == "customizations.freeze.frozen_epochs"
    assert p.fix == NEVER_UNFREEZE_FIX  # the form's box by its label
    assert str(e.value) == f"recipe: {p.message}; {p.fix}"  # the CLI's one line is the same problems joined
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict({"model": "yolo26n.yaml", "data": "x.txt", "train": {"epochs": 0}})
    assert [p.field for p in e.value.problems] == ["data", "train.epochs"]


def test_default_form_is_the_demo_recipe():
    draft = build_recipe(FormValues(), DEMO)
    assert draft.ok, draft.problems
    assert draft.recipe.model == str(recipe_form.DEMO_MODEL) and draft.recipe.data == str(recipe_form.DEMO_DATA)
    assert draft.recipe.customizations.enabled() == ["per_class_f1", "grad_clip"]
    assert Recipe.from_yaml(draft.yaml) == draft.recipe


def form(enabled: tuple[str, ...] = ("per_class_f1",), **customizations: dict) -> dict:
    """FormValues keyword arguments: these customizations switched on, with these widget values."""
    return {"enabled": enabled, "customizations": customizations}


def test_every_customization_maps_to_its_recipe_block():
    on = ("per_class_f1", "class_weights", "best_metric", "freeze", "layer_lr", "sync_bn", "grad_clip")
    widgets = form(
        on,
        class_weights={"weights": "[1, 2.5 3, 4]"},
        best_metric={"metric": "val/giou_loss"},
        freeze={"layers": "0, 1, 2", "frozen_epochs__none": True},
        layer_lr={"backbone_ratio": 0.2},
        grad_clip={"max_norm": 0.1},
    )
    draft = build_recipe(FormValues(model_source="builtin", builtin="rtdetr-l.yaml", device="cpu", **widgets), DEMO)
    assert draft.ok, draft.problems
    c = draft.recipe.to_dict()["customizations"]
    assert c == {
        "per_class_f1": {},
        "class_weights": {
            "weights": [1.0, 2.5, 3.0, 4.0], "scheme": "inverse_frequency", "power": 0.5, "beta": 0.999, "cap": None,
            "normalize": "mean", "zero_count": "one",
        },
        "best_metric": {"metric": "val/giou_loss", "mode": None},
        "freeze": {"layers": [0, 1, 2], "frozen_epochs": None},
        "layer_lr": {"backbone_ratio": 0.2},
        "sync_bn": {},
        "grad_clip": {"max_norm": 0.1},
    }  # fmt: skip
    assert draft.recipe.train["device"] == "cpu"


def test_form_defaults_are_the_settings_models_defaults():
    """The form states no default of its own: a fresh toggle gives exactly the recipe's defaults for the run (frozen
    epochs follow the epochs: Settings.run_defaults)."""
    from trainers import customizations as table

    on = tuple(table.keys())
    for epochs in (10, 4):
        draft = build_recipe(FormValues(epochs=epochs, enabled=on), DEMO)
        assert draft.ok, draft.problems
        plain = Recipe.from_dict({"model": "m.yaml", "data": "d.yaml", "train": {"epochs": epochs},
                                  "customizations": dict.fromkeys(on)})  # fmt: skip
        for key, settings in draft.recipe.customizations.items():
            assert settings == plain.customizations[key], key


def test_state_round_trip_and_a_recipe_shown_in_the_form():
    recipe = Recipe.from_dict(
        {
            "model": "yolo26n.yaml", "data": str(recipe_form.DEMO_DATA), "train": {"epochs": 10},
            "customizations": {"class_weights": {"scheme": "power", "power": 1.5, "cap": 4.0},
                               "freeze": {"layers": 3, "frozen_epochs": None}},
        }
    )  # fmt: skip
    shown = recipe_prefill.form_for_recipe(recipe, epochs=10)
    again = FormValues.from_state(shown.to_state())
    draft = build_recipe(again, DEMO)
    assert draft.ok, draft.problems
    assert draft.recipe.customizations == recipe.customizations


def test_problems_are_keyed_by_field_and_reported_once():
    widgets = form(("freeze", "best_metric"), freeze={"frozen_epochs": 3}, best_metric={"metric": "val/giou_loss"})
    bad = FormValues(
        model_source="local", model_path="", data_source="path", data_path="", epochs=2, name="-bad", **widgets
    )
    draft = build_recipe(bad)
    assert not draft.ok and draft.recipe is None
    by_field = {}
    for p in draft.problems:
        by_field.setdefault(p.field, []).append(p)
    assert [p.message for p in by_field["model"]] == ["model: enter the path of a local .pt checkpoint"]
    assert "trust" not in by_field  # asked once there is a file to trust
    assert [p.message for p in by_field["data"]] == ["data: enter the path of a data.yaml"]
    (frozen,) = by_field["customizations.freeze.frozen_epochs"]
    assert frozen.message.startswith("customizations.freeze.frozen_epochs (3) must be less than train.epochs (2)")
    assert frozen.fix == NEVER_UNFREEZE_FIX
    assert by_field["name"][0].message.startswith("run name '-bad' is not allowed")
    assert draft.under("customizations.freeze") == [frozen]
    # the preview still shows what was typed
    assert yaml.safe_load(draft.yaml)["train"]["epochs"] == 2


def test_out_of_range_numbers_are_problems_not_silently_kept():
    for bad, field in ((FormValues(epochs=-5), "train.epochs"), (FormValues(imgsz=8), "train.imgsz")):
        draft = build_recipe(bad, DEMO)
        assert not draft.ok and [p.field for p in draft.problems] == [field]
    draft = build_recipe(FormValues(**form(("grad_clip",), grad_clip={"max_norm": -1.0})), DEMO)
    assert [p.field for p in draft.problems] == ["customizations.grad_clip.max_norm"]


def test_best_metric_family_check_for_yolo_models():
    draft = build_recipe(
        FormValues(model_source="builtin", **form(("best_metric",), best_metric={"metric": "val/giou_loss"})), DEMO
    )
    (p,) = draft.under("customizations.best_metric")
    assert "'val/giou_loss' is not a yolo loss" in p.message


@pytest.mark.parametrize(
    ("text", "expected"), [("backbone", "backbone"), (" 10 ", 10), ("0,1, 2", [0, 1, 2]), ("[3 4]", [3, 4])]
)
def test_parse_layers(text, expected):
    assert settings_form.parse_layers(text) == expected


def test_parse_layers_rejects_words():
    with pytest.raises(ValueError, match="'head' is not 'backbone'"):
        settings_form.parse_layers("head")


def test_recipe_stem_and_launch_write_the_recipe(tmp_path, monkeypatch):
    assert recipe_form.recipe_stem(FormValues()) == "demo-demo_base"  # <dataset>-<model> (tests/test_run_names.py)
    assert recipe_form.recipe_stem(FormValues(data_source="path", data_path="/d/coco8/data.yaml")) == "coco8-demo_base"
    assert recipe_form.recipe_stem(FormValues(name="mine")) == "mine"
    seen = []

    def fake_start(path, root, name=None):
        seen.append((Path(path).read_text(), name))
        return create_run_dir(root, name or "x")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    draft = build_recipe(FormValues(name="r1"), DEMO, tmp_path)
    run = recipe_form.launch(draft, tmp_path, "r1")
    assert run == tmp_path / "r1" and seen == [(draft.yaml, "r1")]
    assert (tmp_path / recipe_form.UI_RECIPES_DIR / "r1.yaml").read_text() == draft.yaml
    with pytest.raises(RecipeError):
        recipe_form.launch(build_recipe(FormValues(epochs=0), DEMO), tmp_path)


def test_inspect_dataset_is_cached_until_the_yaml_changes(tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(recipe_form.DEMO_DATA.parent, ds)
    info = dataset_info.inspect_dataset(ds / "data.yaml")
    assert info.names == ["circle", "square", "triangle", "cross"] and info.error is None
    assert dataset_info.inspect_dataset(ds / "data.yaml") is info
    text = (ds / "data.yaml").read_text().replace("3: cross", "3: plus")
    time.sleep(0.01)
    (ds / "data.yaml").write_text(text)
    assert dataset_info.inspect_dataset(ds / "data.yaml").names[-1] == "plus"
    missing = dataset_info.inspect_dataset(tmp_path / "none.yaml")
    assert "file not found" in missing.error and missing.names == []


def test_device_options():
    assert devices.device_options([]) == ["auto", "cpu"]
    assert devices.device_options(["0: A", "1: B"]) == ["auto", "cpu", "0", "1", "0,1"]
