"""The Ray backend's primitives (trainers/runs/backends/ray_cluster.py) against a real Ray head on loopback; no mocks
of Ray.

The head is the session fixture of tests/ray_cluster.py: ``ray start --head --block`` in its own process group,
ended with everything it spawned. Tests that need no head (the status table, quoting, addresses, an unreachable
cluster) run without Ray installed too, except the ones that talk to a port.
"""

from __future__ import annotations

import http.server
import importlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, wait_for
from tests.ray_cluster import free_ports
from trainers.runs.backends import ray_cluster as cluster
from trainers.runs.backends.ray_cluster import ClusterError, JobState, settle

# ray_head / ray_head_process: the session's private Ray head (tests/conftest.py; started on first use, ended with
# everything it spawned at the end of the session).
# A stand-in for the training process' signal handling: SIGTERM -> a 2 s "clean stop" -> a file -> exit 0.
TRAP = r"""
import os, signal, sys, time
out, clean_s = sys.argv[1], float(sys.argv[2])
got = []
signal.signal(signal.SIGTERM, lambda sig, frame: got.append((sig, time.time())))
with open(out + ".pid.tmp", "w") as f:
    f.write(f"{os.getpid()} {os.getpgid(0)}\n")
os.replace(out + ".pid.tmp", out + ".pid")
while not got:
    time.sleep(0.02)
time.sleep(clean_s)
with open(out, "w") as f:
    f.write(f"{got[0][0]} {got[0][1]} {time.time()}\n")
"""


def wait_status(address: str, job_id: str, states, timeout: float = 60.0) -> tuple[str, float]:
    t0 = time.monotonic()
    status = wait_for(
        lambda: (s := cluster.job_status(address, job_id)) in states and s, timeout, 0.05, f"job {job_id} in {states}"
    )
    return status, time.monotonic() - t0


def start_trap(address: str, tmp_path: Path, clean_s: float = 2.0, env=None) -> tuple[str, Path, int]:
    """Submit the TRAP script; return (job id, its output file, its pid) once it runs and has its handler."""
    script = tmp_path / "trap.py"
    script.write_text(TRAP)
    out = tmp_path / "clean-stop"
    job = cluster.submit(address, tmp_path, [cluster.cluster_python(), str(script), str(out), str(clean_s)], env=env)
    pid_file = Path(str(out) + ".pid")
    wait_for(pid_file.is_file, 60, 0.02, "the trap script to start")
    return job, out, int(pid_file.read_text().split()[0])


# Holds every CPU of the head (2) until its release file exists: a queue that lasts as long as the test needs, however
# slow the machine. Exits 1 after 120 s so that a failed test cannot leave it holding the head.
HOLD = r"""
import os, sys, time
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.05)
"""


