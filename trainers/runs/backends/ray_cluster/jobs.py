"""A training process as a Ray job: its command, environment and resources; submit it, ask about it, stop it, read
its logs. What was measured and shaped these is in :mod:`trainers.runs.backends.ray_cluster` and ``docs/cluster.md``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers import SOURCE_ROOT
from trainers.runs.backends.ray_cluster.client import CLUSTER_ENV, ClusterError, call_job_api, is_not_found, short_error

PYTHON_ENV = "WORKBENCH_CLUSTER_PYTHON"  # the interpreter on the cluster's nodes (default: this one's path)
JOB_ID_ENV = "WORKBENCH_RAY_JOB_ID"  # set in the job: the training process checks status.json still names it

# SIGTERM -> SIGKILL grace per job (Ray's default is 3 s): a clean stop finishes the current batch and writes its
# run_end; the local launcher never SIGKILLs at all. Overridable with $WORKBENCH_CLUSTER_STOP_WAIT_S.
STOP_WAIT_S = 120
STOP_WAIT_ENV = "WORKBENCH_CLUSTER_STOP_WAIT_S"

RAY_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED")
RAY_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
UNKNOWN = "UNKNOWN"  # the cluster does not know the job id (404): a restarted head, or a deleted job

# Variables of the submitting process that the job gets too (offline settings, workbench settings). PATH is never
# forwarded: the node has its own. PYTHONPATH is set to this checkout (see job_env).
FORWARD_PREFIXES = ("WORKBENCH_", "YOLO_")
FORWARD_EXCLUDE = (CLUSTER_ENV, JOB_ID_ENV)

REPO_ROOT = SOURCE_ROOT


# ---- the job's command and environment -----------------------------------------------------------------------------
def cluster_python() -> str:
    """The interpreter the job runs: ``$WORKBENCH_CLUSTER_PYTHON``, else this process' own (absolute) interpreter.

    A Ray job's bare ``python`` is the first on the node's PATH, which need not be the project's environment; the
    default assumes the same venv at the same path on every node (true on a one-node cluster).
    """
    return os.environ.get(PYTHON_ENV) or sys.executable


def entrypoint(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """The shell command Ray runs for ``argv``: every word quoted with ``shlex``, the process ``exec``\\ ed.

    Ray runs the entrypoint with ``/bin/sh -c``; nothing here is ever interpolated unquoted. ``exec`` makes the
    training process the entrypoint process itself, so Ray's SIGTERM reaches it first and its exit code is Ray's.

    Args:
        argv: The command as an argument list (``[python, "-m", "trainers.cli", ...]``).
        cwd: Folder to ``cd`` into first (the run folder); a node that does not see it fails the job at once.
    """
    if not argv:
        raise ValueError("entrypoint: empty argument list")
    words = [os.fspath(a) for a in argv]
    command = "exec " + shlex.join(words)
    if cwd is not None:
        command = f"cd -- {shlex.quote(os.fspath(cwd))} && {command}"
    return command


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The submitting process' variables the job also gets: ``WORKBENCH_*`` and ``YOLO_*`` (offline settings)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k.startswith(FORWARD_PREFIXES) and k not in FORWARD_EXCLUDE}


def stop_wait_s() -> int:
    """Seconds Ray waits between SIGTERM and SIGKILL on stop: ``$WORKBENCH_CLUSTER_STOP_WAIT_S`` or 120."""
    try:
        value = int(os.environ.get(STOP_WAIT_ENV, STOP_WAIT_S))
    except ValueError:
        value = STOP_WAIT_S
    return max(value, 1)


def job_env(job_id: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``runtime_env["env_vars"]`` for a job: forwarded variables, this checkout on PYTHONPATH, the stop grace.

    PYTHONPATH is the checkout that the submitting process imports (as the local launcher's ``child_env`` does), so
    a development checkout on shared storage is what the job runs. It replaces a PYTHONPATH the node may have: Ray
    does expand ``${PYTHONPATH}`` in env_vars, but to ``REPO:`` when the node has none, and that empty entry puts
    the job's working directory on sys.path (measured). On a real cluster the project must also be installed on
    every node (its dependencies at least): a path the node does not have is just skipped by Python.
    """
    out = forwarded_env()
    out.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "RAY_JOB_STOP_WAIT_TIME_S": str(stop_wait_s()),
            JOB_ID_ENV: job_id,
        }
    )
    out.update(env or {})
    return {str(k): str(v) for k, v in out.items()}


