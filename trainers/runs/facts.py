"""What a run's dashboard header says about it, computed in one place: the dashboard's header and ``workbench runs
--json`` both take their facts from :func:`run_facts`, so the two cannot disagree (the best epoch once did: status.json
had it, the CLI listed none).

No Streamlit and no torch: status.json, the folded telemetry (:class:`~trainers.telemetry.run_log.RunLog`, its steps
from the step store) and the doctor's findings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainers.doctor import DatasetFacts, Finding, count_by_severity, dataset_facts_for_run, diagnose
from trainers.runs.notes import RunNotes, read_notes
from trainers.statuses import ACTIVE_STATUSES
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.run_reader import RunReader


@dataclass(frozen=True)
class Progress:
    """The last finished epoch, the planned epochs, the best epoch and its metric (``{"name", "value"}``)."""

    epoch: int
    epochs: int | None
    best_epoch: int | None
    best_metric: Mapping[str, Any]


def progress(status: Mapping[str, Any], log: RunLog) -> Progress:
    """status.json's progress, unless the run is live and the log already holds a later epoch.

    status.json is right across resumes (it keeps the best of every attempt), but the trainer logs an epoch just
    before it writes status.json, so a render between the two would show the charts' epoch 3 under a header at 2.
    """
    epoch = int(status.get("epoch") or 0)
    best_epoch, best = status.get("best_epoch") or log.best_epoch, status.get("best_metric") or {}
    if not best and best_epoch:  # a status.json without it (runs from before it was recorded): the epoch event's
        saved = [e for e in log.epochs if e.get("epoch") == best_epoch and e.get("best_metric")]
        best = saved[-1]["best_metric"] if saved else {}
    last = log.epochs[-1] if log.epochs else {}
    live = status.get("status") in ACTIVE_STATUSES  # an ended run's status.json is final
    if live and isinstance(last.get("epoch"), int) and last["epoch"] > epoch and not last.get("final_eval"):
        epoch = last["epoch"]
        if last.get("best_saved") and last.get("best_metric"):
            best_epoch, best = epoch, last["best_metric"]
    return Progress(epoch, status.get("epochs") or log.epochs_planned, best_epoch, best)


def eta_seconds(log: RunLog, epochs: int | None, now: float | None = None) -> float | None:
    """Time left: the mean duration of the last (up to 5) epochs times the epochs left, minus the current one's time.

    Returns:
        Seconds (>= 0), or None before the first epoch ends or when the epoch count is unknown.
    """
    epochs = epochs or log.epochs_planned
    timed = [e for e in log.epochs if isinstance(e.get("epoch_time"), (int, float)) and e["epoch_time"] > 0]
    if not epochs or not timed:
        return None
    last = log.epochs[-1]
    left = epochs - int(last.get("epoch", 0))
    if left <= 0:
        return 0.0
    per_epoch = sum(e["epoch_time"] for e in timed[-5:]) / len(timed[-5:])
    now = time.time() if now is None else now
    elapsed = max(0.0, now - float(last.get("t", now)))
    return max(0.0, left * per_epoch - min(elapsed, per_epoch))


def findings_of(
    log: RunLog, dataset: DatasetFacts | None, run_dir: str | os.PathLike[str] | None = None
) -> list[Finding] | None:
    """The doctor's findings as the header counts them; None before the first epoch (the header shows no doctor).
    ``run_dir``: the run folder, whose per-epoch evidence the prediction rules read (None leaves them out)."""
    return diagnose(log, dataset, run_dir=run_dir) if log.epochs else None


@dataclass(frozen=True)
class RunFacts:
    """The facts the dashboard header shows about a run, as ``workbench runs --json`` lists them.

    Attributes:
        status: status.json's status.
        epoch: The last finished epoch (:func:`progress`).
        epochs: The planned epochs.
        best_epoch: The epoch best.pt holds, across resumes.
        best_metric: Its metric, ``{"name", "value"}``; None before there is one.
        steps: Optimizer steps logged.
        clipped_share: The share of those steps whose gradients were clipped; None before the first step.
        eta_s: Seconds left while the run is active (:func:`eta_seconds`); None otherwise.
        findings: The doctor's findings by severity (``{"critical": n, "warning": n, "info": n}``); None before the
            first epoch.
        note: The user's note (notes.json, :mod:`trainers.runs.notes`); ``""`` for none.
        tags: Its tags, lower-case, in the order they were added.
    """

    status: str
    epoch: int
    epochs: int | None
    best_epoch: int | None
    best_metric: dict[str, Any] | None
    steps: int
    clipped_share: float | None
    eta_s: float | None
    findings: dict[str, int] | None
    note: str = ""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {**asdict(self), "tags": list(self.tags)}


def run_facts(
    status: Mapping[str, Any],
    log: RunLog,
    findings: Sequence[Finding] | None = None,
    now: float | None = None,
    notes: RunNotes | None = None,
) -> RunFacts:
    """The header's facts from status.json, the folded telemetry, the findings (:func:`findings_of`) and the notes."""
    state = str(status.get("status", "unknown"))
    now_at = progress(status, log)
    share = log.clip_share()
    return RunFacts(
        status=state,
        epoch=now_at.epoch,
        epochs=now_at.epochs,
        best_epoch=now_at.best_epoch,
        best_metric=dict(now_at.best_metric) or None,
        steps=log.n_steps,
        clipped_share=share if share is not None and log.n_steps else None,
        eta_s=eta_seconds(log, now_at.epochs, now) if state in ACTIVE_STATUSES else None,
        findings=count_by_severity(list(findings)) if findings is not None else None,
        note=notes.note if notes else "",
        tags=notes.tags if notes else (),
    )


def read_run_facts(run_dir: str | os.PathLike[str], status: Mapping[str, Any]) -> RunFacts:
    """A run folder's facts: its telemetry and step store read whole, its dataset facts from ``dataset_check.json``
    or scanned once and cached there (as ``workbench doctor`` does; only for a run that finished an epoch)."""
    log = RunReader(Path(run_dir)).poll()
    found = findings_of(log, dataset_facts_for_run(run_dir), run_dir) if log.epochs else None
    return run_facts(status, log, found, notes=read_notes(run_dir))
