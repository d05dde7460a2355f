"""Ray's view of a run's job combined with the run's own status.json: the table that settles a run whose job is over.

Pure: no Ray, no files. The launcher's Ray backend (:mod:`trainers.runs.backends.ray`) applies the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainers.runs.backends.ray_cluster.jobs import JobState, failure_line
from trainers.statuses import ACTIVE_STATUSES, RunStatus, ended_status

ACTIVE = ACTIVE_STATUSES  # kept under its old name: the cluster package re-exports it


@dataclass(frozen=True)
class Settlement:
    """How to settle an active run whose job is over: the status.json fields, and whether to append a run_end."""

    fields: dict[str, Any]
    append_run_end: bool  # telemetry has no run_end for this end: append one (source "launcher"), as for a dead pid


def settle(
    ray: JobState,
    current: Mapping[str, Any],
    *,
    last_run_end: Mapping[str, Any] | None = None,
    logs: str = "",
) -> Settlement | None:
    """Combine Ray's view of a run's job with the run's own status.json: what to write, or None to leave it.

    status.json is the truth while it says the run ended (the training process wrote it) and while the job is
    alive. Only when Ray says the job is over and status.json still says ``starting``/``running`` does Ray's word
    settle the run, because the training process cannot anymore. The rows, first match wins:

    ===================  =========================  ========================================================
    Ray job              status.json                result
    ===================  =========================  ========================================================
    any                  completed/stopped/failed   unchanged: the trainer recorded its own end
    PENDING              starting                   unchanged: queued, waiting for cluster resources
    RUNNING              starting/running           unchanged
    ended [#]_           active, and telemetry has  the run_end's status (the trainer ended and said so,
                         a run_end for this attempt but died before its final status.json write)
    ended                active, stop_requested     stopped (the user asked for this end; also a stop while
                                                    queued, which Ray reports late, and a SIGKILL after the
                                                    stop grace)
    STOPPED              active                     stopped (stopped outside the workbench: ``ray job stop``)
    FAILED               active                     failed: ``Ray job ID failed (exit code N): <why>``; why:
                                                    the signal for a negative exit code (SIGKILL: OOM, a
                                                    kill), else the job's log tail (a traceback's last
                                                    line), else Ray's message (``Job supervisor actor
                                                    died: ...``: the node was lost)
    SUCCEEDED            active                     failed: ``Ray job ID exited 0 without a run-end event``
    UNKNOWN              active                     failed: the cluster lost the job (restarted head?)
    ===================  =========================  ========================================================

    .. [#] ended: SUCCEEDED, FAILED, STOPPED, or UNKNOWN (the cluster has no such job).

    Args:
        ray: :func:`job_info` of the run's job (``current["job_id"]``).
        current: The run's status.json.
        last_run_end: The latest attempt's ``run_end`` event, if telemetry has one.
        logs: :func:`logs_tail` of the job; only used when Ray says FAILED.
    """
    state = current.get("status")
    if state not in ACTIVE or not ray.terminal:
        return None
    job = current.get("job_id") or "?"
    base = {"exit_code": ray.exit_code, "ray_status": ray.status}
    if last_run_end is not None:
        end_status = last_run_end.get("status")
        fields = {
            "status": ended_status(end_status),
            "best_epoch": last_run_end.get("best_epoch", current.get("best_epoch")),
            "best_metric": last_run_end.get("best_metric", current.get("best_metric")),
            "error": last_run_end.get("error"),
        }
        return Settlement({**fields, **base}, append_run_end=False)
    if current.get("stop_requested") or ray.status == "STOPPED":
        return Settlement({"status": RunStatus.STOPPED, "error": None, **base}, append_run_end=True)
    if ray.status == "FAILED":
        code = f" (exit code {ray.exit_code})" if ray.exit_code is not None else ""
        if ray.exit_code is not None and ray.exit_code < 0:  # killed: the log's last line is just progress output
            detail = f"killed by {_signal_name(-ray.exit_code)} (out of memory, or killed outside the workbench?)"
        else:
            detail = failure_line(logs) or _message_detail(ray.message)
        error = f"Ray job {job} failed{code}" + (f": {detail}" if detail else "")
    elif ray.status == "SUCCEEDED":
        error = f"Ray job {job} exited 0 without a run-end event"
    else:
        error = f"Ray job {job} is unknown to the cluster (the head restarted, or the job was deleted)"
    return Settlement({"status": RunStatus.FAILED, "error": error, **base}, append_run_end=True)


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _message_detail(message: str) -> str:
    """The first line of a Ray job message that says why (e.g. ``Job supervisor actor died: ...``)."""
    for ln in (message or "").splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("Job entrypoint command failed with exit code"):
            return ln if len(ln) <= 200 else ln[:197] + "..."
    return ""
