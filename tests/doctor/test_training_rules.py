"""Training rules on synthetic logs: each rule's positive case, a near miss just under its threshold, and its fix
applied to the run's recipe (validated by the Recipe model, differing only by the change)."""

from __future__ import annotations

import pytest

from tests.doctor.synthetic import check_fix, epoch, ids, log, recipe, run_start
from trainers.doctor import diagnose
from trainers.doctor import training as t


def only(findings, rule_id):
    found = [f for f in findings if f.id == rule_id]
    return found[0] if found else None


def healthy(n=5, **kw):
    return [epoch(i, **kw) for i in range(1, n + 1)]


def test_a_healthy_run_has_no_findings():
    assert diagnose(log(healthy())) == []


# ---- divergence ----------------------------------------------------------------------------------------------------
def test_divergence_grad_norm_growth_is_critical_with_lr_and_clip_fix():
    rec = recipe({"optimizer": "SGD", "lr0": 1.0, "momentum": 0.99, "warmup_epochs": 0}, grad_clip={"max_norm": 0})
    epochs = [epoch(1, grad=(200.0, 900.0)), epoch(2, grad=(300.0, 200.0 * t.GRAD_NORM_GROWTH)), epoch(3)]
    f = only(diagnose(log(epochs, run_start(rec))), "training.divergence")
    assert f.severity == "critical" and f.epochs == (2, 3) and f.steps == (11, 20)
    assert f.numbers["grad_norm_growth"] == pytest.approx(t.GRAD_NORM_GROWTH)
    assert "epoch 2" in f.evidence and "momentum 0.99" in f.fix and "warmup_epochs 0" in f.fix
    assert f.recipe_change == {"train.lr0": 0.1, "customizations.grad_clip.max_norm": 200.0}
    check_fix(f, rec)


def test_divergence_near_miss_just_under_the_growth():
    epochs = [epoch(1, grad=(200.0, 900.0)), epoch(2, grad=(300.0, 200.0 * t.GRAD_NORM_GROWTH * 0.99))]
    assert "training.divergence" not in ids(diagnose(log(epochs)))


def test_divergence_from_a_loss_component():
    first = epoch(1)["steps"]["loss"]["cls_loss"]["min"]  # the baseline: 0.98
    boom = {"box_loss": (2.0, 2.4), "cls_loss": (1.0, first * t.LOSS_GROWTH)}
    f = only(diagnose(log([epoch(1), epoch(2, loss=boom)])), "training.divergence")
    assert f.numbers["cls_loss_growth"] == pytest.approx(t.LOSS_GROWTH) and "cls_loss rose" in f.evidence
    near = {"box_loss": (2.0, 2.4), "cls_loss": (1.0, first * t.LOSS_GROWTH * 0.99)}
    assert "training.divergence" not in ids(diagnose(log([epoch(1), epoch(2, loss=near)])))


def test_a_zero_loss_in_the_first_epoch_is_floored_not_a_baseline():
    start = {"box_loss": (0.0, 2.4), "cls_loss": (1.0, 1.2)}  # a batch without boxes: box loss 0
    epochs = [epoch(1, loss=start), epoch(2, loss={"box_loss": (2.0, 3.0), "cls_loss": (1.0, 1.2)})]
    assert diagnose(log(epochs)) == []
    assert t.LOSS_GROWTH * t.LOSS_FLOOR > 3.0


def test_a_zero_loss_floored_still_diverges_past_the_floor_times_the_growth():
    start = {"box_loss": (0.0, 2.4), "cls_loss": (1.0, 1.2)}
    near = {"box_loss": (2.0, 0.99 * t.LOSS_GROWTH * t.LOSS_FLOOR), "cls_loss": (1.0, 1.2)}
    assert "training.divergence" not in ids(diagnose(log([epoch(1, loss=start), epoch(2, loss=near)])))
    boom = {"box_loss": (2.0, t.LOSS_GROWTH * t.LOSS_FLOOR), "cls_loss": (1.0, 1.2)}
    f = only(diagnose(log([epoch(1, loss=start), epoch(2, loss=boom)])), "training.divergence")
    assert f.numbers["box_loss_baseline"] == t.LOSS_FLOOR and f.epochs == (2,)


def test_later_epochs_never_lower_the_baseline():
    low_later = [epoch(1, grad=(200.0, 900.0)), epoch(2, grad=(0.5, 900.0)), epoch(3, grad=(300.0, 1e5))]
    assert "training.divergence" not in ids(diagnose(log(low_later)))