@contextmanager
def holding_cpus(address: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run :data:`HOLD` on both CPUs of the head; yield (its job id, the file that releases it) once it runs.

    Released on the way out whatever happened, so that a failing test does not leave the next ones queued."""
    script, release = tmp_path / "hold.py", tmp_path / "release-cpus"
    script.write_text(HOLD)
    job = cluster.submit(address, tmp_path, [cluster.cluster_python(), str(script), str(release)], num_cpus=2)
    try:
        wait_status(address, job, ("RUNNING",))
        yield job, release
    finally:
        release.touch()


def observe_status(address: str, job_id: str, seconds: float) -> set[str]:
    """Every status Ray reports for the job while polling it for ``seconds`` (an observation window, not a wait)."""
    seen, end = set(), time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(cluster.job_status(address, job_id))
        time.sleep(0.1)
    return seen


# ---- against the real head -----------------------------------------------------------------------------------------
# Time limits of 180 s: the first test to ask for the session's head also waits for it to start (up to 90 s).
@pytest.mark.timeout(180)
def test_trivial_job_succeeds_with_our_python_and_checkout(ray_head, tmp_path):
    probe = (
        "import os, sys, trainers; print(sys.executable, trainers.__file__, os.getcwd(), os.environ[sys.argv[1]],"
        " repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    )
    t0 = time.monotonic()
    job = cluster.submit(ray_head, tmp_path, [cluster.cluster_python(), "-c", probe, "RAY_JOB_STOP_WAIT_TIME_S"])
    status, _ = wait_status(ray_head, job, cluster.RAY_TERMINAL)
    elapsed = time.monotonic() - t0
    assert status == "SUCCEEDED", cluster.logs_tail(ray_head, job)
    exe, module, cwd, grace, cuda = cluster.logs_tail(ray_head, job).splitlines()[-1].split()
    assert exe == sys.executable  # the absolute interpreter in the entrypoint, not the node's first `python`
    assert Path(module) == REPO / "trainers" / "__init__.py"  # the submitter's checkout, via PYTHONPATH
    assert Path(cwd) == tmp_path  # the job runs in the run folder
    assert grace == str(cluster.STOP_WAIT_S)  # the stop grace is set per job
    assert cuda == "''"  # no GPU reserved: none visible (Ray itself would leave them all visible)
    assert job.startswith(f"workbench-{tmp_path.name}-")
    assert elapsed < 45, f"a trivial job took {elapsed:.1f} s"  # 2-3 s here; generous for a loaded machine


@pytest.mark.timeout(180)
def test_workbench_cli_imports_in_a_job(ray_head, tmp_path):
    job = cluster.submit(ray_head, tmp_path, [cluster.cluster_python(), "-m", "trainers.cli", "--help"])
    status, _ = wait_status(ray_head, job, cluster.RAY_TERMINAL)
    assert status == "SUCCEEDED", cluster.logs_tail(ray_head, job)
    assert "usage: workbench" in cluster.logs_tail(ray_head, job, lines=200)


@pytest.mark.timeout(180)
def test_bare_python_is_the_nodes_not_ours(ray_head, tmp_path):
    """Why the entrypoint names the interpreter: a bare `python` is the first on the node's PATH (the raylet's)."""
    c = cluster.client(ray_head)
    job = c.submit_job(entrypoint='command -v python || echo none; echo "$PATH"')
    wait_status(ray_head, job, cluster.RAY_TERMINAL)
    found, path = (["", ""] + cluster.logs_tail(ray_head, job).splitlines())[-2:]
    assert path == os.environ["PATH"]  # the head's PATH (ours, since we started it), not the venv's bin first
    venv_bin = str(Path(sys.executable).parent)
    if not path.startswith(venv_bin):
        assert not found.startswith(venv_bin), "bare python resolved to our venv although it is not first on PATH"
    # The other way that works: PATH in the job's env_vars (the module uses the absolute interpreter instead).
    job = c.submit_job(entrypoint="command -v python", runtime_env={"env_vars": {"PATH": f"{venv_bin}:{path}"}})
    wait_status(ray_head, job, cluster.RAY_TERMINAL)
    assert cluster.logs_tail(ray_head, job).splitlines()[-1] == str(Path(venv_bin) / "python")


@pytest.mark.timeout(180)
def test_arguments_are_never_interpreted_by_the_shell(ray_head, tmp_path):
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}); `touch {marker}` 'quote\" ; touch {marker} # $HOME"
    argv = [cluster.cluster_python(), "-c", "import sys; print(repr(sys.argv[1:]))", evil, "--x=$HOME"]
    run_dir = tmp_path / f"odd dir $(touch {marker}) 'q"  # a runs root may have spaces; quoting covers the rest
    run_dir.mkdir(parents=True)
    job = cluster.submit(ray_head, run_dir, argv)
    status, _ = wait_status(ray_head, job, cluster.RAY_TERMINAL)
    assert status == "SUCCEEDED"
    assert cluster.logs_tail(ray_head, job).splitlines()[-1] == repr([evil, "--x=$HOME"])
    assert not marker.exists()


@pytest.mark.timeout(180)
def test_stop_reaches_the_clean_sigterm_path(ray_head, tmp_path):
    """The stop's SIGTERM reaches the trainer at once, it finishes its 2 s clean stop, and Ray says STOPPED when it
    exits. The bounds separate that from the failures they guard against, with room for a loaded machine: SIGTERM
    or STOPPED only at the end of the 120 s grace (a shell between Ray and the trainer), or a SIGKILL (no file)."""
    job, out, _pid = start_trap(ray_head, tmp_path, clean_s=2.0)
    t0 = time.time()
    assert cluster.stop(ray_head, job) is True
    status, took = wait_status(ray_head, job, cluster.RAY_TERMINAL)
    assert status == "STOPPED"
    sig, got_at, done_at = out.read_text().split()  # written after the 2 s clean stop: not SIGKILLed before
    assert int(sig) == signal.SIGTERM
    assert float(got_at) - t0 < 20, "SIGTERM reached the process late"  # 0.1 s here
    assert float(done_at) - float(got_at) >= 2.0
    assert took < 2.0 + 30, f"STOPPED only {took:.1f} s after the stop"  # 2.15 s here; the grace is 120 s
    assert cluster.stop(ray_head, job) is False  # Ray reports it ended: never stopped again


@pytest.mark.timeout(180)
def test_stop_grace_is_per_job_then_sigkill(ray_head, tmp_path):
    """RAY_JOB_STOP_WAIT_TIME_S in the job's env_vars is what its supervisor waits before SIGKILL.

    A 6 s grace against Ray's default of 3 s and the job's own 60 s clean stop: STOPPED no sooner than 6 s after the
    stop (a lower bound, which load can only make longer) and no file (SIGKILLed before its clean stop ended)."""
    job, out, _pid = start_trap(ray_head, tmp_path, clean_s=60.0, env={"RAY_JOB_STOP_WAIT_TIME_S": "6"})
    t0 = time.monotonic()
    assert cluster.stop(ray_head, job) is True
    status, _ = wait_status(ray_head, job, cluster.RAY_TERMINAL)
    took = time.monotonic() - t0
    assert status == "STOPPED"
    assert took >= 6.0, f"STOPPED after {took:.2f} s with a 6 s grace"
    assert not out.exists()  # killed in the middle of its 60 s clean stop


@pytest.mark.timeout(180)
def test_sigkilled_entrypoint_is_failed_within_10s(ray_head, tmp_path):
    job, _out, pid = start_trap(ray_head, tmp_path)
    assert cluster.job_status(ray_head, job) == "RUNNING"
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)  # a lost worker / the OOM killer, from outside Ray
    status, _ = wait_status(ray_head, job, cluster.RAY_TERMINAL, timeout=10)
    took = time.monotonic() - t0
    assert status == "FAILED"
    assert took < 10, f"FAILED {took:.2f} s after SIGKILL"
    info = cluster.job_info(ray_head, job)
    assert info.exit_code == -signal.SIGKILL  # exec: the trainer is the entrypoint process, no shell in between
    s = settle(info, {"status": "running", "job_id": job}, logs=cluster.logs_tail(ray_head, job))
    assert s is not None and s.fields["status"] == "failed" and s.append_run_end
    assert s.fields["error"] == (
        f"Ray job {job} failed (exit code -9): killed by SIGKILL (out of memory, or killed outside the workbench?)"
    )


@pytest.mark.timeout(180)
def test_failed_job_message_names_the_error(ray_head, tmp_path):
    argv = [cluster.cluster_python(), "-c", "import sys; print('working'); sys.exit('workbench: error: data.yaml: no')"]
    job = cluster.submit(ray_head, tmp_path, argv)
    assert wait_status(ray_head, job, cluster.RAY_TERMINAL)[0] == "FAILED"
    s = settle(
        cluster.job_info(ray_head, job), {"status": "starting", "job_id": job}, logs=cluster.logs_tail(ray_head, job)
    )
    assert s.fields["error"] == f"Ray job {job} failed (exit code 1): workbench: error: data.yaml: no"


@pytest.mark.timeout(180)
def test_run_dir_the_node_cannot_see_fails_at_once_with_a_hint(ray_head, tmp_path):
    job = cluster.submit(ray_head, tmp_path / "not-there", [cluster.cluster_python(), "-c", "print(1)"])
    assert wait_status(ray_head, job, cluster.RAY_TERMINAL)[0] == "FAILED"
    line = cluster.failure_line(cluster.logs_tail(ray_head, job))
    assert "not-there" in line and "same path" in line


@pytest.mark.timeout(180)
def test_duplicate_job_id_is_refused_in_one_line(ray_head, tmp_path):
    job = cluster.submit(ray_head, tmp_path, ["true"])
    with pytest.raises(ClusterError) as e:
        cluster.submit(ray_head, tmp_path, ["true"], job_id=job)
    assert str(e.value).startswith(f"the Ray cluster at {ray_head} refused job {job}: ") and "\n" not in str(e.value)


@pytest.mark.timeout(180)
def test_unknown_job(ray_head):
    assert cluster.job_status(ray_head, "workbench-no-such-job") == cluster.UNKNOWN
    assert cluster.stop(ray_head, "workbench-no-such-job") is False
    assert cluster.logs_tail(ray_head, "workbench-no-such-job") == ""


@pytest.mark.timeout(180)
def test_our_address_wins_over_ray_address_env(ray_head, monkeypatch):
    """Inside a Ray job RAY_ADDRESS is set (to the GCS); JobSubmissionClient would use it instead of ours."""
    (refused,) = free_ports(1)
    monkeypatch.setenv("RAY_ADDRESS", f"http://127.0.0.1:{refused}")
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", f"http://127.0.0.1:{refused}")
    assert cluster.check_reachable(ray_head)
    assert os.environ["RAY_ADDRESS"] == f"http://127.0.0.1:{refused}"  # restored


@pytest.mark.timeout(180)
def test_stop_while_pending_is_reported_only_when_the_job_gets_its_turn(ray_head, tmp_path):
    """A Ray quirk the launcher must handle: stop_job on a queued job returns True but leaves it PENDING until it
    can be scheduled; then Ray starts the entrypoint, signals it at once, and reports STOPPED - or FAILED, when the
    entrypoint exits before the supervisor looks it up (``psutil.NoSuchProcess`` in JobSupervisor.run, measured
    with ``true``). The entrypoint may get far enough to run (seen with ``touch``), so a trainer must check that
    status.json still names its job. stop_requested in status.json makes the run ``stopped`` either way."""
    with holding_cpus(ray_head, tmp_path) as (hog_job, _release):
        queued = cluster.submit(ray_head, tmp_path, ["true"], num_cpus=2)
        assert cluster.job_status(ray_head, queued) == "PENDING"
        assert cluster.stop(ray_head, queued) is True
        assert observe_status(ray_head, queued, seconds=1.0) == {"PENDING"}  # still: the stop waits for its turn
    status, _ = wait_status(ray_head, queued, cluster.RAY_TERMINAL)
    assert status in ("STOPPED", "FAILED"), cluster.job_info(ray_head, queued)
    assert cluster.job_status(ray_head, hog_job) == "SUCCEEDED"  # it got its turn only once the hog was released
    run = {"status": "starting", "job_id": queued, "stop_requested": "2026-01-01T00:00:00+00:00"}
    assert settle(cluster.job_info(ray_head, queued), run).fields["status"] == "stopped"


@pytest.mark.cluster  # a second head of its own
@pytest.mark.timeout(180)
def test_head_fixture_starts_and_leaves_nothing(tmp_path):
    from tests.ray_cluster import group_pids, marked_pids, start_head, stop_head

    head = start_head(tmp_path / "h")
    try:
        job = cluster.submit(head.address, tmp_path, ["sleep", "60"])  # a job still running at teardown
        wait_status(head.address, job, ("RUNNING",))
    finally:
        took = stop_head(head)
    assert not group_pids(head.pgid) and not marked_pids(head.marker)
    assert head.started_s < 60 and took < 30, (head.started_s, took)  # 5-6 s and 2-3 s here; room for load


@pytest.mark.cluster  # runs `ray start`
@pytest.mark.timeout(180)
def test_head_that_cannot_start_fails_with_its_output(tmp_path):
    from tests.ray_cluster import start_head

    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as e:
        start_head(tmp_path / "h", extra_args=["--no-such-option"])
    assert "ray start exited with code" in str(e.value) and "no-such-option" in str(e.value)
    assert time.monotonic() - t0 < 60  # fails at once, not at start_head's 90 s deadline


# ---- no head needed ------------------------------------------------------------------------------------------------
def _assert_one_line_unreachable(e: ClusterError, address: str) -> None:
    msg = str(e)
    assert "\n" not in msg
    assert msg.startswith(f"cannot reach the Ray job API at {address}")
    assert "ray start --head" in msg and "--cluster" in msg and "$WORKBENCH_CLUSTER" in msg


@pytest.mark.timeout(30)
def test_unreachable_refused_port_fails_fast_with_one_line():
    pytest.importorskip("ray.job_submission")
    (port,) = free_ports(1)
    address = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as e:
        cluster.check_reachable(address)
    assert time.monotonic() - t0 < 5
    _assert_one_line_unreachable(e.value, address)


@pytest.mark.timeout(30)
def test_unreachable_silent_listener_is_bounded():
    """A port that accepts and never answers: Ray's own client waits forever there (no request timeout)."""
    pytest.importorskip("ray.job_submission")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(ClusterError) as e:
            cluster.check_reachable(address, timeout=2.0, read_timeout=1.0)
        assert time.monotonic() - t0 < 5
    _assert_one_line_unreachable(e.value, address)


