"""The doctor inside a training run: the step rules the ``doctor_stop`` customization applies to each batch of step
columns as the telemetry flushes them (at most every 32 steps or 1 s), before the epoch ends.

The same thresholds as the epoch rules (:mod:`trainers.doctor.training`): a non-finite loss or grad norm, or growth
past ``GRAD_NORM_GROWTH`` / ``LOSS_GROWTH`` times the first epoch's smallest value. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trainers.doctor.finding import Finding
from trainers.doctor.registry import fmt
from trainers.doctor.training import GRAD_NORM_GROWTH, LOSS_FLOOR, LOSS_GROWTH

LIVE_FIX = (
    "The updates blew up: lower train.lr0, keep gradient clipping on, keep a warmup; 'workbench doctor RUN' gives the "
    "recipe change."
)


class StepWatch:
    """Baselines from the first epoch this process sees, and the check of each new batch of step columns.

    A resumed process starts its baselines again from its first epoch (the earlier attempts' steps are not read).
    """

    def __init__(self) -> None:
        self.first_epoch: int | None = None
        self.baseline: dict[str, float] = {}  # series name -> smallest value of the first epoch (losses floored)

    def check(self, columns: Mapping[str, np.ndarray]) -> Finding | None:
        """The first critical finding in these steps (non-finite first, then growth), or None."""
        steps = np.asarray(columns.get("step", ()))
        epochs = np.asarray(columns.get("epoch", ()))
        if not steps.size:
            return None
        series = {"grad_norm": np.asarray(columns.get("grad_norm", ()), dtype=np.float64)}
        series.update({k[5:]: np.asarray(v, dtype=np.float64) for k, v in columns.items() if k.startswith("loss/")})
        series = {k: v for k, v in series.items() if v.size == steps.size}
        for name, values in series.items():
            bad = ~np.isfinite(values)
            if bad.any():
                i = int(np.argmax(bad))
                return self._finding("training.nonfinite", f"{_label(name)} is NaN or infinite at step {steps[i]}",
                                     f"{_label(name)} {values[i]} at step {steps[i]} (epoch {epochs[i]}).",
                                     int(epochs[i]), int(steps[i]), {"series": name})  # fmt: skip
        if self.first_epoch is None:
            self.first_epoch = int(epochs[0])
        first = epochs == self.first_epoch
        if first.any():
            for name, values in series.items():
                low = float(values[first].min())
                low = low if name == "grad_norm" else max(low, LOSS_FLOOR)
                self.baseline[name] = min(self.baseline.get(name, low), low)
        for name, values in series.items():
            base = self.baseline.get(name)
            factor = GRAD_NORM_GROWTH if name == "grad_norm" else LOSS_GROWTH
            if not base or base <= 0:
                continue
            over = values >= factor * base
            if over.any():
                i = int(np.argmax(over))
                return self._finding(
                    "training.divergence", f"Training diverged at step {steps[i]}",
                    f"{_label(name)} {fmt(float(values[i]))} at step {steps[i]} (epoch {epochs[i]}), "
                    f"{fmt(float(values[i]) / base)}x the first epoch's smallest {fmt(base)}.",
                    int(epochs[i]), int(steps[i]), {"series": name, "value": float(values[i]), "baseline": base},
                )  # fmt: skip
        return None

    @staticmethod
    def _finding(rule_id: str, title: str, evidence: str, epoch: int, step: int, numbers: dict) -> Finding:
        return Finding(rule_id, "critical", title, evidence, LIVE_FIX, numbers, (epoch,), (step, step))


def _label(name: str) -> str:
    return "pre-clip grad norm" if name == "grad_norm" else name