def new_job_id(run_name: str) -> str:
    """A fresh submission id that names the run: ``workbench-<run>-<8 hex>`` (one per attempt: train, resume)."""
    return f"workbench-{run_name}-{uuid.uuid4().hex[:8]}"


_DEVICE_INDEX = re.compile(r"(?:cuda:)?(\d+)")


def gpus_for_device(device: Any) -> int:
    """The job's GPU request for a recipe's ``train.device``.

    ``None``/``""``/``"cpu"``/``"mps"`` -> 0 (a cluster never guesses a GPU); ``0``, ``"0"``, ``"cuda:1"``, ``-1``
    (ultralytics: the idlest GPU) -> 1; ``"0,1"``, ``[0, 1]`` -> 2. Inside the job Ray sets CUDA_VISIBLE_DEVICES to
    the GPUs it granted, numbered from 0, so the trainer must use :func:`device_in_job`, not the recipe's indices.
    """
    if device is None:
        return 0
    if isinstance(device, bool):
        raise ValueError(f"train.device {device!r}: not a device")
    if isinstance(device, int):
        return 1
    if isinstance(device, (list, tuple)):
        return len(device)
    text = str(device).strip().lower()
    if text in ("", "cpu", "mps"):
        return 0
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts == ["-1"]:
        return 1
    if not parts or not all(_DEVICE_INDEX.fullmatch(p) for p in parts):
        raise ValueError(f"train.device {device!r}: expected cpu, a GPU index, or indices like 0,1")
    return len(parts)


def device_in_job(device: Any) -> Any:
    """The ``train.device`` for the trainer inside a job granted :func:`gpus_for_device` GPUs: ``"0,1"`` for 2.

    Ray numbers the granted GPUs from 0 (CUDA_VISIBLE_DEVICES), whatever indices the recipe named. A CPU device
    is returned unchanged.
    """
    n = gpus_for_device(device)
    return device if n == 0 else ",".join(str(i) for i in range(n))


