"""The launcher's Ray backend: a run's training process as a Ray job, watched through Ray's job status.

The run folder is the same as for a local run, on storage that this machine and the cluster's nodes see at the same
path; the training process writes status.json, telemetry and weights there itself. This module only replaces the
local backend's "spawn a detached process" (:func:`submit`), "is that pid alive" (:func:`refresh`, through
:func:`trainers.runs.backends.ray_cluster.settle`) and "signal it" (:func:`stop`). The launcher
(:mod:`trainers.runs.launcher`) chooses the
backend from status.json's ``backend`` field. ``ray`` itself is only imported by
:mod:`trainers.runs.backends.ray_cluster` when a
cluster is used. See ``docs/cluster.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.run_files import CONSOLE_FILE, TELEMETRY_FILE
from trainers.runs.backends import ray_cluster as cluster
from trainers.runs.folder import end_run
from trainers.runs.status import now_iso, read_status, update_status, write_status
from trainers.statuses import ACTIVE_STATUSES, RunStatus

BACKEND = "ray"
CPUS_ENV = "WORKBENCH_CLUSTER_CPUS"  # default CPU request of a run's job
DEFAULT_CPUS = 1.0  # Ray also sets OMP_NUM_THREADS to it: torch trains with this many threads


def cpus_request(value: float | str | None = None) -> float:
    """The CPUs a run's job reserves: ``value`` (``--cpus``), else ``$WORKBENCH_CLUSTER_CPUS``, else 1.

    Raises:
        RunError: If it is not a number > 0.
    """
    raw, what = (value, "--cpus") if value not in (None, "") else (os.environ.get(CPUS_ENV), CPUS_ENV)
    if raw in (None, ""):
        return DEFAULT_CPUS
    try:
        cpus = float(raw)
    except (TypeError, ValueError):
        cpus = 0.0
    if not cpus > 0:
        raise RunError(f"{what} must be a number of CPUs > 0 for each run's Ray job, got {raw!r}")
    return cpus


def job_gpus(device: Any) -> tuple[int, str | None]:
    """The job's GPU request for a recipe's ``train.device``, and the ``--device`` the trainer gets inside the job.

    Ray numbers the GPUs it granted from 0 inside the job, so ``"2,3"`` asks for 2 GPUs and trains on ``"0,1"``;
    a CPU device asks for none and is left as it is (``None``: no ``--device``).

    Raises:
        RunError: Naming ``train.device``, for a value that is no device.
    """
    try:
        gpus = cluster.gpus_for_device(device)
    except ValueError as e:
        raise RunError(str(e)) from None
    return gpus, (str(cluster.device_in_job(device)) if gpus else None)


def owns_run_here(status: Mapping[str, Any]) -> bool:
    """Whether this process is the run's current Ray job (its training process, inside the job)."""
    job = os.environ.get(cluster.JOB_ID_ENV)
    return bool(job) and status.get("job_id") == job


def claim_refusal(run_dir: Path, status: Mapping[str, Any]) -> str | None:
    """Inside a Ray job: why this process must not train the run, or None when status.json still names this job.

    A job stopped while it was queued is started by Ray later anyway (and signalled at once); by then the launcher
    has settled the run as stopped, or the run was resumed under another job. That late job must not train.
    """
    job = os.environ.get(cluster.JOB_ID_ENV)
    if not job or (status.get("job_id") == job and status.get("status") == RunStatus.STARTING):
        return None
    return (
        f"run {run_dir.name!r} is no longer waiting for Ray job {job} (status {status.get('status')}, job "
        f"{status.get('job_id')}); this job does not train it"
    )


