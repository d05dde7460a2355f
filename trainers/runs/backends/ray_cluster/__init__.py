"""The Ray backend's primitives: submit a training process as a Ray job, watch it, stop it, read its logs.

Three modules, by job: :mod:`~trainers.runs.backends.ray_cluster.client` (the address, a bounded client, reachability),
:mod:`~trainers.runs.backends.ray_cluster.jobs` (the job's command and environment; submit, job_info, stop, logs_tail)
and
:mod:`~trainers.runs.backends.ray_cluster.settle` (Ray's job status + status.json -> the run's status). Their public
names are
re-exported here: ``from trainers import cluster; cluster.submit(...)``.

The launcher calls these for runs started with ``--cluster ADDRESS`` (the Ray job API, ``http://HEAD:8265``); the run
folder, status.json and telemetry stay exactly as for local runs, on storage that the UI and every node see at the same
path. Ray only replaces "spawn a detached process" and "is that pid alive": the training process itself is the same
``python -m trainers.cli train|resume ...``, writing the same files. See ``docs/cluster.md``.

``ray`` is an optional extra (``pip install -e ".[cluster]"``). It is imported inside the functions that need it,
never at import time: the core install and the UI import this module without Ray present.

What was measured on Ray 2.60 (a one-node head on loopback, 2 CPUs) and shaped this module:

- A job's entrypoint is run with ``/bin/sh -c`` in a new session, with the environment of the node's raylet (the
  ``ray start`` shell's PATH) plus the job's ``runtime_env["env_vars"]``. A bare ``python`` is whatever is first on
  the node's PATH (pyenv's interpreter here, not the project's venv), so the entrypoint names the interpreter by
  absolute path (:func:`cluster_python`). Its working directory is the raylet's, so the entrypoint ``cd``s into the
  run folder first (which also fails fast, with a clear line, on a node that does not see the runs directory).
- ``stop_job`` sends SIGTERM to the entrypoint process and each of its descendants (one by one, not to the group),
  waits ``RAY_JOB_STOP_WAIT_TIME_S`` (default 3 s; read by the job's supervisor actor, so it can be set per job in
  ``runtime_env["env_vars"]``), then SIGKILLs them. 3 s is too short for a clean stop at a batch boundary, so
  :func:`submit` sets it per job (:data:`STOP_WAIT_S`). The entrypoint ``exec``\\ s the trainer: without ``exec`` the
  shell in between made the job report STOPPED only at the end of the wait (3.0 s for a 2 s clean stop, against
  2.15 s with ``exec``), and a SIGKILLed trainer showed as exit code 137 instead of -9.
- ``stop_job`` answers whether the job's supervisor actor is alive, not whether the job runs: the supervisor records
  STOPPED (or SUCCEEDED, FAILED) a moment before it exits, and a stop in that moment returns True (seen once under
  load). :func:`stop` therefore asks the job's status first.
- A job whose entrypoint is SIGKILLed shows as FAILED 0.09 s later; a job whose supervisor actor dies (its node
  lost) shows as FAILED 1.8 s later, and the entrypoint is SIGKILLed (no clean stop, no ``run_end``).
- ``stop_job`` on a PENDING job (waiting for resources) returns True but the job stays PENDING until resources
  free up; then Ray *starts the entrypoint* and signals it at once, and reports STOPPED (or FAILED, when the
  entrypoint exits before the supervisor looks it up). The training process must therefore refuse to start unless
  status.json still names its job (:data:`JOB_ID_ENV`).
- Ray sets OMP_NUM_THREADS to the job's CPU request (at least 1): with ``num_cpus=1`` torch trains single-threaded.
- ``JobSubmissionClient`` sends its HTTP requests without a timeout: against a port that accepts connections and
  never answers it hangs for good (measured: still hanging after 20 s). :func:`client` bounds every request.
- ``JobSubmissionClient(address)`` ignores ``address`` when ``$RAY_API_SERVER_ADDRESS`` or ``$RAY_ADDRESS`` is
  set (every Ray job has ``RAY_ADDRESS`` set to its GCS). :func:`client` makes the address given here win.
"""

from __future__ import annotations

from trainers.runs.backends.ray_cluster.client import (
    CLUSTER_ENV,
    CONNECT_TIMEOUT_S,
    INSTALL_HINT,
    READ_TIMEOUT_S,
    ClusterError,
    check_reachable,
    client,
    normalize_address,
    resolve_address,
)
from trainers.runs.backends.ray_cluster.jobs import (
    FORWARD_EXCLUDE,
    FORWARD_PREFIXES,
    JOB_ID_ENV,
    PYTHON_ENV,
    RAY_STATUSES,
    RAY_TERMINAL,
    REPO_ROOT,
    STOP_WAIT_ENV,
    STOP_WAIT_S,
    UNKNOWN,
    JobState,
    cluster_python,
    device_in_job,
    entrypoint,
    failure_line,
    forwarded_env,
    gpus_for_device,
    job_env,
    job_info,
    job_status,
    logs_tail,
    new_job_id,
    stop,
    stop_wait_s,
    submit,
)
from trainers.runs.backends.ray_cluster.settle import ACTIVE, Settlement, settle

__all__ = [
    "ACTIVE", "CLUSTER_ENV", "CONNECT_TIMEOUT_S", "FORWARD_EXCLUDE", "FORWARD_PREFIXES", "INSTALL_HINT", "JOB_ID_ENV",
    "PYTHON_ENV", "RAY_STATUSES", "RAY_TERMINAL", "READ_TIMEOUT_S", "REPO_ROOT", "STOP_WAIT_ENV", "STOP_WAIT_S",
    "UNKNOWN", "ClusterError", "JobState", "Settlement", "check_reachable", "client", "cluster_python",
    "device_in_job", "entrypoint", "failure_line", "forwarded_env", "gpus_for_device", "job_env", "job_info",
    "job_status", "logs_tail", "new_job_id", "normalize_address", "resolve_address", "settle", "stop",
    "stop_wait_s", "submit",
]  # fmt: skip
