"""Class weights -> 'Use in a new run' says what it filled in and which model New run keeps (issue 18 item 5): the
page has no model choice, and New run kept the demo base checkpoint for any dataset without a word."""

from __future__ import annotations

import shutil

from app import recipe_form
from tests.test_app_pages import open_page
from trainers.customizations.class_weights import ClassWeights


def prefill_note(at) -> str:
    notes = [i.value for i in at.info if i.value.startswith("Prefilled from Class weights")]
    assert len(notes) == 1, [i.value for i in at.info]
    return notes[0]


def test_another_dataset_with_the_demo_checkpoint_says_to_choose_a_model(runs_root, tmp_path):
    shutil.copytree(recipe_form.DEMO_DATA.parent, tmp_path / "shapes")
    at = open_page("class_weights", cw_data_source="path", cw_data_path=str(tmp_path / "shapes" / "data.yaml"))
    at.button(key="weights_use").click().run()
    assert at.title[0].value == "New run" and at.radio(key="nr_model_source").value == "demo"
    note = prefill_note(at)
    assert f"dataset {tmp_path / 'shapes' / 'data.yaml'}, class weights on (the {ClassWeights().scheme} scheme)" in note
    assert "The model is the demo base checkpoint (trained on the demo's shapes): choose a pretrained" in note


def test_a_model_chosen_before_is_named(runs_root):
    at = open_page("class_weights", nr_model_source="builtin", nr_builtin="yolo26s.yaml")
    at.selectbox(key="cw_scheme").set_value("sqrt_inverse").run()
    at.button(key="weights_use").click().run()
    assert at.selectbox(key="nr_builtin").value == "yolo26s.yaml"
    note = prefill_note(at)
    assert "dataset the bundled demo, class weights on (the sqrt_inverse scheme)" in note
    assert note.endswith("The model is yolo26s.yaml; change it under Model.")


def test_the_demo_dataset_with_the_demo_checkpoint_needs_no_warning(runs_root):
    at = open_page("class_weights")
    at.button(key="weights_use").click().run()
    assert prefill_note(at).endswith("The model is the demo base checkpoint; change it under Model.")
