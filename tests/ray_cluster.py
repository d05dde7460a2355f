"""A real, private Ray head for tests: started on loopback in its own process group, ended with everything it spawned.

``ray start --head --block`` runs in a new session (so it leads its own process group), with its own ``--temp-dir``
and free ports for every listener Ray would otherwise put on a fixed default (52365, 10001, ...), so two heads on
one machine do not collide. Every process it spawns inherits a marker variable in its environment; teardown uses
that marker (read from ``/proc/<pid>/environ``) to find what is left after the group is gone: Ray puts workers,
job supervisors' entrypoints and their watchdogs in sessions of their own, so the group alone is not all of it.
Only processes carrying this head's marker are ever signalled, each by its pid.

Use :func:`ray_head` (a session-scoped pytest fixture, import it into a test module or conftest) or
:func:`start_head` / :func:`stop_head` from a script.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER_ENV = "WORKBENCH_TEST_RAY_HEAD"
# Ray's unix sockets live under <temp-dir>/session_<date>_<pid>/sockets/...; a socket path is limited to 107 bytes.
MAX_TEMP_DIR_LEN = 40


def ray_executable() -> str:
    """The ``ray`` CLI of the running interpreter's environment (not whatever ``ray`` is first on PATH)."""
    exe = Path(sys.executable).parent / "ray"
    if not exe.is_file():
        pytest.skip(f"ray is not installed in {sys.prefix} (pip install -e '.[cluster]')")
    return str(exe)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (all held open together, so they differ)."""
    with ExitStack() as stack:
        socks = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]


@dataclass
class RayHead:
    """A running head started by :func:`start_head`."""

    address: str  # the job API, http://127.0.0.1:PORT
    proc: subprocess.Popen
    temp_dir: Path
    log_dir: Path
    marker: str
    started_s: float = 0.0  # seconds from spawn until the job API answered
    stopped_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    owns_temp_dir: bool = False  # made by start_head: removed by stop_head once nothing of the head is left

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the ray start process leads its group

    def stderr_tail(self, n: int = 30) -> str:
        return _tail(self.log_dir / "ray-start.err", n) + _tail(self.log_dir / "ray-start.out", n)


def _tail(path: Path, n: int) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:]) + ("\n" if lines else "")


def marked_pids(marker: str) -> list[int]:
    """Pids of live processes (not zombies) whose environment holds ``MARKER_ENV=marker``."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if state != b"Z" and needle in env.split(b"\0"):
            pids.append(int(entry))
    return pids


def _live_stats() -> Iterator[tuple[int, list[bytes]]]:
    """``(pid, /proc/<pid>/stat fields after the command name)`` of every live process (zombies left out)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            yield int(entry), fields


def group_pids(pgid: int) -> list[int]:
    """Pids of live processes (not zombies) in process group ``pgid``."""
    return [pid for pid, fields in _live_stats() if int(fields[2]) == pgid]


def proc_start(pid: int) -> int | None:
    """Start time of ``pid`` (``/proc/<pid>/stat`` field 22), or None if it is gone or a zombie; tells reuse apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return None if fields[0] == b"Z" else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> dict[int, int]:
    """Live descendants of ``pid`` right now, as {pid: start time}."""
    children: dict[int, list[int]] = {}
    for child, fields in _live_stats():
        children.setdefault(int(fields[1]), []).append(child)
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            start = proc_start(child)
            if start is not None and child not in found:
                found[child] = start
                todo.append(child)
    return found


def job_api_answers(address: str, timeout: float = 2.0) -> bool:
    """Whether the job API at ``address`` answers ``list_jobs`` (each request bounded by ``timeout``)."""
    from ray.job_submission import JobSubmissionClient

    from trainers.runs.backends.ray_cluster import ClusterError, check_reachable

    try:
        check_reachable(address, timeout=timeout)  # bounded: a half-started dashboard may accept and not answer
        JobSubmissionClient(address).list_jobs()
    except (ClusterError, ConnectionError, RuntimeError):
        return False
    return True


