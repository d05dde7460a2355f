"""Per-class rules on synthetic logs: a class stuck at F1 0 while mean F1 rises, the frequent-vs-rare F1 gap; the
suggested class weights come from the ClassWeights settings model and validate as a recipe block."""

from __future__ import annotations

import pytest

from tests.doctor.synthetic import TRAIN_COUNTS, check_fix, epoch, facts, ids, log, recipe, run_start
from trainers.customizations.class_weights import ClassWeights
from trainers.doctor import classes as c
from trainers.doctor import diagnose


def only(findings, rule_id):
    return next((f for f in findings if f.id == rule_id), None)


def collapsing(n: int, rise: float = 0.05):
    """n epochs where 'cross' (id 3) sits at F1 0 and the others climb by ``rise`` per epoch."""
    return [epoch(i, f1=[0.5 + rise * i] * 3 + [0.0]) for i in range(1, n + 1)]


def test_rare_collapse_with_weights_computed_from_the_train_counts():
    f = only(diagnose(log(collapsing(c.COLLAPSE_EPOCHS + 1)), facts()), "classes.rare_collapse")
    assert f.severity == "warning" and f.numbers["classes"] == ["cross"] and f.epochs == (2, 3, 4)
    assert "8 train boxes" in f.evidence
    block = f.recipe_change["customizations.class_weights"]
    assert block["weights"] == pytest.approx(ClassWeights().from_counts(TRAIN_COUNTS), abs=1e-4)
    assert ClassWeights(**block)  # a valid settings block
    new = check_fix(f, recipe())
    assert new.customizations.class_weights.weights == block["weights"]


def test_rare_collapse_without_dataset_suggests_the_default_block():
    f = only(diagnose(log(collapsing(c.COLLAPSE_EPOCHS))), "classes.rare_collapse")
    assert f.recipe_change == {"customizations.class_weights": ClassWeights().model_dump(mode="json")}
    check_fix(f, recipe())


def test_rare_collapse_with_weights_on_boosts_the_stuck_class():
    rec = recipe(class_weights={"scheme": "sqrt_inverse"})
    used = ClassWeights(scheme="sqrt_inverse").from_counts(TRAIN_COUNTS)
    f = only(diagnose(log(collapsing(3), run_start(rec, class_weights=used)), facts()), "classes.rare_collapse")
    weights = f.recipe_change["customizations.class_weights"]["weights"]
    assert weights[3] == pytest.approx(used[3] * c.WEIGHT_BOOST, abs=1e-3) and weights[0] == pytest.approx(
        used[0], abs=1e-4
    )
    check_fix(f, rec)


def test_rare_collapse_near_misses():
    assert "classes.rare_collapse" not in ids(diagnose(log(collapsing(c.COLLAPSE_EPOCHS - 1))))  # too few epochs
    flat = collapsing(c.COLLAPSE_EPOCHS, rise=0.0)  # mean F1 does not rise
    assert "classes.rare_collapse" not in ids(diagnose(log(flat)))
    absent = [epoch(i, f1=[0.5 + 0.05 * i] * 3 + [0.0], present=[True] * 3 + [False]) for i in range(1, 4)]
    assert "classes.rare_collapse" not in ids(diagnose(log(absent)))  # not in val: data.class_without_val's job


def test_f1_gap_frequent_vs_rare():
    gapped = [epoch(i, f1=[0.9, 0.8, 0.9 - c.F1_GAP, 0.8 - c.F1_GAP]) for i in range(1, 4)]
    f = only(diagnose(log(gapped), facts()), "classes.f1_gap")
    assert f.numbers["frequent"] == ["circle", "square"] and f.numbers["rare"] == ["triangle", "cross"]
    assert f.numbers["gap"] == pytest.approx(c.F1_GAP)
    check_fix(f, recipe())


def test_f1_gap_near_miss_and_needs_counts():
    near = [epoch(i, f1=[0.9, 0.8, 0.91 - c.F1_GAP, 0.81 - c.F1_GAP]) for i in range(1, 4)]
    assert "classes.f1_gap" not in ids(diagnose(log(near), facts()))
    gapped = [epoch(i, f1=[0.9, 0.8, 0.5, 0.4]) for i in range(1, 4)]
    assert "classes.f1_gap" not in ids(diagnose(log(gapped)))  # no dataset facts: no counts to rank classes by