def test_divergence_with_auto_optimizer_and_clipping_on_has_no_recipe_change():
    epochs = [epoch(1, max_norm=10.0, clipped=1.0), epoch(2, grad=(1e3, 1e6), max_norm=10.0, clipped=1.0)]
    f = only(diagnose(log(epochs)), "training.divergence")
    assert f.recipe_change is None and "optimizer" in f.fix


# ---- non-finite --------------------------------------------------------------------------------------------------
def test_nonfinite_val_loss_or_step_values_are_critical():
    rec = recipe({"optimizer": "SGD", "lr0": 0.5})
    epochs = [epoch(1), epoch(2, metrics={"val/cls_loss": None}), epoch(3, grad_extra={"nonfinite": 2})]
    f = only(diagnose(log(epochs, run_start(rec))), "training.nonfinite")
    assert f.severity == "critical" and f.epochs == (2, 3) and f.numbers["first_epoch"] == 2
    assert "val/cls_loss" in f.evidence and "step grad norm" in f.evidence
    check_fix(f, rec)


def test_nonfinite_near_miss_a_null_metric_that_is_not_a_loss():
    assert diagnose(log([epoch(1, metrics={"metrics/precision(B)": None})])) == []


# ---- clipping ------------------------------------------------------------------------------------------------------
def test_clip_saturation_suggests_max_norm_from_the_observed_norms():
    epochs = [epoch(i, grad=(190.0, 230.0), max_norm=10.0, clipped=1.0) for i in range(1, 5)]
    f = only(diagnose(log(epochs)), "training.clip_saturation")
    assert f.severity == "warning" and f.epochs == (1, 2, 3, 4)  # every epoch clipped, not only the last CLIP_EPOCHS
    assert "of the steps of epochs 1-4 were clipped" in f.evidence and f.steps == (1, 10)  # marked where it starts
    assert f.numbers["suggested_max_norm"] == 250.0  # p90 of the p90s (226) rounded to a nice number
    assert "batch size" in f.fix and f.recipe_change == {"customizations.grad_clip.max_norm": 250.0}
    check_fix(f, recipe())  # stock: the grad_clip block was off, the fix turns it on at 250


@pytest.mark.parametrize(
    ("first", "span"),
    [({"clipped": 1.0}, "epochs 1-4"), ({"clipped": t.CLIP_SATURATED - 0.01}, "epochs 2-4"),
     ({"clipped": 1.0, "max_norm": 5.0}, "epochs 2-4")],
)  # fmt: skip
def test_clip_saturation_names_every_epoch_clipped_as_much_at_the_threshold(first, span):
    epochs = [epoch(1, **{"max_norm": 10.0, **first})] + [epoch(i, max_norm=10.0, clipped=1.0) for i in range(2, 5)]
    f = only(diagnose(log(epochs)), "training.clip_saturation")
    assert f"of the steps of {span} were clipped at max_norm 10" in f.evidence, f.evidence
    assert f.epochs == tuple(range(int(span[-3]), 5)) and "median of 205, 205, 205 in epochs 2-4" in f.evidence


def test_clip_saturation_near_miss_just_under_the_share():
    epochs = [epoch(i, max_norm=10.0, clipped=t.CLIP_SATURATED - 0.01) for i in range(1, 4)]
    assert diagnose(log(epochs)) == []


def test_clip_never_active_fires_for_a_threshold_just_above_the_norms():
    rec = recipe(grad_clip={"max_norm": 500.0})
    epochs = [epoch(i, max_norm=500.0, clipped=0.0) for i in range(1, t.NEVER_ACTIVE_EPOCHS + 1)]
    f = only(diagnose(log(epochs, run_start(rec))), "training.clip_never_active")
    assert f.severity == "info" and f.numbers["largest_norm"] == 230.0
    check_fix(f, rec)


@pytest.mark.parametrize("max_norm", [1e5, t.NEVER_ACTIVE_MARGIN * 230.0])
def test_clip_never_active_is_silent_for_a_safety_net(max_norm):
    epochs = [epoch(i, max_norm=max_norm, clipped=0.0) for i in range(1, 4)]
    assert diagnose(log(epochs)) == []


def test_clip_never_active_near_miss_one_epoch_too_few():
    epochs = [epoch(i, max_norm=500.0) for i in range(1, t.NEVER_ACTIVE_EPOCHS)]
    assert diagnose(log(epochs)) == []


