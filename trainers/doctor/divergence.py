"""The one divergence / non-finite detector: the live doctor (each flush of step columns during training, for
``doctor_stop``) and the post-hoc doctor (each epoch's step summary, :mod:`trainers.doctor.training`) both ask it.

A run's watched series are the pre-clip gradient norm (``grad_norm``) and each loss component (by name). The rule:

- any NaN or infinite value is non-finite, at once;
- otherwise a value at or past ``GRAD_NORM_GROWTH`` (the norm) or ``LOSS_GROWTH`` (a loss) times its series' baseline
  is divergence. The baseline is the smallest value of the first epoch the detector sees (a loss's floored at
  ``LOSS_FLOOR``: a batch without boxes has a box loss of 0); later epochs never lower it.

Values come in chunks, in time order, each value with its epoch: the live doctor hands the step columns as the
telemetry flushes them, the post-hoc doctor an epoch's finite minimum and maximum. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

GRAD_NORM = "grad_norm"  # the pre-clip total norm's series; every other series is a loss component
GRAD_NORM_GROWTH = 1e3  # peak pre-clip norm / the first epoch's smallest: three orders of magnitude
LOSS_GROWTH = 100.0  # peak of a loss component / its first-epoch minimum: two orders of magnitude
LOSS_FLOOR = 0.1  # a first-epoch minimum below this counts as this (a batch without boxes has a box loss of 0)


@dataclass(frozen=True, slots=True)
class Blowup:
    """One series that broke the rule in a chunk.

    Attributes:
        kind: ``nonfinite`` or ``divergence``.
        series: ``grad_norm`` or a loss name.
        over: Which of the chunk's values of the series broke it (a boolean mask as long as the series).
        baseline: The series' baseline (divergence only).
    """

    kind: Literal["nonfinite", "divergence"]
    series: str
    over: np.ndarray
    baseline: float | None = None

    @property
    def first(self) -> int:
        """Position in the chunk of the series' first offending value."""
        return int(np.argmax(self.over))


def growth_limit(series: str) -> float:
    """How many times its baseline a series may reach before it counts as diverged."""
    return GRAD_NORM_GROWTH if series == GRAD_NORM else LOSS_GROWTH


class Divergence:
    """The detector: the baselines of one run's series, and the check of each new chunk against them.

    A chunk maps each series name to its values (numpy arrays); ``epochs`` gives each value's epoch: one array for
    every series (each as long), or one array per series.
    """

    def __init__(self) -> None:
        self.first_epoch: int | None = None
        self.baseline: dict[str, float] = {}  # series -> smallest value of the first epoch (losses floored)

    @staticmethod
    def nonfinite(series: Mapping[str, np.ndarray]) -> list[Blowup]:
        """Each series holding a NaN or infinite value, with where."""
        found = []
        for name, values in series.items():
            bad = ~np.isfinite(values)
            if bad.any():
                found.append(Blowup("nonfinite", name, bad))
        return found

    def growth(self, series: Mapping[str, np.ndarray], epochs: np.ndarray | Mapping[str, np.ndarray]) -> list[Blowup]:
        """Each series with a value at or past its growth limit, with where.

        Values of the first epoch seen (the first chunk's first epoch) lower the baselines first.
        """
        shared = not isinstance(epochs, Mapping)
        if self.first_epoch is None:
            starts = [int(e[0]) for e in ([epochs] if shared else epochs.values()) if len(e)]
            self.first_epoch = min(starts) if starts else None
        for name, values in series.items():
            first = (epochs if shared else epochs[name]) == self.first_epoch
            if first.any():
                low = float(np.min(values[first]))
                low = low if name == GRAD_NORM else max(low, LOSS_FLOOR)
                self.baseline[name] = min(self.baseline.get(name, low), low)
        found = []
        for name, values in series.items():
            base = self.baseline.get(name)
            if not base or base <= 0:
                continue
            over = values >= growth_limit(name) * base
            if over.any():
                found.append(Blowup("divergence", name, over, base))
        return found

    def check(self, series: Mapping[str, np.ndarray], epochs: np.ndarray) -> list[Blowup]:
        """Non-finite values first (a chunk with one leaves the baselines as they are), then growth."""
        return self.nonfinite(series) or self.growth(series, epochs)
