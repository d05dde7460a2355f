"""Findings as data (JSON round trip, order, counts) and apply_fix (exactly the change, validated, errors)."""

from __future__ import annotations

import json

import pytest

from tests.doctor.synthetic import recipe
from trainers.doctor import Finding, apply_fix, count_by_severity, sort_findings
from trainers.doctor.registry import nice
from trainers.errors import RecipeError, WorkbenchError
from trainers.recipe import Recipe
from trainers.recipe.dotted import flatten, leaves, put
from trainers.runs.compare import recipe_diff


def finding(**kw) -> Finding:
    base = {"id": "training.x", "severity": "warning", "title": "t", "evidence": "e", "fix": "f"}
    return Finding(**{**base, **kw})


def test_a_finding_round_trips_through_json():
    f = finding(numbers={"share": 1.0, "bad": float("nan")}, epochs=(2, 3), steps=(11, 20),
                recipe_change={"customizations.grad_clip.max_norm": 200.0})  # fmt: skip
    data = json.loads(json.dumps(f.to_dict(), allow_nan=False))
    assert data["epochs"] == [2, 3] and data["steps"] == [11, 20] and data["numbers"]["bad"] is None
    back = Finding.from_dict(data)
    assert back.epochs == f.epochs and back.steps == f.steps and back.recipe_change == f.recipe_change
    assert back.epoch == 2 and finding().epoch is None


def test_findings_sort_by_severity_then_id_and_count():
    fs = [finding(id="b", severity="info"), finding(id="z", severity="critical"), finding(id="a", severity="info"),
          finding(id="m")]  # fmt: skip
    assert [f.id for f in sort_findings(fs)] == ["z", "m", "a", "b"]
    assert count_by_severity(fs) == {"critical": 1, "warning": 1, "info": 2}


@pytest.mark.parametrize(
    ("x", "want"), [(221.8, 200.0), (226.0, 250.0), (0.037, 0.025), (0.04, 0.05), (10.0, 10.0), (7.4, 5.0)]
)
def test_nice_numbers(x, want):
    assert nice(x) == want


def test_apply_fix_changes_exactly_the_dotted_keys():
    old = Recipe.from_dict(recipe({"lr0": 0.5}, per_class_f1={}))
    new = apply_fix(old, finding(recipe_change={"train.lr0": 0.05, "customizations.grad_clip.max_norm": 200.0}))
    assert recipe_diff({"old": old, "new": new}) == {
        "train.lr0": [0.5, 0.05],
        "customizations.grad_clip.max_norm": [None, 200.0],
    }
    assert new.model == old.model and new.data == old.data and "per_class_f1" in new.customizations


def test_apply_fix_refuses_a_finding_without_a_change_and_an_invalid_change():
    r = Recipe.from_dict(recipe())
    with pytest.raises(WorkbenchError, match="not a recipe setting"):
        apply_fix(r, finding())
    with pytest.raises(RecipeError, match="customizations.grad_clip.max_norm"):
        apply_fix(r, finding(recipe_change={"customizations.grad_clip.max_norm": -1.0}))


def test_dotted_keys():
    d = {"train": {}, "customizations": {"per_class_f1": {}, "grad_clip": {"max_norm": 5.0}}}
    assert flatten(d) == {"train": {}, "customizations.per_class_f1": {}, "customizations.grad_clip.max_norm": 5.0}
    assert "train" not in leaves(d)
    assert put({}, "a.b.c", [1]) == {"a": {"b": {"c": [1]}}}


def test_the_doctor_and_the_comparison_are_light():
    """The UI imports them on every rerun: no torch, ultralytics or streamlit."""
    import subprocess
    import sys

    code = (
        "import trainers.doctor, trainers.runs.compare, trainers.customizations.doctor_stop, sys; "
        "print(sorted(m for m in ('torch', 'ultralytics', 'streamlit', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize(("x", "text"), [(212.3, "212"), (1360.4, "1360"), (1e4, "10000"), (6.15e6, "6.2e+06"),
                                         (0.937, "0.937"), (4e-5, "4e-05"), (0.0, "0"), (None, "n/a")])  # fmt: skip
def test_numbers_in_evidence_text(x, text):
    from trainers.doctor.registry import fmt

    assert fmt(x) == text


def test_counts_read_as_english_everywhere_they_are_shown():
    """The dashboard's "Doctor: 2 warning" was caught by looking at the README screenshot."""
    from trainers.doctor import Finding, findings_text, severity_count

    assert [severity_count("warning", n) for n in (0, 1, 2)] == ["0 warnings", "1 warning", "2 warnings"]
    assert [severity_count(s, 2) for s in ("critical", "info")] == ["2 critical", "2 info"]
    two = [Finding("a.b", "warning", "t", "e", "f"), Finding("c.d", "warning", "t", "e", "f")]
    assert findings_text(two, "r").splitlines()[0] == "run 'r': 2 findings (0 critical, 2 warnings, 0 info)"
