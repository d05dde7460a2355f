"""Follow a detached run from a terminal: print its console output as it grows until it ends, as ``workbench train``
does for a run trained in the foreground. Used by ``workbench train|resume --cluster`` (the run is a Ray job).

Ctrl-C asks the run to stop cleanly (as it does for a local ``workbench train``) and keeps following until it has
stopped; a second Ctrl-C leaves it running and returns 130.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from trainers.errors import WorkbenchError
from trainers.run_files import CONSOLE_FILE
from trainers.runs import launcher
from trainers.statuses import ACTIVE_STATUSES, RunStatus

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def console_size(run_dir: Path) -> int:
    """The console.log's size now: where following starts so that an earlier attempt's output is not repeated."""
    try:
        return (Path(run_dir) / CONSOLE_FILE).stat().st_size
    except OSError:
        return 0


class _Console:
    """The bytes appended to console.log since ``offset``, written to ``out`` as they come."""

    def __init__(self, path: Path, offset: int, out: TextIO):
        self.path, self.offset, self.out = path, offset, out

    def pump(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        if data:
            self.offset += len(data)
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()


def describe_end(name: str, status: dict[str, Any]) -> str:
    """``run 'x' completed (best mAP50-95=0.4120)`` (the recipe's name of the metric) / ``run 'x' failed: <error>``."""
    state = status.get("status")
    if state == RunStatus.FAILED:
        return f"run {name!r} failed: {status.get('error') or 'see its console.log'}"
    best = status.get("best_metric") or {}
    value = best.get("value")
    shown = f" (best {best.get('name')}={value:.4f})" if isinstance(value, (int, float)) else ""
    return f"run {name!r} {state}{shown}"


def follow(run_dir: str | Path, offset: int = 0, out: TextIO | None = None, poll_s: float = 1.0) -> int:
    """Print ``run_dir``'s console output from byte ``offset`` until the run ends; return the CLI's exit code.

    Returns:
        0 if the run completed or stopped, 1 if it failed, 130 if a second Ctrl-C left it running.
    """
    run_dir = Path(run_dir)
    out = out or sys.stdout
    console = _Console(run_dir / CONSOLE_FILE, offset, out)
    said: set[str] = set()
    stopping = False
    while True:
        try:
            console.pump()
            status = launcher.refresh_status(run_dir)
            if status.get("status") not in ACTIVE_STATUSES:
                _wait_job_end(status)
                console.pump()
                print(describe_end(run_dir.name, status), file=sys.stderr)
                return EXIT_FAILED if status.get("status") == RunStatus.FAILED else EXIT_OK
            note = _note(status)
            if note and note not in said:
                said.add(note)
                print(f"workbench: {note}", file=sys.stderr)
            time.sleep(poll_s)
        except KeyboardInterrupt:
            if stopping:
                print(f"workbench: left run {run_dir.name!r} running; 'workbench stop {run_dir.name}' stops it",
                      file=sys.stderr)  # fmt: skip
                return EXIT_INTERRUPTED
            stopping = True
            try:
                launcher.stop_run(run_dir)
                print(f"workbench: stopping run {run_dir.name!r} (Ctrl-C again leaves it running)", file=sys.stderr)
            except WorkbenchError as e:
                print(f"workbench: {e}", file=sys.stderr)


def _wait_job_end(status: dict[str, Any], timeout: float = 15.0) -> None:
    """A Ray run's status says it ended before its process has exited: wait (bounded) until Ray says so too, so that
    the job's resources are free when the command returns."""
    if status.get("backend") != "ray" or not status.get("job_id"):
        return
    from trainers.runs.backends import ray_cluster as cluster

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cluster.job_info(status.get("cluster") or "", status["job_id"]).terminal:
                return
        except WorkbenchError:
            return
        time.sleep(0.2)


def _note(status: dict[str, Any]) -> str | None:
    """A one-off line about a live Ray run: queued for resources, or the cluster out of reach."""
    if status.get("cluster_error"):
        return f"{status['cluster_error']} (still trying)"
    if status.get("ray_status") == "PENDING":
        return f"Ray job {status.get('job_id')} is pending (starting, or queued until the cluster has its resources)"
    return None