@pytest.mark.timeout(30)
def test_something_else_on_the_port_is_named():
    pytest.importorskip("ray.job_submission")

    class NotRay(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), NotRay)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ClusterError, match="answers but is not a Ray job API"):
            cluster.check_reachable(f"http://127.0.0.1:{srv.server_port}")
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.timeout(30)
def test_without_ray_installed_the_error_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if ray were not installed
        "from trainers.runs.backends import ray_cluster as cluster\n"
        "try:\n    cluster.check_reachable('http://127.0.0.1:9')\n"
        "except cluster.ClusterError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=20)
    assert out.stdout.strip() == (
        '--cluster needs Ray, which is not installed; install it with pip install -e ".[cluster]"'
    ), out.stderr


@pytest.mark.timeout(30)
def test_importing_the_module_does_not_import_ray():
    code = (
        "import sys, trainers.runs.backends.ray_cluster, trainers.cli.commands; "
        "print('ray' in sys.modules, 'requests' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=20)
    assert out.stdout.split() == ["False", "False"], out.stderr


class EndedJobLiveSupervisor:
    """A job API in the moment after the job's supervisor recorded its end and before the supervisor actor exited:
    Ray's ``stop_job`` answers True then (it checks the actor, not the job), as it did once on a loaded machine."""

    def __init__(self, status: str):
        self.status, self.stops = status, []

    def get_job_info(self, job_id):
        return types.SimpleNamespace(status=self.status, message="", driver_exit_code=0, start_time=1, end_time=None)

    def stop_job(self, job_id):
        self.stops.append(job_id)
        return True


@pytest.mark.parametrize(
    ("status", "stopped"),
    [("STOPPED", False), ("SUCCEEDED", False), ("FAILED", False), ("PENDING", True), ("RUNNING", True)],
)
def test_stop_never_stops_a_job_ray_reports_ended(monkeypatch, status, stopped):
    address = cluster.normalize_address("http://127.0.0.1:9")
    api = EndedJobLiveSupervisor(status)
    monkeypatch.setitem(importlib.import_module("trainers.runs.backends.ray_cluster.client")._clients, address, api)
    assert cluster.stop(address, "workbench-r-1") is stopped
    assert api.stops == (["workbench-r-1"] if stopped else [])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:8265", "http://127.0.0.1:8265"),
        ("http://head:8265/", "http://head:8265"),
        (" https://head:443 ", "https://head:443"),
    ],
)
def test_normalize_address(given, expected):
    assert cluster.normalize_address(given) == expected


