"""The doctor inside a training run, for the ``doctor_stop`` customization: the step watch on each batch of step
columns as the telemetry flushes them (at most every 32 steps or 1 s, before the epoch ends), and the live rules on
each epoch event.

The step watch asks the same detector as the epoch rules (:mod:`trainers.doctor.divergence`): a non-finite loss or
grad norm, or growth past ``GRAD_NORM_GROWTH`` / ``LOSS_GROWTH`` times the first epoch's smallest value. Pure numpy.
The training layer hands :class:`LiveDoctor` to the customization (it sits below the doctor and never imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from trainers.doctor.diagnose import diagnose
from trainers.doctor.divergence import GRAD_NORM, Divergence
from trainers.doctor.finding import Finding
from trainers.doctor.registry import fmt
from trainers.telemetry.run_log import RunLog

LIVE_FIX = (
    "The updates blew up: lower train.lr0, keep gradient clipping on, keep a warmup; 'workbench doctor RUN' gives the "
    "recipe change."
)


class StepWatch:
    """The detector fed each new batch of step columns; baselines from the first epoch this process sees.

    A resumed process starts its baselines again from its first epoch (the earlier attempts' steps are not read).
    """

    def __init__(self) -> None:
        self.detector = Divergence()

    @property
    def baseline(self) -> dict[str, float]:
        """Series name -> its baseline (the detector's)."""
        return self.detector.baseline

    def check(self, columns: Mapping[str, np.ndarray]) -> Finding | None:
        """The first critical finding in these steps (non-finite first, then growth), or None."""
        steps = np.asarray(columns.get("step", ()))
        epochs = np.asarray(columns.get("epoch", ()))
        if not steps.size:
            return None
        series = {GRAD_NORM: np.asarray(columns.get(GRAD_NORM, ()), dtype=np.float64)}
        series.update({k[5:]: np.asarray(v, dtype=np.float64) for k, v in columns.items() if k.startswith("loss/")})
        series = {k: v for k, v in series.items() if v.size == steps.size}
        found = self.detector.check(series, epochs)
        if not found:
            return None
        b = found[0]
        name, i = b.series, b.first
        value = float(series[name][i])
        if b.kind == "nonfinite":
            return self._finding("training.nonfinite", f"{_label(name)} is NaN or infinite at step {steps[i]}",
                                 f"{_label(name)} {value} at step {steps[i]} (epoch {epochs[i]}).",
                                 int(epochs[i]), int(steps[i]), {"series": name})  # fmt: skip
        base = b.baseline
        return self._finding(
            "training.divergence", f"Training diverged at step {steps[i]}",
            f"{_label(name)} {fmt(value)} at step {steps[i]} (epoch {epochs[i]}), "
            f"{fmt(value / base)}x the first epoch's smallest {fmt(base)}.",
            int(epochs[i]), int(steps[i]), {"series": name, "value": value, "baseline": base},
        )  # fmt: skip

    @staticmethod
    def _finding(rule_id: str, title: str, evidence: str, epoch: int, step: int, numbers: dict) -> Finding:
        return Finding(rule_id, "critical", title, evidence, LIVE_FIX, numbers, (epoch,), (step, step))


def _label(name: str) -> str:
    return "pre-clip grad norm" if name == GRAD_NORM else name


class LiveDoctor:
    """The doctor inside one training process: the step watch, and the live rules over the run's epochs so far.

    Built from the attempt's ``run_start`` event as the telemetry wrote it (its recipe, class names and groups are
    what the rules read), then fed each flush of step columns and each ``epoch`` event.
    """

    def __init__(self, run_start: Mapping[str, Any], min_severity: str) -> None:
        self.min_severity = min_severity
        self.steps = StepWatch()
        self.log = RunLog.from_events([dict(run_start)])

    def check_steps(self, columns: Mapping[str, np.ndarray]) -> Finding | None:
        """The first critical finding in these step columns, or None."""
        return self.steps.check(columns)

    def check_epoch(self, event: Mapping[str, Any]) -> Finding | None:
        """The most severe live finding at least as severe as ``min_severity`` once ``event`` is added, or None."""
        self.log.extend([dict(event)])
        findings = diagnose(self.log, live_only=True, min_severity=self.min_severity)
        return findings[0] if findings else None