# ---- submit --------------------------------------------------------------------------------------------------------
def submit(
    run_dir: Path,
    command: Sequence[str],
    address: str,
    *,
    device: Any = None,
    cpus: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Record a new job for the run in status.json, then submit ``python -m trainers.cli COMMAND...`` as that job.

    The job id is in status.json before the submit, so a job whose submit answer was lost can still be found, and a
    late job can tell it is stale (:func:`claim_refusal`). ``job_log_offset`` is the telemetry's size now: a
    ``run_end`` after it belongs to this job.

    Args:
        run_dir: The run folder, reserved (``starting``).
        command: The ``trainers.cli`` arguments (``train RECIPE --runs-dir R --name N --existing``, ``resume DIR``).
        address: The Ray job API.
        device: The recipe's ``train.device``: the job's GPU request (:func:`job_gpus`).
        cpus: The job's CPU request (:func:`cpus_request`).
        metadata: Extra job metadata (the sweep it belongs to).

    Returns:
        The job id.

    Raises:
        ClusterError: If the cluster is unreachable or refuses the job (the run is left for the caller to mark).
    """
    address = cluster.normalize_address(address)
    gpus, in_job = job_gpus(device)
    cpus = cpus_request(cpus)
    argv = [cluster.cluster_python(), "-m", "trainers.cli", *command, *(["--device", in_job] if in_job else [])]
    job = cluster.new_job_id(run_dir.name)
    try:
        offset = (run_dir / TELEMETRY_FILE).stat().st_size
    except OSError:
        offset = 0
    write_status(
        run_dir, backend=BACKEND, cluster=address, job_id=job, job_log_offset=offset, num_gpus=gpus, num_cpus=cpus,
        ray_status=None,
    )  # fmt: skip
    with open(run_dir / CONSOLE_FILE, "a", encoding="utf-8") as log:
        log.write(f"[{now_iso()}] workbench launcher: Ray job {job} on {address}: {cluster.entrypoint(argv)}\n")
    cluster.submit(address, run_dir, argv, num_gpus=gpus, num_cpus=cpus, job_id=job, metadata=metadata)
    return job


# ---- watch ---------------------------------------------------------------------------------------------------------
def run_end_since(run_dir: Path, offset: int) -> dict[str, Any] | None:
    """The last ``run_end`` written after byte ``offset`` of the telemetry (this job's), or None."""
    from trainers.telemetry.events import read_events

    events = read_events(run_dir / TELEMETRY_FILE, int(offset or 0))[0]
    ends = [e for e in events if e.get("event") == "run_end"]
    return ends[-1] if ends else None


def refresh(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
    """The Ray half of ``refresh_status`` for an active run with a job: settle it once Ray says the job is over.

    While the job lives, nothing is written; the returned status carries Ray's word in ``ray_status`` (``PENDING``:
    queued for resources). A cluster out of reach leaves the run as it is (it may only be a moment), with the
    one-line reason in ``cluster_error``; neither field is written then.
    """
    if owns_run_here(status):
        return status
    address, job = status.get("cluster") or "", status["job_id"]
    try:
        info = cluster.job_info(address, job)
        end = run_end_since(run_dir, status.get("job_log_offset") or 0) if info.terminal else None
        logs = cluster.logs_tail(address, job) if info.status == "FAILED" and end is None else ""
    except cluster.ClusterError as e:
        return {**status, "cluster_error": str(e)}
    settlement = cluster.settle(info, status, last_run_end=end, logs=logs)
    if settlement is None:
        return {**status, "ray_status": info.status}

    def still_ours(current: dict[str, Any]) -> bool:
        return current.get("status") in ACTIVE_STATUSES and current.get("job_id") == job

    fields = settlement.fields
    if settlement.append_run_end:  # the one run-end writer, as for a local process that died
        marked: list[bool] = []  # whether this call ended it (another poller may have settled it first)
        settled = end_run(
            run_dir, fields["status"], error=fields.get("error"), exit_code=info.exit_code, source="launcher",
            only_if=lambda current: marked.append(still_ours(current)) or marked[-1],
        )  # fmt: skip
        if marked and marked[-1]:  # its process could not post its end: the recipe's notify block, if any
            from trainers.runs.notify import notify_recorded_end

            notify_recorded_end(run_dir, settled)
    else:
        update_status(run_dir, lambda current: dict(fields) if still_ours(current) else None)
    return update_status(run_dir, lambda current: {"ray_status": info.status} if current.get("job_id") == job else None)


# ---- stop ----------------------------------------------------------------------------------------------------------
def stop(run_dir: Path, status: Mapping[str, Any]) -> str:
    """Ask Ray to stop the run's job: SIGTERM reaches the trainer's clean-stop path. Returns the job id.

    A job still queued (PENDING) is settled here as ``stopped``: Ray keeps it queued until it could run, then starts
    and signals it (docs/cluster.md); the training process then refuses to train (:func:`claim_refusal`).

    Raises:
        RunError: If the run has no job yet or the job already ended.
        ClusterError: If the cluster is unreachable (nothing is changed).
    """
    address, job = status.get("cluster") or "", status.get("job_id")
    if not job:
        raise RunError(f"run {run_dir.name!r} is starting and has no Ray job yet; try again in a moment")
    queued = cluster.job_info(address, job).status == "PENDING"
    accepted = cluster.stop(address, job)
    if not accepted:
        raise RunError(f"run {run_dir.name!r}: its Ray job {job} has already ended; nothing to stop")
    write_status(run_dir, stop_requested=now_iso())
    if queued:

        def still_queued(current: dict[str, Any]) -> bool:
            return current.get("status") == RunStatus.STARTING and current.get("job_id") == job

        end_run(run_dir, RunStatus.STOPPED, source="launcher", only_if=still_queued)
        update_status(run_dir, lambda current: {"ray_status": "PENDING"} if current.get("job_id") == job else None)
    return job


def recorded_cluster(run_dir: Path) -> str | None:
    """The job API address a run was last submitted to, or None for a local run."""
    status = read_status(run_dir)
    return status.get("cluster") if status.get("backend") == BACKEND else None