# ---- lr 0, frozen ------------------------------------------------------------------------------------------------
def test_lr_zero_for_a_whole_epoch():
    rec = recipe({"lr0": 0.0, "optimizer": "SGD"})
    zero = dict.fromkeys(["weight", "bn", "bias"], 0.0)
    f = only(diagnose(log([epoch(1, lr=zero), epoch(2, lr=zero)], run_start(rec))), "training.lr_zero")
    assert f.severity == "warning" and f.epochs == (1, 2) and f.recipe_change == {"train.lr0": 0.01}
    check_fix(f, rec)


def test_lr_zero_near_miss_warmup_starts_at_zero_but_leaves_it():
    warm = {"weight": (0.0, 1e-4), "bn": (0.0, 1e-4), "bias": (0.1, 0.05)}
    assert diagnose(log([epoch(1, step_lr=warm, lr={"weight": 1e-4, "bn": 1e-4, "bias": 0.05})])) == []


def test_frozen_for_the_whole_run():
    rec = recipe(freeze={"layers": "backbone", "frozen_epochs": None})
    start = run_start(rec, frozen={"layers": list(range(11)), "until_epoch": None})
    f = only(diagnose(log(healthy(3, frozen=1_000_000), start)), "training.frozen_whole_run")
    assert f.severity == "info" and f.epochs == (1, 2, 3)
    assert f.recipe_change == {"customizations.freeze.frozen_epochs": 2}  # a quarter of the 10 planned epochs
    check_fix(f, rec)


def test_frozen_near_miss_a_freeze_that_ends():
    rec = recipe(freeze={"layers": "backbone", "frozen_epochs": 5})
    assert diagnose(log(healthy(3, frozen=1_000_000), run_start(rec))) == []


# ---- overfitting, unfreeze shock ---------------------------------------------------------------------------------
def _losses(train: float, val: float) -> dict:
    return {"train/box_loss": train, "val/box_loss": val, "train/cls_loss": 0.0, "val/cls_loss": 0.0}


def test_overfitting_val_rising_while_train_falls():
    val = [2.0, 2.1, 2.2, 2.3]
    epochs = [epoch(i + 1, metrics=_losses(2.0 - 0.1 * i, v)) for i, v in enumerate(val)]
    f = only(diagnose(log(epochs)), "training.overfitting")
    assert f.severity == "warning" and f.epochs == (1, 2, 3, 4)
    assert f.recipe_change == {"train.patience": t.SUGGESTED_PATIENCE}
    check_fix(f, recipe())


def test_overfitting_near_miss_one_rising_epoch_too_few():
    val = [2.0, 1.9, 2.1, 2.2]  # rises OVERFIT_EPOCHS - 1 times
    epochs = [epoch(i + 1, metrics=_losses(2.0 - 0.1 * i, v)) for i, v in enumerate(val)]
    assert "training.overfitting" not in ids(diagnose(log(epochs)))


def test_unfreeze_shock_suggests_a_lower_backbone_ratio():
    rec = recipe(freeze={"layers": "backbone", "frozen_epochs": 2}, layer_lr={"backbone_ratio": 0.5})
    unfreeze = {"v": 1, "event": "unfreeze", "t": 2.5, "epoch": 3, "layers": list(range(11)), "params": 10}
    epochs = [epoch(1, metrics=_losses(2.0, 2.1)), epoch(2, metrics=_losses(1.8, 2.0)),
              epoch(3, metrics=_losses(1.8 * t.UNFREEZE_JUMP, 2.5))]  # fmt: skip
    f = only(diagnose(log(epochs, run_start(rec), [unfreeze])), "training.unfreeze_shock")
    assert f.epochs == (3,) and f.recipe_change == {"customizations.layer_lr.backbone_ratio": 0.05}
    check_fix(f, rec)
    no_layer_lr = recipe(freeze={"layers": "backbone", "frozen_epochs": 2})
    f = only(diagnose(log(epochs, run_start(no_layer_lr), [unfreeze])), "training.unfreeze_shock")
    assert f.recipe_change == {"customizations.layer_lr.backbone_ratio": 0.1}
    check_fix(f, no_layer_lr)


def test_unfreeze_shock_near_miss_just_under_the_jump():
    unfreeze = {"v": 1, "event": "unfreeze", "t": 2.5, "epoch": 2, "layers": [0], "params": 10}
    epochs = [epoch(1, metrics=_losses(2.0, 2.1)), epoch(2, metrics=_losses(2.0 * t.UNFREEZE_JUMP * 0.99, 2.1))]
    assert "training.unfreeze_shock" not in ids(diagnose(log(epochs, extra=[unfreeze])))