@pytest.mark.parametrize("bad", ["ray://head:10001", "", "   "])
def test_normalize_address_rejects(bad):
    with pytest.raises(ClusterError):
        cluster.normalize_address(bad)


def test_resolve_address(monkeypatch):
    monkeypatch.delenv(cluster.CLUSTER_ENV, raising=False)
    assert cluster.resolve_address(None) is None
    monkeypatch.setenv(cluster.CLUSTER_ENV, "head:8265")
    assert cluster.resolve_address(None) == "http://head:8265"
    assert cluster.resolve_address("http://other:1") == "http://other:1"


def test_entrypoint_is_quoted_and_execs():
    argv = ["/venv/bin/python", "-m", "trainers.cli", "train", "/r/it's here.yaml", "--name", "a;b $(c)"]
    cmd = cluster.entrypoint(argv, cwd="/runs/x y")
    assert cmd.startswith("cd -- '/runs/x y' && exec ")
    assert shlex.split(cmd.split(" && ", 1)[1]) == ["exec", *argv]
    with pytest.raises(ValueError):
        cluster.entrypoint([])


@pytest.mark.parametrize(
    ("device", "gpus", "in_job"),
    [
        (None, 0, None),
        ("cpu", 0, "cpu"),
        ("", 0, ""),
        (0, 1, "0"),
        ("0", 1, "0"),
        ("cuda:3", 1, "0"),
        (-1, 1, "0"),
        ("-1", 1, "0"),
        ("2,3", 2, "0,1"),
        ([0, 1, 2], 3, "0,1,2"),
    ],
)
def test_gpus_for_device(device, gpus, in_job):
    assert cluster.gpus_for_device(device) == gpus
    assert cluster.device_in_job(device) == in_job


