"""The doctor inside training: the step watch (non-finite, growth past the thresholds, near misses) and the
doctor_stop mixin's stop request, on a stand-in trainer (the real run is in test_acceptance.py): the mixin gets the
doctor from the training layer (the composer's ``live_doctor``) and the run_start event the telemetry wrote."""

from __future__ import annotations

import numpy as np

from tests.doctor.synthetic import NAMES, epoch, recipe, run_start
from trainers.customizations.doctor_stop import DoctorStopMixin
from trainers.doctor.live import LiveDoctor, StepWatch
from trainers.doctor.training import GRAD_NORM_GROWTH, LOSS_FLOOR, LOSS_GROWTH
from trainers.recipe import Recipe
from trainers.training.base import WorkbenchBase


def cols(epoch_no, steps, grad, cls):
    n = len(steps)
    return {
        "step": np.array(steps), "epoch": np.full(n, epoch_no), "grad_norm": np.array(grad, float),
        "loss/cls_loss": np.array(cls, float), "clipped": np.zeros(n), "max_norm": np.full(n, 10.0),
    }  # fmt: skip


def test_growth_past_the_threshold_is_divergence_at_its_step():
    w = StepWatch()
    assert w.check(cols(1, [1, 2], [200.0, 250.0], [1.0, 1.1])) is None
    f = w.check(cols(1, [3, 4], [300.0, 200.0 * GRAD_NORM_GROWTH], [1.0, 1.0]))
    assert f.id == "training.divergence" and f.severity == "critical" and f.steps == (4, 4)


def test_near_miss_and_later_epochs_do_not_lower_the_baseline():
    w = StepWatch()
    w.check(cols(1, [1], [200.0], [1.0]))
    assert w.check(cols(2, [2, 3], [1.0, 200.0 * GRAD_NORM_GROWTH * 0.99], [1.0, 0.99 * LOSS_GROWTH])) is None
    assert w.baseline["grad_norm"] == 200.0


def test_a_zero_loss_in_the_first_epoch_is_floored_and_growth_past_the_floor_diverges():
    w = StepWatch()
    assert w.check(cols(1, [1, 2], [200.0, 210.0], [0.0, 1.0])) is None  # a batch without boxes: loss 0
    assert w.check(cols(2, [3], [200.0], [0.99 * LOSS_GROWTH * LOSS_FLOOR])) is None
    f = w.check(cols(2, [4], [200.0], [LOSS_GROWTH * LOSS_FLOOR]))
    assert f.id == "training.divergence" and f.numbers["baseline"] == LOSS_FLOOR and f.steps == (4, 4)


def test_a_nan_loss_is_critical_at_once():
    f = StepWatch().check(cols(1, [1, 2], [200.0, 210.0], [1.0, np.nan]))
    assert f.id == "training.nonfinite" and "cls_loss" in f.title and f.steps == (2, 2)


class Stand(DoctorStopMixin, WorkbenchBase):
    """The mixin above the base, with what the composer and the telemetry mixin would provide: the doctor's live
    checks as a class attribute, and the run_start event as written."""

    live_doctor = LiveDoctor

    def __init__(self, rec, world_size=0):
        self.recipe = Recipe.from_dict(rec)
        self.world_size, self.start_epoch, self.data = world_size, 0, {"names": dict(enumerate(NAMES))}
        self.optimizer, self.events = None, []
        self.on_run_start(run_start(rec))

    def emit_event(self, event, **fields):
        self.events.append((event, fields))


def test_the_mixin_stops_on_a_critical_epoch_finding_and_says_why():
    t = Stand(recipe(doctor_stop={}))
    t.on_epoch_logged(epoch(1))
    assert t.stop_reason is None
    t.on_epoch_logged(epoch(2, metrics={"val/cls_loss": None}))
    assert t.stop_reason == "doctor: NaN or infinite values from epoch 2 (training.nonfinite)"
    assert t.events[0][0] == "doctor_stop" and t.events[0][1]["finding"]["id"] == "training.nonfinite"


def test_severity_warning_also_stops_on_overfitting_and_critical_does_not():
    rising = [epoch(i + 1, metrics={"train/box_loss": 2 - 0.1 * i, "val/box_loss": 2 + 0.1 * i}) for i in range(4)]
    for severity, stops in (("warning", True), ("critical", False)):
        t = Stand(recipe(doctor_stop={"severity": severity}))
        for e in rising:
            t.on_epoch_logged(e)
        assert bool(t.stop_reason) is stops


def test_under_ddp_it_reports_and_does_not_stop():
    t = Stand(recipe(doctor_stop={}), world_size=2)
    t.on_steps(cols(1, [1, 2], [200.0, np.inf], [1.0, 1.0]))
    assert t.stop_reason is None and t.events[0][1]["stopping"] is False
