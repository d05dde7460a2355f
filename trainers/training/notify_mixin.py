"""Alerts from inside the training process: the doctor's live critical checks, and the run's end message.

:class:`NotifyMixin` is composed into the trainer when the recipe has a ``notify`` block
(:mod:`trainers.training.compose`). It runs the doctor's live checks (:class:`trainers.doctor.live.LiveDoctor`, at
severity critical) on each flush of steps and each epoch event, whether or not ``doctor_stop`` is on, and posts each
critical finding once (per rule id) through the run's :class:`~trainers.runs.notify.Notifier`. The end message is
posted by :func:`post_run_end`, which the training process calls once the run's end is recorded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trainers.doctor.live import LiveDoctor
from trainers.runs.notify import CRITICAL, END_WAIT_S, Notifier, critical_message, end_message, notify_recorded_end
from trainers.statuses import Severity


class NotifyMixin:
    """Posts critical findings as they are found (rank 0; ``notifier`` is None elsewhere and before the run starts).

    A check that raises is reported once on stderr and the checks are turned off: an alert must never stop training.
    """

    notifier: Notifier | None = None
    notify_doctor: LiveDoctor | None = None

    def on_run_start(self, event: dict[str, Any]) -> None:
        super().on_run_start(event)
        settings = self.recipe.notify
        if settings is None or not self.run_dir:
            return
        self.notifier = Notifier(settings, Path(self.run_dir))
        self.notified: set[str] = set()
        if self.notifier.wants(CRITICAL):
            self.notify_doctor = LiveDoctor(event, Severity.CRITICAL.value)

    def on_steps(self, steps: dict[str, Any]) -> None:
        super().on_steps(steps)
        if self.notify_doctor is not None:
            self._notify_finding(lambda doctor: doctor.check_steps(steps))

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        super().on_epoch_logged(event)
        if self.notify_doctor is not None and not event.get("final_eval"):
            self._notify_finding(lambda doctor: doctor.check_epoch(event))

    def _notify_finding(self, check) -> None:
        try:
            finding = check(self.notify_doctor)
        except Exception as e:  # the checks are best effort here; training goes on without them
            print(f"workbench: notify: live checks off ({type(e).__name__}: {e})", file=sys.stderr)
            self.notify_doctor = None
            return
        if finding is None or finding.severity != Severity.CRITICAL or finding.id in self.notified:
            return
        self.notified.add(finding.id)
        self.notifier.post(critical_message(Path(self.run_dir).name, finding))


def post_run_end(trainer: Any, run_dir: Path, status: dict[str, Any], wait_s: float = END_WAIT_S) -> None:
    """Post the end message of the run whose end was just recorded (``status``: ``end_run``'s return), waiting at
    most ``wait_s`` for it and anything still queued. A trainer that never reached its run start (or none at all)
    posts through the run's recipe.yaml. Never raises."""
    try:
        notifier = trainer.notifier if isinstance(trainer, NotifyMixin) else None
        if notifier is None:
            notify_recorded_end(run_dir, status, wait_s=wait_s)
            return
        notifier.post(end_message(Path(run_dir).name, status))
        notifier.close(wait_s)
    except Exception as e:  # an alert is never worth a failed run
        print(f"workbench: notify: end message not sent ({type(e).__name__}: {e})", file=sys.stderr)
