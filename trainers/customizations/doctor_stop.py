"""Stop on doctor findings: end a run cleanly, with the finding as its stop reason, when the doctor sees it break."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trainers.customizations.table import Customization, Settings


class DoctorStop(Settings):
    severity: Literal["critical", "warning"] = Field(
        "critical", title="Stop on",
        description="stop on live findings this severe or worse: critical (divergence, NaN) or warning "
        "(also overfitting, a group at lr 0)",
    )  # fmt: skip


class DoctorStopMixin:
    """Runs the doctor's live rules on each batch of steps (``on_steps``) and on each epoch event
    (``on_epoch_logged``), and asks for a clean stop (``request_stop``) on the first finding severe enough.

    The stop reason is ``doctor: <title> (<rule id>)``; a ``doctor_stop`` event with the whole finding is written
    first. Under DDP (world size > 1) it only reports: stopping rank 0 alone would leave the other ranks waiting in
    their next all-reduce.
    """

    def on_steps(self, steps: dict[str, Any]) -> None:
        super().on_steps(steps)
        if getattr(self, "stop_reason", None):
            return
        from trainers.doctor.live import StepWatch

        watch = self.__dict__.setdefault("_doctor_watch", StepWatch())
        finding = watch.check(steps)
        if finding is not None:
            self.doctor_stop(finding)

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        super().on_epoch_logged(event)
        if event.get("final_eval") or getattr(self, "stop_reason", None):
            return
        from trainers.doctor.diagnose import diagnose
        from trainers.telemetry.run_log import RunLog

        log = self.__dict__.get("_doctor_log")
        if log is None:
            start = {"event": "run_start", "recipe": self.recipe.to_dict(), "names": list(self.data["names"].values()),
                     "param_groups": self.param_group_names(), "start_epoch": self.start_epoch + 1}  # fmt: skip
            log = self.__dict__.setdefault("_doctor_log", RunLog.from_events([start]))
        log.extend([event])
        severity = self.recipe.customizations.doctor_stop.severity
        findings = diagnose(log, live_only=True, min_severity=severity)
        if findings:
            self.doctor_stop(findings[0])

    def doctor_stop(self, finding) -> None:
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