# ---- the primitives ------------------------------------------------------------------------------------------------
def submit(
    address: str,
    run_dir: str | os.PathLike[str],
    argv: Sequence[str],
    *,
    num_gpus: float = 0,
    num_cpus: float = 1,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Submit ``argv`` as a Ray job that runs in ``run_dir``; return its job (submission) id.

    Args:
        address: The Ray job API (``http://HEAD:8265``).
        run_dir: The run folder, on storage the nodes see at the same path (the job ``cd``\\ s into it).
        argv: The training command; ``argv[0]`` should be :func:`cluster_python` (never a bare ``python``).
        num_gpus: GPUs to reserve for the job (:func:`gpus_for_device` of ``train.device``). Ray then sets
            CUDA_VISIBLE_DEVICES to the granted GPUs. With 0, Ray 2.60 leaves CUDA_VISIBLE_DEVICES alone (every GPU
            of the node visible, ray-project/ray#54868), so this sets it to "" unless ``env`` says otherwise: a job
            that reserved no GPU uses none.
        num_cpus: CPUs to reserve. With more than the cluster has free, the job waits as PENDING (queued). Ray
            also sets OMP_NUM_THREADS to it (at least 1) unless ``env`` sets it: torch trains with that many threads
            (measured: num_cpus=1 -> torch.get_num_threads() == 1 on a 2-core node; locally it is 2).
        env: Extra variables for the job (override the defaults of :func:`job_env`).
        job_id: The submission id to use (default :func:`new_job_id`); record it in status.json *before* calling,
            so that a job the launcher lost track of can still be found, and stale jobs can be told apart.
        metadata: Extra metadata on the job (strings). ``workbench_run`` / ``workbench_run_dir`` are always set.

    Raises:
        ClusterError: If the cluster is unreachable or refuses the job (one line).
    """
    run_dir = Path(run_dir)
    job_id = job_id or new_job_id(run_dir.name)
    meta = {"workbench_run": run_dir.name, "workbench_run_dir": str(run_dir)}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})

    job_vars = dict(env or {})
    if not num_gpus:
        job_vars.setdefault("CUDA_VISIBLE_DEVICES", "")
    refused: list[str] = []

    def go(c):
        try:
            return c.submit_job(
                entrypoint=entrypoint(argv, cwd=run_dir),
                submission_id=job_id,
                runtime_env={"env_vars": job_env(job_id, job_vars)},
                metadata=meta,
                entrypoint_num_cpus=num_cpus,
                entrypoint_num_gpus=num_gpus,
            )
        except RuntimeError as e:  # the job API answered: no
            refused.append(short_error(e))
            raise ClusterError(f"the Ray cluster at {address} refused job {job_id}: {refused[0]}") from None

    try:
        return call_job_api(address, "submit", go)
    except ClusterError:
        if refused:
            raise
        # The answer may be what got lost (a timeout after the head took the job): the id is ours, so ask once.
        try:
            if job_info(address, job_id).status != UNKNOWN:
                return job_id
        except ClusterError:
            pass
        raise


@dataclass(frozen=True)
class JobState:
    """What Ray says about a job: ``status`` is one of :data:`RAY_STATUSES` or :data:`UNKNOWN`."""

    status: str
    message: str = ""
    exit_code: int | None = None
    start_time: float | None = None  # seconds since the epoch
    end_time: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in RAY_TERMINAL or self.status == UNKNOWN


def job_info(address: str, job_id: str) -> JobState:
    """Ray's view of a job; ``UNKNOWN`` if the cluster has no such job.

    Raises:
        ClusterError: If the cluster is unreachable.
    """

    def go(c):
        try:
            info = c.get_job_info(job_id)
        except RuntimeError as e:
            if is_not_found(e):
                return JobState(UNKNOWN, f"the Ray cluster at {address} has no job {job_id}")
            raise ClusterError(f"Ray job API at {address}: {short_error(e)}") from None
        status = getattr(info.status, "value", str(info.status))
        return JobState(
            status=str(status),
            message=str(info.message or ""),
            exit_code=info.driver_exit_code,
            start_time=info.start_time / 1000 if info.start_time else None,
            end_time=info.end_time / 1000 if info.end_time else None,
        )

    return call_job_api(address, "job info", go)


def job_status(address: str, job_id: str) -> str:
    """``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``STOPPED``, or ``UNKNOWN`` (no such job)."""
    return job_info(address, job_id).status


def stop(address: str, job_id: str) -> bool:
    """Ask Ray to stop the job: SIGTERM to the training process (and its children), SIGKILL after the grace.

    Ray's ``stop_job`` answers whether the job's supervisor actor is still alive, not whether the job still runs:
    the supervisor records STOPPED (or SUCCEEDED, FAILED) a moment before it exits, and a stop in that moment returns
    True (seen under load: True for a job that ``job_info`` had just reported STOPPED). So the status is asked first,
    and a job that Ray already reports ended is never stopped again.

    Returns:
        True if Ray did not report the job ended and accepted the stop (a job that ends between the two calls was
        still running when asked); False if Ray already reports it ended, or does not know it.
    """
    if job_info(address, job_id).terminal:
        return False

    def go(c):
        try:
            return bool(c.stop_job(job_id))
        except RuntimeError as e:
            if is_not_found(e):
                return False
            raise ClusterError(f"Ray job API at {address}: could not stop {job_id}: {short_error(e)}") from None

    return call_job_api(address, "stop", go)


_RAY_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(INFO|WARNING|DEBUG)\s+\S+:\d+ -- ")


def logs_tail(address: str, job_id: str, lines: int = 20) -> str:
    """The last ``lines`` lines of the job's output (as captured by Ray), without Ray's own set-up lines.

    Empty if the job is unknown. Ray keeps the whole log and returns it whole: fine for a failure message, not
    meant for polling a long run (console.log in the run folder is the run's live output).
    """

    def go(c):
        try:
            text = c.get_job_logs(job_id)
        except RuntimeError as e:
            if is_not_found(e):
                return ""
            why = short_error(e)
            raise ClusterError(f"Ray job API at {address}: could not read the logs of {job_id}: {why}") from None
        kept = [
            ln for ln in (text or "").splitlines()
            if ln.strip() and not _RAY_LOG_LINE.match(ln) and not ln.startswith("Running entrypoint for job ")
        ]  # fmt: skip
        return "\n".join(kept[-lines:])

    return call_job_api(address, "logs", go)


def failure_line(logs: str) -> str:
    """The most telling line of a failed job's output: a traceback's last line, else the last line."""
    # Progress bars redraw with carriage returns: keep what the terminal would show last on each line.
    rows = [ln.rsplit("\r", 1)[-1].strip() for ln in logs.replace("\r\n", "\n").split("\n")]
    rows = [ln for ln in rows if ln]
    if not rows:
        return ""
    for ln in reversed(rows):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*", ln) or ln.startswith("workbench: error:"):
            return ln
    line = rows[-1]
    if "can't cd to" in line or ("No such file or directory" in line and line.startswith(("/bin/sh", "sh:"))):
        line += " (is the runs directory on storage that the cluster's nodes see at the same path?)"
    return line
