"""Stop on doctor findings: end a run cleanly, with the finding as its stop reason, when the doctor sees it break."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trainers.customizations.records import FindingView, LiveDoctor
from trainers.customizations.table import Customization, Settings


class DoctorStop(Settings):
    severity: Literal["critical", "warning"] = Field(
        "critical", title="Stop on",
        description="stop on live findings this severe or worse: critical (divergence, NaN) or warning "
        "(also overfitting, a group at lr 0)",
    )  # fmt: skip


class DoctorStopMixin:
    """Runs the doctor's live checks on each batch of steps (``on_steps``) and on each epoch event
    (``on_epoch_logged``), and asks for a clean stop (``request_stop``) on the first finding severe enough.

    The checks are the trainer's ``live_doctor`` (:class:`~trainers.customizations.records.LiveDoctor`), which the
    training layer sets on the composed class (the doctor sits above the customizations, so this module never imports
    it), built from this attempt's ``run_start`` event as the telemetry wrote it (``on_run_start``).

    The stop reason is ``doctor: <title> (<rule id>)``; a ``doctor_stop`` event with the whole finding is written
    first. Under DDP (world size > 1) it only reports: stopping rank 0 alone would leave the other ranks waiting in
    their next all-reduce.
    """

    doctor: LiveDoctor | None = None  # this process' live checks, from its run_start event (rank 0 only)

    def on_run_start(self, event: dict[str, Any]) -> None:
        super().on_run_start(event)
        self.doctor = self.live_doctor(event, self.recipe.customizations.doctor_stop.severity)

    def on_steps(self, steps: dict[str, Any]) -> None:
        super().on_steps(steps)
        if self.doctor is None or self.stop_reason:
            return
        finding = self.doctor.check_steps(steps)
        if finding is not None:
            self.doctor_stop(finding)

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        super().on_epoch_logged(event)
        if self.doctor is None or event.get("final_eval") or self.stop_reason:
            return
        finding = self.doctor.check_epoch(event)
        if finding is not None:
            self.doctor_stop(finding)

    def doctor_stop(self, finding: FindingView) -> None:
        """Record ``finding`` and stop the run on it (single process only, see the class docstring)."""
        from ultralytics.utils import LOGGER

        self.emit_event("doctor_stop", finding=finding.to_dict(), stopping=self.world_size <= 1)
        LOGGER.warning(f"doctor: {finding.severity}: {finding.title}: {finding.evidence}")
        if self.world_size <= 1:
            self.request_stop(f"doctor: {finding.title} ({finding.id})")


ROW = Customization(
    key="doctor_stop",
    rank=80,
    why="only watches the steps and epochs the telemetry hands it, and asks for a stop; nothing depends on it",
    title="Stop on doctor findings",
    help="Stop the run cleanly when the training doctor finds it diverging (NaN, exploding loss or gradients).",
    settings=DoctorStop,
    mixin=DoctorStopMixin,
)
