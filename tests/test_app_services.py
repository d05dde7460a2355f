"""UI services without Streamlit (app/services.py): recipe building, event cache, ETA, console tail, exports."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from app import services
from app.services import FormValues, RunEvents, build_recipe, split_recipe_error
from tests.fixtures.make_telemetry import FIXTURES
from trainers import launcher
from trainers.data_yaml import load_dataset
from trainers.errors import RecipeError
from trainers.label_counts import count_labels
from trainers.recipe import Recipe
from trainers.runs import create_run_dir
from trainers.weights import compute_weights

DEMO = services.inspect_dataset(services.DEMO_DATA)


# ---- recipe from form values ---------------------------------------------------------------------------------------
def test_split_recipe_error_names_each_field():
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict(
            {
                "model": "yolo26n.yaml",
                "data": "d.yaml",
                "train": {"epochs": 2},
                "customizations": {"layer_lr": {"backbone_ratio": 0}, "freeze": {"frozen_epochs": 5}},
            }
        )
    parts = split_recipe_error(str(e.value))
    assert [p for p, _ in parts] == ["customizations.layer_lr.backbone_ratio"]
    assert parts[0][1].startswith("customizations.layer_lr.backbone_ratio: Input should be greater than 0")
    msg = (
        "recipe: customizations.freeze.frozen_epochs (5) must be less than train.epochs (2) to ever unfreeze; use null"
    )
    assert split_recipe_error(msg) == [("customizations.freeze.frozen_epochs", msg.removeprefix("recipe: "))]
    two = "recipe: train.epochs must be an integer >= 1, got 0; data: 'x.txt' must be a data.yaml file"
    assert [p for p, _ in split_recipe_error(two)] == ["train.epochs", "data"]


def test_default_form_is_the_demo_recipe():
    draft = build_recipe(FormValues(), DEMO)
    assert draft.ok, draft.errors
    assert draft.recipe.model == str(services.DEMO_MODEL) and draft.recipe.data == str(services.DEMO_DATA)
    assert draft.recipe.customizations.enabled() == ["per_class_f1"]
    assert Recipe.from_yaml(draft.yaml) == draft.recipe


def test_every_customization_maps_to_its_recipe_block():
    form = FormValues(
        model_source="builtin", builtin="rtdetr-l.yaml", class_weights_on=True, cw_mode="explicit",
        cw_weights="[1, 2.5 3, 4]", best_metric_on=True, bm_metric="val/giou_loss", bm_mode="auto", freeze_on=True,
        fz_layers="0, 1, 2", fz_forever=True, layer_lr_on=True, llr_ratio=0.2, sync_bn_on=True, grad_clip_on=True,
        gc_max_norm=0.1, device="cpu",
    )  # fmt: skip
    draft = build_recipe(form, DEMO)
    assert draft.ok, draft.errors
    c = draft.recipe.to_dict()["customizations"]
    assert c == {
        "per_class_f1": {},
        "class_weights": {
            "weights": [1.0, 2.5, 3.0, 4.0], "scheme": "inverse_frequency", "power": 0.5, "beta": 0.999, "cap": None,
            "normalize": "mean", "zero_count": "max",
        },
        "best_metric": {"metric": "val/giou_loss", "mode": None},
        "freeze": {"layers": [0, 1, 2], "frozen_epochs": None},
        "layer_lr": {"backbone_ratio": 0.2},
        "sync_bn": {},
        "grad_clip": {"max_norm": 0.1},
    }  # fmt: skip
    assert draft.recipe.train["device"] == "cpu"


def test_errors_are_keyed_by_field_and_reported_once():
    form = FormValues(
        model_source="local", model_path="", data_source="path", data_path="", epochs=2, freeze_on=True, fz_epochs=3,
        best_metric_on=True, bm_metric="val/giou_loss", builtin="yolo26n.yaml", name="-bad",
    )  # fmt: skip
    draft = build_recipe(form)
    assert not draft.ok and draft.recipe is None
    assert draft.errors["model"] == ["model: enter the path of a local .pt checkpoint"]
    assert "trust" not in draft.errors  # asked once there is a file to trust
    assert draft.errors["data"] == ["data: enter the path of a data.yaml"]
    assert draft.errors["customizations.freeze.frozen_epochs"][0].startswith(
        "customizations.freeze.frozen_epochs (3) must be less than train.epochs (2)"
    )
    assert list(draft.errors["name"])[0].startswith("run name '-bad' is not allowed")
    assert draft.messages("customizations") == draft.errors["customizations.freeze.frozen_epochs"]
    # the preview still shows what was typed
    assert yaml.safe_load(draft.yaml)["train"]["epochs"] == 2


def test_best_metric_family_check_for_yolo_models():
    draft = build_recipe(FormValues(model_source="builtin", best_metric_on=True, bm_metric="val/giou_loss"), DEMO)
    (msg,) = draft.messages("customizations.best_metric")
    assert "'val/giou_loss' is not a yolo loss" in msg


@pytest.mark.parametrize(
    ("text", "expected"), [("backbone", "backbone"), (" 10 ", 10), ("0,1, 2", [0, 1, 2]), ("[3 4]", [3, 4])]
)
def test_parse_layers(text, expected):
    assert services.parse_layers(text) == expected


def test_parse_layers_rejects_words():
    with pytest.raises(ValueError, match="'head' is not 'backbone'"):
        services.parse_layers("head")


def test_recipe_stem_and_launch_write_the_recipe(tmp_path, monkeypatch):
    assert services.recipe_stem(FormValues()) == "demo"
    assert services.recipe_stem(FormValues(data_source="path", data_path="/d/coco8/data.yaml")) == "coco8"
    assert services.recipe_stem(FormValues(name="mine")) == "mine"
    seen = []

    def fake_start(path, root, name=None):
        seen.append((Path(path).read_text(), name))
        return create_run_dir(root, name or "x")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    draft = build_recipe(FormValues(name="r1"), DEMO, tmp_path)
    run = services.launch(draft, tmp_path, "r1")
    assert run == tmp_path / "r1" and seen == [(draft.yaml, "r1")]
    assert (tmp_path / services.UI_RECIPES_DIR / "r1.yaml").read_text() == draft.yaml
    with pytest.raises(RecipeError):
        services.launch(build_recipe(FormValues(epochs=0), DEMO), tmp_path)


def test_inspect_dataset_is_cached_until_the_yaml_changes(tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(services.DEMO_DATA.parent, ds)
    info = services.inspect_dataset(ds / "data.yaml")
    assert info.names == ["circle", "square", "triangle", "cross"] and info.error is None
    assert services.inspect_dataset(ds / "data.yaml") is info
    text = (ds / "data.yaml").read_text().replace("3: cross", "3: plus")
    time.sleep(0.01)
    (ds / "data.yaml").write_text(text)
    assert services.inspect_dataset(ds / "data.yaml").names[-1] == "plus"
    missing = services.inspect_dataset(tmp_path / "none.yaml")
    assert "file not found" in missing.error and missing.names == []


def test_device_options():
    assert services.device_options([]) == ["auto", "cpu"]
    assert services.device_options(["0: A", "1: B"]) == ["auto", "cpu", "0", "1", "0,1"]


# ---- event cache ---------------------------------------------------------------------------------------------------
def test_run_events_reads_only_new_complete_lines(tmp_path):
    lines = (FIXTURES / "complete.jsonl").read_bytes().splitlines(keepends=True)
    log_file = tmp_path / "telemetry.jsonl"
    cache = RunEvents(tmp_path)
    assert cache.poll().n_events == 0  # no file yet
    log_file.write_bytes(b"".join(lines[:10]) + lines[10][:7])
    first = cache.poll()
    assert first.n_events == 10 and cache.offset == sum(map(len, lines[:10]))
    assert cache.poll() is first  # nothing new: the same snapshot, nothing re-read
    with open(log_file, "ab") as f:
        f.write(lines[10][7:] + b"".join(lines[11:]))
    full = cache.poll()
    assert full.n_events == len(lines) and full.status == "completed"
    assert first.n_events == 10  # snapshots are independent of later reads
    log_file.write_bytes(b"".join(lines[:3]))  # replaced by a shorter file: start over
    assert cache.poll().n_events == 3


def test_run_events_is_shared_per_run(tmp_path):
    assert services.run_events(tmp_path) is services.run_events(tmp_path / ".")
    services.forget_run(tmp_path)
    assert services.run_events(tmp_path) is not None


# ---- summaries -----------------------------------------------------------------------------------------------------
def test_eta_from_epoch_times():
    from app.charts import RunLog

    log = RunLog.from_events(
        [
            {"event": "run_start", "epochs": 10, "start_epoch": 1},
            {"event": "epoch", "epoch": 1, "epoch_time": 10.0, "t": 1000.0},
            {"event": "epoch", "epoch": 2, "epoch_time": 20.0, "t": 1020.0},
        ]
    )
    assert services.eta_seconds(log, 10, now=1020.0) == pytest.approx(8 * 15.0)
    assert services.eta_seconds(log, 10, now=1025.0) == pytest.approx(8 * 15.0 - 5)
    assert services.eta_seconds(log, None, now=1020.0) == pytest.approx(120.0)  # epochs from run_start
    assert services.eta_seconds(log, 2) == 0.0
    assert services.eta_seconds(RunLog(), 10) is None
    assert [services.format_duration(s) for s in (None, 42, 125, 3725)] == ["-", "42s", "2m 05s", "1h 02m"]
    assert services.format_metric({"name": "metrics/mAP50-95(B)", "value": 0.41}) == "mAP50-95 0.410"
    assert services.format_metric(None) == "-"


def test_console_tail_collapses_progress_redraws_and_colours(tmp_path):
    text = "a\n" * 100 + "\x1b[Kepoch 1: 10%\repoch 1: 50%\repoch 1: 100%\n\x1b[32mdone\x1b[0m\n"
    (tmp_path / "console.log").write_text(text)
    assert services.console_tail(tmp_path, lines=3) == "a\nepoch 1: 100%\ndone"
    assert services.console_tail(tmp_path / "missing") == ""
    (tmp_path / "console.log").write_text("x" * 100 + "\nlast\n")
    assert services.console_tail(tmp_path, max_bytes=20) == "last"  # the cut first line is dropped


def test_artifacts_lists_existing_files(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"x")
    (tmp_path / "telemetry.jsonl").write_text("")
    assert [label for label, _, _ in services.artifacts(tmp_path)] == ["last.pt", "telemetry.jsonl"]


# ---- class weights -------------------------------------------------------------------------------------------------
def test_class_weights_match_training_and_export_to_a_valid_recipe():
    counts = count_labels(load_dataset(services.DEMO_DATA), "train")
    weights = services.class_weights(counts, "power", power=1.0, cap=5.0)
    assert weights == compute_weights(counts.instances, "power", power=1.0, cap=5.0)
    block = yaml.safe_load(services.weights_yaml(counts.names, weights, "demo"))
    recipe = Recipe.from_dict({"model": "yolo26n.yaml", "data": "d.yaml", **block})
    assert recipe.customizations.class_weights.weights == pytest.approx(weights, rel=1e-5)
    doc = yaml.safe_load(services.weights_json(counts.names, weights, split="train"))
    assert doc["names"] == counts.names and doc["weights"] == weights and doc["split"] == "train"
