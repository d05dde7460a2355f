"""What the composed trainer's mixins hand each other: typed records, each with one owner.

The base mixin (``trainers.training.base.WorkbenchBase``) declares every shared record as a class attribute with its
default; the mixin named in the record's docstring fills it; the others read it. Records are frozen and replaced
whole (``dataclasses.replace``), so a class-level default is never changed in place and a reader never sees one half
filled. The doctor's live checks reach the ``doctor_stop`` customization the same way: the training layer sets them
on the composed class, and this module names them by their shape (:class:`LiveDoctor`), never by importing the doctor,
which sits above the customizations.

Like the rest of the package, nothing here imports torch or ultralytics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ChosenMetric:
    """The validation metric ``best_metric`` chose and its value this epoch (on its own scale, not negated)."""

    name: str
    value: float

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "value"}``, as the epoch event's ``best_metric`` and status.json write it."""
        return {"name": self.name, "value": self.value}


@dataclass(frozen=True, slots=True)
class Validation:
    """What the latest validation produced, read by every customization and the telemetry.

    Attributes:
        per_class: :func:`trainers.metrics.per_class_table` of the validator, computed once per validation by the base
            mixin (after ``validate()`` and after the final evaluation); None before the first.
        chosen: The ``best_metric`` customization's metric and value (None: the trainer keeps ultralytics' fitness).
    """

    per_class: list[dict[str, Any]] | None = None
    chosen: ChosenMetric | None = None


class FindingView(Protocol):
    """What ``doctor_stop`` reads of a finding: :class:`trainers.doctor.finding.Finding` has this shape."""

    id: str
    severity: str
    title: str
    evidence: str

    def to_dict(self) -> dict[str, Any]: ...


class LiveDoctor(Protocol):
    """The doctor inside one training process (:class:`trainers.doctor.live.LiveDoctor`), built from the attempt's
    ``run_start`` event as written and the lowest severity to stop on."""

    def __init__(self, run_start: Mapping[str, Any], min_severity: str) -> None: ...

    def check_steps(self, columns: Mapping[str, Any]) -> FindingView | None:
        """The first critical finding in a flush of step columns, or None."""

    def check_epoch(self, event: Mapping[str, Any]) -> FindingView | None:
        """The most severe live finding once this ``epoch`` event is added, or None."""