@pytest.mark.parametrize("bad", ["gpu", "0,x", True])
def test_gpus_for_device_rejects(bad):
    with pytest.raises(ValueError):
        cluster.gpus_for_device(bad)


def test_job_env(monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", "/cfg")
    monkeypatch.setenv("WORKBENCH_HOME", "/wb")
    monkeypatch.setenv(cluster.CLUSTER_ENV, "http://x:1")
    monkeypatch.setenv("UNRELATED_SECRET", "s")
    monkeypatch.delenv(cluster.STOP_WAIT_ENV, raising=False)
    env = cluster.job_env("workbench-r-1", {"EXTRA": "1"})
    assert env["YOLO_CONFIG_DIR"] == "/cfg" and env["WORKBENCH_HOME"] == "/wb" and env["EXTRA"] == "1"
    assert cluster.CLUSTER_ENV not in env and "UNRELATED_SECRET" not in env and "PATH" not in env
    assert env["PYTHONPATH"] == str(REPO) and env[cluster.JOB_ID_ENV] == "workbench-r-1"
    assert env["RAY_JOB_STOP_WAIT_TIME_S"] == str(cluster.STOP_WAIT_S)
    monkeypatch.setenv(cluster.STOP_WAIT_ENV, "7")
    assert cluster.job_env("j")["RAY_JOB_STOP_WAIT_TIME_S"] == "7"


# ---- the status table (pure) ---------------------------------------------------------------------------------------
END = {"status": "completed", "best_epoch": 3, "best_metric": {"name": "mAP50-95", "value": 0.5}, "error": None}
LOGS = "epoch 1/3\nTraceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory\n"


@pytest.mark.parametrize(
    ("ray", "current", "run_end", "expected"),
    [
        # the trainer recorded its own end: status.json wins, whatever Ray says
        ("FAILED", {"status": "completed"}, None, None),
        ("RUNNING", {"status": "stopped"}, None, None),
        ("UNKNOWN", {"status": "failed"}, None, None),
        # the job (or its place in the queue) still owns the run
        ("PENDING", {"status": "starting"}, None, None),
        ("RUNNING", {"status": "starting"}, None, None),
        ("RUNNING", {"status": "running"}, None, None),
        ("RUNNING", {"status": "running", "stop_requested": "t"}, None, None),
        # ended and said so in telemetry, died before its final status.json write
        ("FAILED", {"status": "running"}, END, ("completed", None, False)),
        # the user asked for this end
        ("STOPPED", {"status": "running", "stop_requested": "t"}, None, ("stopped", None, True)),
        ("FAILED", {"status": "starting", "stop_requested": "t"}, None, ("stopped", None, True)),
        ("UNKNOWN", {"status": "running", "stop_requested": "t"}, None, ("stopped", None, True)),
        # stopped outside the workbench (ray job stop)
        ("STOPPED", {"status": "running"}, None, ("stopped", None, True)),
        # died
        ("FAILED", {"status": "running"}, None, ("failed", "Ray job J failed (exit code 1): RuntimeError: CUDA", True)),
        ("FAILED", {"status": "running"}, None, ("failed", "Ray job J failed: Job supervisor actor died", True)),
        ("FAILED", {"status": "running"}, None, ("failed", "Ray job J failed (exit code -9): killed by SIGKILL", True)),
        ("SUCCEEDED", {"status": "running"}, None, ("failed", "Ray job J exited 0 without a run-end event", True)),
        ("UNKNOWN", {"status": "starting"}, None, ("failed", "Ray job J is unknown to the cluster", True)),
    ],
)
def test_settle_table(ray, current, run_end, expected):
    exit_code, logs, message = None, LOGS, ""
    if expected and "exit code" in (expected[1] or ""):
        exit_code = int(expected[1].split("exit code ")[1].split(")")[0])
    elif expected and "supervisor" in (expected[1] or ""):
        logs, message = "", "Job supervisor actor died: The actor died unexpectedly.\n\tclass_name: JobSupervisor"
    s = settle(
        JobState(ray, message=message, exit_code=exit_code), {**current, "job_id": "J"}, last_run_end=run_end, logs=logs
    )
    if expected is None:
        assert s is None
        return
    status, error_start, append = expected
    assert s.fields["status"] == status
    assert s.append_run_end is append
    assert s.fields["ray_status"] == ray
    if error_start is None:
        assert s.fields["error"] is None
    else:
        assert s.fields["error"].startswith(error_start)
    if run_end is not None:
        assert s.fields["best_epoch"] == 3 and s.fields["best_metric"] == END["best_metric"]


def test_settle_failed_without_logs_uses_rays_message():
    msg = "Job supervisor actor died: The actor died unexpectedly before finishing this task.\n\tclass_name: X"
    s = settle(JobState("FAILED", message=msg), {"status": "running", "job_id": "J"})
    assert (
        s.fields["error"] == "Ray job J failed: Job supervisor actor died: The actor died unexpectedly before "
        "finishing this task."
    )


def test_failure_line():
    assert cluster.failure_line(LOGS) == "RuntimeError: CUDA out of memory"
    assert cluster.failure_line("a\nworkbench: error: recipe.yaml: bad\n") == "workbench: error: recipe.yaml: bad"
    assert cluster.failure_line("") == ""
    assert cluster.failure_line("a\r  1/3  10%\r  1/3 100%\n") == "1/3 100%"
    assert "same path" in cluster.failure_line("/bin/sh: 1: cd: can't cd to /runs/x")
