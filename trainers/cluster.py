"""The Ray backend's primitives: submit a training process as a Ray job, watch it, stop it, read its logs.

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

import os
import re
import shlex
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import WorkbenchError

CLUSTER_ENV = "WORKBENCH_CLUSTER"  # default for --cluster
PYTHON_ENV = "WORKBENCH_CLUSTER_PYTHON"  # the interpreter on the cluster's nodes (default: this one's path)
JOB_ID_ENV = "WORKBENCH_RAY_JOB_ID"  # set in the job: the training process checks status.json still names it
INSTALL_HINT = 'pip install -e ".[cluster]"'

CONNECT_TIMEOUT_S = 3.0  # TCP connect to the job API
# One job API answer (status, stop, logs, submit). Generous: a head on a busy small machine can answer slowly, and a
# timed-out submit must then be checked by its id, not retried.
READ_TIMEOUT_S = 20.0
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

REPO_ROOT = Path(__file__).resolve().parent.parent
_ADDRESS_VARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


class ClusterError(WorkbenchError):
    """The Ray cluster cannot be used (not reachable, ray not installed, the job API refused). The CLI exits 2."""


# ---- address and client --------------------------------------------------------------------------------------------
def normalize_address(address: str) -> str:
    """``HOST:PORT`` or ``http(s)://HOST:PORT[/]`` -> ``http(s)://HOST:PORT``.

    Raises:
        ClusterError: For another scheme (``ray://`` is Ray Client, not the job API) or an empty address.
    """
    text = str(address).strip().rstrip("/")
    if not text:
        raise ClusterError("--cluster: empty address; pass the Ray job API, e.g. http://127.0.0.1:8265")
    if "://" not in text:
        text = "http://" + text
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ClusterError(
            f"--cluster {address}: not a Ray job API address; pass http://HEAD:8265 (the dashboard port), "
            f"not a {scheme}:// address"
        )
    return text


def resolve_address(cli_value: str | None = None) -> str | None:
    """The cluster for a command: ``--cluster`` > ``$WORKBENCH_CLUSTER`` > None (run locally)."""
    raw = cli_value if cli_value not in (None, "") else os.environ.get(CLUSTER_ENV)
    return normalize_address(raw) if raw else None


def _unreachable(address: str, why: str = "") -> ClusterError:
    reason = f" ({why})" if why else ""
    return ClusterError(
        f"cannot reach the Ray job API at {address}{reason}; start a head with `ray start --head` "
        f"or pass the right --cluster / ${CLUSTER_ENV}"
    )


def _import_ray_client():
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed; install it with {INSTALL_HINT}") from None
    return JobSubmissionClient


_env_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _make_client(address: str, connect_timeout: float, read_timeout: float):
    base = _import_ray_client()
    import requests

    class _BoundedClient(base):
        # Ray forwards extra keyword arguments of _do_request to requests.request(), which waits forever by default.
        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", (connect_timeout, read_timeout))
            return super()._do_request(method, endpoint, **kwargs)

    with _env_lock:
        # JobSubmissionClient reads these before its address argument; inside a Ray job RAY_ADDRESS is the GCS.
        saved = {k: os.environ.pop(k) for k in _ADDRESS_VARS if k in os.environ}
        try:
            return _BoundedClient(address)
        except requests.exceptions.ConnectTimeout:
            raise _unreachable(address, f"no connection within {connect_timeout:g} s") from None
        except requests.exceptions.Timeout:
            raise _unreachable(address, f"connected, but no answer within {read_timeout:g} s") from None
        except (requests.exceptions.RequestException, ConnectionError) as e:
            raise _unreachable(address, _connection_reason(e)) from None
        except RuntimeError as e:  # "Version check returned 404": something else listens there
            raise ClusterError(
                f"{address} answers but is not a Ray job API ({_short(e)}); pass the Ray dashboard address "
                f"(default port 8265) with --cluster / ${CLUSTER_ENV}"
            ) from None
        finally:
            os.environ.update(saved)


def client(address: str):
    """A ``JobSubmissionClient`` for ``address`` whose every request is bounded by timeouts (cached per address).

    Each request waits at most :data:`CONNECT_TIMEOUT_S` to connect and :data:`READ_TIMEOUT_S` for the answer.
    Constructing it already asks the job API for its version (twice), so a new client is also a reachability check.

    Raises:
        ClusterError: One line naming the address, if ray is missing or the job API does not answer.
    """
    address = normalize_address(address)
    if address not in _clients:
        _clients[address] = _make_client(address, CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    return _clients[address]


def _connection_reason(e: BaseException) -> str:
    """Why a connection failed, in a few words (Ray's own ConnectionError only repeats the address)."""
    text = " ".join(f"{e} {e.__context__ or ''}".split()).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("failed to resolve", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("no route", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("timed out", "connection timed out"),
    ):
        if needle in text:
            return reason
    return "connection failed"


def _short(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_reachable(address: str, *, timeout: float = CONNECT_TIMEOUT_S, read_timeout: float = 10.0) -> str:
    """Fail in a few seconds, with one line, unless the Ray job API at ``address`` answers; return Ray's version.

    Never cached: each call asks the cluster again (two ``GET /api/version``, each bounded by ``timeout`` to
    connect and ``read_timeout`` to answer). Nothing listening, an unknown host, or no route fail within
    ``timeout``; a port that accepts and never answers within ``read_timeout``.

    Raises:
        ClusterError: ``cannot reach the Ray job API at ADDRESS (...); start a head with `ray start --head` or pass
            the right --cluster / $WORKBENCH_CLUSTER``, or the install hint if ray is missing.
    """
    address = normalize_address(address)
    c = _make_client(address, timeout, read_timeout)
    return str(getattr(c, "_server_ray_version", "") or "")


def _call(address: str, what: str, fn):
    """Run one job API call, turning transport failures into the one-line unreachable error."""
    import requests

    try:
        return fn(client(address))
    except requests.exceptions.ConnectTimeout:
        raise _unreachable(address, f"{what}: no connection within {CONNECT_TIMEOUT_S:g} s") from None
    except requests.exceptions.Timeout:
        raise _unreachable(address, f"{what}: connected, but no answer within {READ_TIMEOUT_S:g} s") from None
    except (requests.exceptions.RequestException, ConnectionError) as e:
        _clients.clear()  # the next call reconnects (and re-checks the version)
        raise _unreachable(address, f"{what}: {_connection_reason(e)}") from None


def _is_not_found(e: BaseException) -> bool:
    return isinstance(e, RuntimeError) and "status code 404" in str(e)


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
            refused.append(_short(e))
            raise ClusterError(f"the Ray cluster at {address} refused job {job_id}: {refused[0]}") from None

    try:
        return _call(address, "submit", go)
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
            if _is_not_found(e):
                return JobState(UNKNOWN, f"the Ray cluster at {address} has no job {job_id}")
            raise ClusterError(f"Ray job API at {address}: {_short(e)}") from None
        status = getattr(info.status, "value", str(info.status))
        return JobState(
            status=str(status),
            message=str(info.message or ""),
            exit_code=info.driver_exit_code,
            start_time=info.start_time / 1000 if info.start_time else None,
            end_time=info.end_time / 1000 if info.end_time else None,
        )

    return _call(address, "job info", go)


def job_status(address: str, job_id: str) -> str:
    """``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``STOPPED``, or ``UNKNOWN`` (no such job)."""
    return job_info(address, job_id).status


def stop(address: str, job_id: str) -> bool:
    """Ask Ray to stop the job: SIGTERM to the training process (and its children), SIGKILL after the grace.

    Returns:
        True if Ray accepted the stop; False if the job had already ended or is unknown.
    """

    def go(c):
        try:
            return bool(c.stop_job(job_id))
        except RuntimeError as e:
            if _is_not_found(e):
                return False
            raise ClusterError(f"Ray job API at {address}: could not stop {job_id}: {_short(e)}") from None

    return _call(address, "stop", go)


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
            if _is_not_found(e):
                return ""
            raise ClusterError(f"Ray job API at {address}: could not read the logs of {job_id}: {_short(e)}") from None
        kept = [
            ln for ln in (text or "").splitlines()
            if ln.strip() and not _RAY_LOG_LINE.match(ln) and not ln.startswith("Running entrypoint for job ")
        ]  # fmt: skip
        return "\n".join(kept[-lines:])

    return _call(address, "logs", go)


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


# ---- Ray's status + status.json -> the run's status ----------------------------------------------------------------
ACTIVE = ("starting", "running")


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
            "status": end_status if end_status in ("completed", "stopped", "failed") else "failed",
            "best_epoch": last_run_end.get("best_epoch", current.get("best_epoch")),
            "best_metric": last_run_end.get("best_metric", current.get("best_metric")),
            "error": last_run_end.get("error"),
        }
        return Settlement({**fields, **base}, append_run_end=False)
    if current.get("stop_requested") or ray.status == "STOPPED":
        return Settlement({"status": "stopped", "error": None, **base}, append_run_end=True)
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
    return Settlement({"status": "failed", "error": error, **base}, append_run_end=True)


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
