"""The customization table is the one list: an eighth customization registered here, in the test only, is validated
by the recipe, ordered by the composer and drawn by the New run form without editing any other module.

Also: every row is complete, ranks are unique, and docs/recipe.md shows the table as the code has it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import Field

from tests.conftest import REPO
from trainers import customizations as table
from trainers.customizations.table import Customization, Settings
from trainers.errors import RecipeError
from trainers.recipe import Recipe


class Warmup(Settings):
    steps: int = Field(100, ge=0, title="Warmup steps", description="steps of linear warmup; 0 = none")
    shape: str = Field("linear", description="ramp shape", json_schema_extra={"choices": ["linear", "cosine"]})


class WarmupMixin:
    def _setup_scheduler(self):
        super()._setup_scheduler()
        self.warmup_seen = self.recipe.customizations.warmup_lr.steps


@pytest.fixture
def eighth():
    row = table.register(
        Customization(
            key="warmup_lr",
            rank=45,  # between freeze (40) and layer_lr (50)
            why="test row",
            title="Warmup by steps",
            help="A made-up customization that exists only in this test.",
            settings=Warmup,
            mixin=WarmupMixin,
        )
    )
    yield row
    table.unregister(row.key)


def recipe(**customizations) -> dict:
    return {"model": "yolo26n.yaml", "data": "d.yaml", "train": {"epochs": 5}, "customizations": customizations}


def test_the_recipe_validates_a_registered_customization(eighth):
    r = Recipe.from_dict(recipe(warmup_lr={"steps": 7}))
    assert r.customizations.warmup_lr == Warmup(steps=7)
    assert r.customizations.warmup_lr.shape == "linear"  # its default, stated once in its settings model
    assert Recipe.from_yaml(r.to_yaml()) == r
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict(recipe(warmup_lr={"steps": -1, "shap": "x"}))
    fields = {p.field for p in e.value.problems}
    assert fields == {"customizations.warmup_lr.steps", "customizations.warmup_lr.shap"}
    assert "allowed: steps, shape" in str(e.value)


def test_the_composer_orders_it_by_rank(eighth):
    from trainers.training.compose import build_trainer_class

    cls = build_trainer_class(Recipe.from_dict(recipe(freeze={"frozen_epochs": 1}, warmup_lr={}, layer_lr={})))
    mixins = [c.__name__ for c in cls.__mro__ if c.__name__.endswith("Mixin")]
    assert mixins == ["TelemetryMixin", "EvidenceMixin", "FreezeMixin", "WarmupMixin", "LayerLRMixin"]


def test_the_new_run_form_draws_its_toggle_and_fields(eighth, runs_root):
    from tests.test_app_pages import open_page

    at = open_page("new_run")
    toggle = at.toggle(key="nr_warmup_lr_on")
    assert toggle.label == "Warmup by steps" and toggle.value is False
    toggle.set_value(True).run()
    assert at.number_input(key="nr_warmup_lr__steps").value == 100  # the settings model's default
    at.number_input(key="nr_warmup_lr__steps").set_value(3).run()
    at.selectbox(key="nr_warmup_lr__shape").set_value("cosine").run()
    assert not at.exception
    import yaml

    assert yaml.safe_load(at.code[0].value)["customizations"]["warmup_lr"] == {"steps": 3, "shape": "cosine"}
    at.number_input(key="nr_warmup_lr__steps").set_value(-2).run()
    assert any("customizations.warmup_lr.steps" in e.value for e in at.error)
    assert at.button(key="new_run_start").disabled


def test_every_row_is_complete_and_ranks_are_unique():
    rows = table.rows()
    assert [r.key for r in rows] == [
        "per_class_f1", "class_weights", "best_metric", "freeze", "layer_lr", "sync_bn", "grad_clip", "doctor_stop",
    ]  # fmt: skip
    assert len({r.rank for r in rows}) == len(rows)
    for r in rows:
        assert r.title and r.help and r.why and issubclass(r.settings, Settings)
        assert r.mixin.__module__ == f"trainers.customizations.{r.key}"  # one module per customization
        for name, info in r.settings.model_fields.items():
            assert info.description, f"{r.key}.{name} has no one-line description"
    with pytest.raises(ValueError, match="already registered"):
        table.register(rows[0])
    clash = Customization("x", rows[0].rank, "w", "t", "h", Settings, object)
    with pytest.raises(ValueError, match=f"rank {rows[0].rank} is taken"):
        table.register(clash)


def test_docs_recipe_md_shows_the_table():
    from trainers.customizations.docs import BEGIN, END, table_markdown

    text = (REPO / "docs" / "recipe.md").read_text()
    assert BEGIN in text and END in text
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == table_markdown().strip(), "run: python -m trainers.customizations.docs"


def test_docs_are_written_by_the_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "trainers.customizations.docs", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