def start_head(
    temp_dir: str | os.PathLike[str] | None = None,
    *,
    num_cpus: int = 2,
    timeout: float = 90.0,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> RayHead:
    """Start ``ray start --head --block`` on loopback in its own process group; return once the job API answers.

    Args:
        temp_dir: Ray's ``--temp-dir`` (created). Default: a fresh short folder under the system temp dir. A long
            path is replaced by a short one next to it, because Ray's socket paths must stay under 107 bytes.
        num_cpus: ``--num-cpus`` (keep it at 2 or less on a shared machine).
        timeout: Seconds to wait for the job API.
        extra_env: Added to the head's environment (every worker and job entrypoint inherits it).
        extra_args: Added to the ``ray start`` command line.

    Raises:
        RuntimeError: If the head exits or its job API does not answer in time (with the tail of its output).
    """
    from tests.markers import require

    require("cluster", "starts a Ray head")
    owns_temp_dir = temp_dir is None or len(str(temp_dir)) > MAX_TEMP_DIR_LEN
    if owns_temp_dir:
        temp_dir = tempfile.mkdtemp(prefix="rayh-")
    temp_dir = Path(temp_dir)
    temp_dir.mkdir(parents=True, exist_ok=True)
    log_dir = temp_dir / "head-logs"
    log_dir.mkdir(exist_ok=True)
    marker = uuid.uuid4().hex
    dash, agent_http, agent_grpc, env_agent, metrics, client, node_mgr, obj_mgr = free_ports(8)
    cmd = [
        ray_executable(), "start", "--head", "--block",
        "--port", "0",
        "--node-ip-address", "127.0.0.1",
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
        "--dashboard-agent-listen-port", str(agent_http), "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(env_agent), "--metrics-export-port", str(metrics),
        "--ray-client-server-port", str(client),
        "--node-manager-port", str(node_mgr), "--object-manager-port", str(obj_mgr),
        "--num-cpus", str(num_cpus), "--num-gpus", "0",
        "--temp-dir", str(temp_dir),
        "--disable-usage-stats",
        *(extra_args or []),
    ]  # fmt: skip
    env = dict(os.environ)
    env.update(extra_env or {})
    env[MARKER_ENV] = marker
    env["RAY_USAGE_STATS_ENABLED"] = "0"  # offline: no usage report
    # RAY_*ADDRESS would point the head's own clients elsewhere; PYTHONPATH: a node does not know our checkout, so
    # the job must get it from the submitter (trainers.runs.backends.ray_cluster.job_env), as on a real cluster.
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "PYTHONPATH"):
        env.pop(var, None)
    t0 = time.monotonic()
    with open(log_dir / "ray-start.out", "wb") as out, open(log_dir / "ray-start.err", "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True, close_fds=True
        )
    head = RayHead(f"http://127.0.0.1:{dash}", proc, temp_dir, log_dir, marker, env=env, owns_temp_dir=owns_temp_dir)
    deadline = t0 + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"ray start exited with code {proc.returncode} before its job API answered at {head.address}; "
                    f"its output ends with:\n{head.stderr_tail()}"
                )
            if job_api_answers(head.address):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Ray job API at {head.address} did not answer within {timeout:.0f} s; "
                    f"ray start's output ends with:\n{head.stderr_tail()}"
                )
            time.sleep(0.25)
    except BaseException:
        stop_head(head)
        raise
    head.started_s = time.monotonic() - t0
    return head


def _signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_head(head: RayHead, term_wait: float = 2.0, leftover_wait: float = 1.0) -> float:
    """End the head: TERM its group, wait, KILL the group, then end what it spawned outside the group.

    ``ray start --block`` and its gcs_server, raylet and monitor do not exit on SIGTERM (measured: still there 12 s
    later), so the TERM wait is short; the KILL is what ends them. What it spawned outside its group (workers, job
    supervisors, entrypoints and their watchdogs) is found three ways, because no single one sees all of it: the
    marker in the environment (lost when a process rewrites its title over its environment, as the dashboard's
    subprocesses do), a snapshot of its descendants taken before the TERM (misses later children), and the group.

    Returns:
        Seconds it took.

    Raises:
        RuntimeError: If anything carrying the head's marker is still alive at the end.
    """
    t0 = time.monotonic()
    pgid = head.pgid
    tree = descendants(head.proc.pid)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + term_wait
    while time.monotonic() < deadline and group_pids(pgid):
        head.proc.poll()  # reap ray start itself so it does not linger as a zombie of ours
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        head.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    # Workers, job entrypoints and their watchdogs run in sessions of their own: find them by the marker. Without
    # the raylet they exit on their own within a second or so; whatever does not is killed, by pid.
    # A job entrypoint's own children can outlive it all: when the supervisor's worker exits it kills its direct
    # children (the entrypoint's shell and the watchdog that would have killed the entrypoint's group), not theirs.

    def leftovers() -> list[int]:
        same = [pid for pid, start in tree.items() if proc_start(pid) == start]
        return sorted(set(group_pids(pgid) + marked_pids(head.marker) + same))

    deadline = time.monotonic() + leftover_wait
    while time.monotonic() < deadline and leftovers():
        time.sleep(0.1)
    _signal_pids(leftovers(), signal.SIGKILL)
    deadline = time.monotonic() + 5.0  # a big multi-threaded process takes a moment to die after SIGKILL
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    head.stopped_s = time.monotonic() - t0
    if left:
        raise RuntimeError(f"Ray head {head.address}: processes still alive after teardown: {sorted(set(left))}")
    if head.owns_temp_dir:
        shutil.rmtree(head.temp_dir, ignore_errors=True)
    return head.stopped_s


@pytest.fixture(scope="session")
def ray_head_process(tmp_path_factory) -> Iterator[RayHead]:
    """A private Ray head on loopback for the whole session (the :class:`RayHead`: address, pids, timings).

    Its ``--temp-dir`` is under pytest's tmp dir when that path is short enough for Ray's sockets, else a short
    folder under the system temp dir. At teardown every process of it is gone (checked: teardown fails if not).
    """
    base = tmp_path_factory.mktemp("ray")
    head = start_head(base)
    try:
        yield head
    finally:
        stop_head(head)


@pytest.fixture(scope="session")
def ray_head(ray_head_process: RayHead) -> str:
    """The job API address of the session's private Ray head: ``http://127.0.0.1:PORT``."""
    return ray_head_process.address
