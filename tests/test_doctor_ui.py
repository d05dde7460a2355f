"""The training doctor in the UI: findings on the dashboard, marked on the charts, and Apply fix (AppTest).

Runs are written from synthetic telemetry (tests/doctor/synthetic.py); the real-browser test that a finding appears
within one refresh of a live run is in tests/test_browser_doctor.py.
"""

from __future__ import annotations

import pytest
import yaml

from app import doctor_views, recipe_form, recipe_prefill
from app.recipe_form import FormValues, build_recipe
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.test_app_pages import charts_by_key, open_page
from trainers.doctor import Finding, read_run_log
from trainers.recipe import Recipe, load_recipe
from trainers.run_files import RECIPE_FILE
from trainers.runs.compare import recipe_diff

DIVERGING = {
    "model": str(recipe_form.DEMO_MODEL),
    "data": str(recipe_form.DEMO_DATA),
    "train": {"epochs": 3, "imgsz": 128, "batch": 16, "optimizer": "SGD", "lr0": 1.0, "momentum": 0.99,
              "warmup_epochs": 0, "nbs": 16, "seed": 0, "patience": 100},
    "customizations": {"per_class_f1": {}, "grad_clip": {"max_norm": 0}},
}  # fmt: skip


def diverging_run(root):
    """Three epochs of 10 steps whose gradient norm explodes in epoch 2, in the events log and the step store."""
    import numpy as np

    from trainers.telemetry.steps import StepWriter

    epochs = [epoch(1, grad=(200.0, 900.0)), epoch(2, grad=(300.0, 6.2e6)), epoch(3, grad=(1e6, 1e7))]
    run = make_run(root, "diverged", DIVERGING, epochs)
    step = np.arange(1, 31)
    norm = np.where(step <= 10, 500.0, np.where(step <= 20, 300.0 * 10.0 ** ((step - 10) / 2), 1e7))
    columns = {"lr/weight": "float64", "grad_norm": "float32", "clipped": "uint8"}
    with StepWriter(run / "steps", attempt=1, first_step=0, columns=columns) as steps:
        steps.append({"step": step, "epoch": (step - 1) // 10 + 1, "t": step * 0.1, "lr/weight": np.full(30, 1.0),
                      "grad_norm": norm.astype(np.float32), "clipped": np.zeros(30, np.uint8)})  # fmt: skip
    return run


def test_dashboard_lists_the_finding_with_evidence_and_fix_and_marks_it_on_the_charts(runs_root):
    diverging_run(runs_root)
    at = open_page("dashboard", {"run": "diverged"})
    doctor = next(e for e in at.expander if e.label.startswith("Doctor:"))
    assert "1 critical" in doctor.label
    text = " ".join(m.value for m in doctor.markdown)
    assert "critical" in text and "diverged" in text.lower() and "**Fix:**" in text
    assert "epoch 2" in text  # the evidence says where
    assert [b.key for b in doctor.button] == ["apply_fix_training_divergence"]
    charts = charts_by_key(at)
    gn = charts["chart_grad_norm"]["layout"]
    assert any(s.get("name") == "doctor: divergence" for s in gn.get("shapes", [])), gn.get("shapes")
    losses = charts["chart_losses"]["layout"]
    assert any(a.get("text") == "divergence (epoch 2)" for a in losses.get("annotations", []))
    band = next(s for s in gn["shapes"] if s.get("name") == "doctor: divergence")
    assert (band["x0"], band["x1"]) == (11, 20)  # the steps of epoch 2


def test_a_healthy_run_says_nothing_to_report_and_marks_nothing(runs_root):
    make_run(runs_root, "healthy", DIVERGING)  # three healthy epochs
    at = open_page("dashboard", {"run": "healthy"})
    assert any(e.label == "Doctor: nothing to report so far" for e in at.expander)
    names = [s.get("name") for spec in charts_by_key(at).values() for s in spec["layout"].get("shapes", [])]
    assert not [n for n in names if str(n).startswith("doctor:")]


