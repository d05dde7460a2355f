"""The launcher's local backend: training processes on this machine, detached in their own session.

:func:`spawn` starts one with its output appended to the run's console.log and records its pid and start time;
:func:`settle_dead` settles a run whose process died without saying so; :func:`signal_run` stops one. The launcher
(:mod:`trainers.runs.launcher`) decides which backend a run uses; nothing here knows about Ray.

No shell is ever involved: commands are argument lists. Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

from trainers import SOURCE_ROOT
from trainers.run_files import CONSOLE_FILE, TELEMETRY_FILE
from trainers.runs.folder import end_run
from trainers.runs.status import now_iso, process_alive, update_status, write_status
from trainers.statuses import ACTIVE_STATUSES, RunStatus, ended_status

REPO_ROOT = SOURCE_ROOT
# Never passed to a local training process: it would read as "--cluster" to a `workbench` it runs (the UI sets it).
CLUSTER_ENV = "WORKBENCH_CLUSTER"

# Children started by this process, by (pid, start time): polled to reap them and learn their exit codes.
_children: dict[tuple[int, int | None], subprocess.Popen] = {}
_exit_codes: dict[tuple[int, int | None], int] = {}


def child_env() -> dict[str, str]:
    """Environment for training processes: ours, unbuffered output, and this checkout importable as ``trainers``."""
    env = dict(os.environ)
    env.pop(CLUSTER_ENV, None)
    env["PYTHONUNBUFFERED"] = "1"  # console.log must show progress as it happens, not in 8 KiB blocks
    # `python -m trainers.cli` must import the same package as the UI, whatever the UI's working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def spawn(cmd: list[str], run_dir: Path) -> subprocess.Popen:
    """Start ``cmd`` detached, with stdout and stderr appended to the run's console.log, and record its pid."""
    with open(run_dir / CONSOLE_FILE, "ab") as log:
        log.write(f"[{now_iso()}] workbench launcher: {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,  # own session and process group: survives the UI, can be signalled as a group
            close_fds=True,
        )
    status = write_status(run_dir, pid=proc.pid, backend="local")  # also records the start time (pid_start)
    _children[(proc.pid, status.get("pid_start"))] = proc
    return proc


def reap() -> None:
    """Collect exit codes of finished children so that they do not linger as zombies."""
    for key, proc in list(_children.items()):
        code = proc.poll()
        if code is not None:
            _exit_codes[key] = code
            del _children[key]


def process_state(pid: int, pid_start: int | None) -> tuple[bool, int | None]:
    """Whether the run's process lives, and its exit code if we learned it (our own children are polled first)."""
    key = (pid, pid_start)
    reap()
    if key in _exit_codes:
        return False, _exit_codes[key]
    if key in _children:
        return True, None
    return process_alive(pid, pid_start)


def last_run_end(run_dir: Path) -> dict[str, Any] | None:
    """The ``run_end`` of the latest attempt, or None if that attempt has none."""
    from trainers.telemetry.events import read_events
    from trainers.telemetry.run_log import RunLog

    return RunLog.from_events(read_events(run_dir / TELEMETRY_FILE)[0]).run_end


def describe_exit(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f"; exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"; exit code {code}"


def settle_dead(run_dir: Path, status: dict[str, Any], exit_code: int | None = None) -> dict[str, Any]:
    """Settle an active local run whose process is gone (or never started: ``pid`` None); return the new status.

    ``exit_code`` is the process' exit code when :func:`process_state` learned it.

    If the latest attempt's telemetry has a ``run_end``, its status is adopted; otherwise a ``run_end`` is appended
    and the run is marked ``failed`` ("exited without a run-end event"), or ``stopped`` if a stop had been requested.
    """
    pid = status.get("pid")

    def still_ours(current: dict[str, Any]) -> bool:
        return current.get("status") in ACTIVE_STATUSES and current.get("pid") == pid  # else settled or restarted

    end = last_run_end(run_dir)
    if end is not None:  # it finished and said so, but died before writing its final status

        def adopt(current: dict[str, Any]) -> dict[str, Any] | None:
            if not still_ours(current):
                return None
            return {
                "status": ended_status(end.get("status")),
                "best_epoch": end.get("best_epoch", current.get("best_epoch")),
                "best_metric": end.get("best_metric", current.get("best_metric")),
                "error": end.get("error"),
                "exit_code": exit_code,
            }

        return update_status(run_dir, adopt)
    if status.get("stop_requested") and pid is not None:
        # Stopped before the runner could take over the signal (still importing torch, say): the user asked for
        # this end, so it is a stop, not a crash.
        return end_run(run_dir, RunStatus.STOPPED, exit_code=exit_code, source="launcher", only_if=still_ours)
    if pid is None:
        error = "training process was never started (the launcher stopped before spawning it)"
    else:
        error = f"training process {pid} exited without a run-end event (killed or out of memory?)"
    marked: list[bool] = []  # whether this call ended it (another process may have settled it first)
    settled = end_run(
        run_dir, RunStatus.FAILED, error=error + describe_exit(exit_code), exit_code=exit_code, source="launcher",
        only_if=lambda current: marked.append(still_ours(current)) or marked[-1],
    )  # fmt: skip
    if marked and marked[-1] and pid is not None:  # killed hard, it could not post its end: the recipe's notify block
        from trainers.runs.notify import notify_recorded_end

        notify_recorded_end(run_dir, settled)
    return settled


def signal_run(run_dir: Path, pid: int, sig: int) -> int:
    """Signal a run's process: its whole group when it leads one (so DDP workers hear it too), else the pid alone.

    Raises:
        ProcessLookupError: If the process is gone.
    """
    if os.getpgid(pid) == pid:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)
    write_status(run_dir, stop_requested=now_iso())
    return pid