def test_apply_fix_opens_new_run_with_the_old_recipe_and_only_the_fix(runs_root):
    run = diverging_run(runs_root)
    before = (run / RECIPE_FILE).read_bytes()
    at = open_page("dashboard", {"run": "diverged"})
    at.button(key="apply_fix_training_divergence").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Prefilled from run **diverged**" in i.value for i in at.info)  # New run is showing
    form = FormValues.from_state({k: at.session_state[k] for k in at.session_state if str(k).startswith("nr_")})
    draft = build_recipe(form)
    assert draft.ok, draft.problems
    old = load_recipe(run / RECIPE_FILE)
    diff = recipe_diff({"old": old, "new": draft.recipe})
    finding = next(f for f in doctor_views.findings(read_run_log(run), run)[0] if f.recipe_change)
    assert set(diff) == set(finding.recipe_change) == {"train.lr0", "customizations.grad_clip.max_norm"}
    assert diff["train.lr0"] == [1.0, 0.1] and diff["customizations.grad_clip.max_norm"] == [0.0, 200.0]
    assert at.button(key="new_run_start").disabled is False  # ready to start as a new run
    assert (run / RECIPE_FILE).read_bytes() == before  # the old run is untouched


@pytest.mark.parametrize(
    "recipe",
    [
        DIVERGING,
        {
            "model": "yolo11n.yaml",
            "data": "/data/coco.yaml",
            "train": {"cos_lr": True, "mosaic": 0.5},
            "customizations": {"freeze": {"layers": 5, "frozen_epochs": 2}, "layer_lr": {"backbone_ratio": 0.2}},
        },
        {
            "model": "/weights/base.pt",
            "data": str(recipe_form.DEMO_DATA),
            "train": {"epochs": 7, "device": "cpu"},
            "customizations": {"class_weights": {"scheme": "power", "power": 1.5}},
        },
    ],
    ids=["demo", "builtin-ultralytics-defaults", "local-pt"],
)
def test_form_for_recipe_builds_the_same_recipe_back(recipe):
    """A recipe shown in the form and built again differs in nothing (left-out arguments are at their defaults)."""
    original = Recipe.from_dict(recipe)
    form = recipe_prefill.form_for_recipe(original)
    form.trust_pt = True  # the user ticks trust for a local .pt; nothing else is touched
    again = FormValues.from_state(form.to_state())
    raw = build_recipe(again).raw  # the local .pt does not exist here: compare what the form describes
    assert recipe_diff({"old": original, "new": Recipe.from_dict(raw)}) == {}


def test_a_recipe_the_form_cannot_show_is_a_clear_error():
    odd = Recipe.from_dict({"model": "/models/custom.yaml", "data": "/d.yaml"})
    with pytest.raises(Exception, match="model: '/models/custom.yaml' cannot be chosen on the New run form"):
        recipe_prefill.form_for_recipe(odd)


def test_a_finding_without_a_recipe_change_has_no_apply_button_and_fix_refuses_it(runs_root):
    run = diverging_run(runs_root)
    advice = Finding("training.data_bound", "warning", "Waiting for data", "70% of the batch time", "more workers")
    with pytest.raises(Exception, match="not a recipe setting"):
        doctor_views.fix_as_new_run(run, advice)
    assert yaml.safe_load((run / RECIPE_FILE).read_text())["train"]["lr0"] == 1.0


def test_change_text_names_each_setting_and_a_customization_switched_on():
    changes = [("train.lr0", 1.0, 0.1), ("customizations.grad_clip.max_norm", 0.0, 200.0),
               ("customizations.class_weights.scheme", None, "inverse_frequency"),
               ("customizations.class_weights.cap", None, 10.0)]  # fmt: skip
    assert doctor_views.change_text(changes) == (
        "train.lr0 1 → 0.1; customizations.grad_clip.max_norm 0 → 200; "
        "customizations.class_weights off → on (scheme inverse_frequency, cap 10)"
    )


def test_a_damaged_evidence_file_shows_each_rule_error_and_the_page_lives(runs_root):
    """Several prediction rules failing on one unreadable evidence file give several ``doctor.rule_error`` findings;
    each needs its own widget key (one key twice stopped the whole dashboard)."""
    from tests.evidence_runs import diagonal, names_of, write_evidence

    run = make_run(runs_root, "damaged", DIVERGING)
    write_evidence(run, names_of(4), {1: diagonal(4), "final": diagonal(4)})
    for table in ("confusion", "unlabelled"):
        (run / "evidence" / "final" / f"{table}.parquet").write_bytes(b"not parquet")
    at = open_page("dashboard", {"run": "damaged"})
    assert not at.exception, at.exception
    doctor = next(e for e in at.expander if e.label.startswith("Doctor:"))
    errors = [m.value for m in doctor.markdown if "could not read this run" in m.value]
    assert len(errors) >= 2, [m.value for m in doctor.markdown]
