"""Start, watch, stop, resume and delete training runs as detached processes (the UI's side of a run).

Training runs in ``python -m trainers.cli train ... --existing``, in its own session so that it survives the UI.
The launcher reserves the run folder first (status ``starting``), records the child's pid and start time, and
later notices a child that died without saying so (``SIGKILL``, out-of-memory killer) in :func:`refresh_status`.

No shell is ever involved: commands are argument lists. Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trainers.errors import RecipeError, RunError
from trainers.runs import (
    ACTIVE_STATUSES,
    CONSOLE_FILE,
    STATUS_FILE,
    TELEMETRY_FILE,
    create_run_dir,
    new_run_name,
    now_iso,
    proc_stat,
    read_status,
    update_status,
    validate_run_name,
    write_status,
)
from trainers.runs import runs_root as resolve_runs_root
from trainers.telemetry import TelemetryWriter, read_events

REPO_ROOT = Path(__file__).resolve().parent.parent
# A run left in "starting" with no pid this long after its last update lost its launcher before the spawn.
STARTING_GRACE_S = 60.0

# Children started by this process, by (pid, start time): polled to reap them and learn their exit codes.
_children: dict[tuple[int, int | None], subprocess.Popen] = {}
_exit_codes: dict[tuple[int, int | None], int] = {}


# ---- commands ------------------------------------------------------------------------------------------------------
def train_command(recipe_path: Path, root: Path, name: str) -> list[str]:
    """The argument list of the training process for a reserved run folder (``--existing``)."""
    return [
        sys.executable, "-m", "trainers.cli", "train", str(recipe_path),
        "--runs-dir", str(root), "--name", name, "--existing",
    ]  # fmt: skip


def resume_command(run_dir: Path) -> list[str]:
    """The argument list of the process that resumes ``run_dir``."""
    return [sys.executable, "-m", "trainers.cli", "resume", str(run_dir)]


def child_env() -> dict[str, str]:
    """Environment for training processes: ours, unbuffered output, and this checkout importable as ``trainers``."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # console.log must show progress as it happens, not in 8 KiB blocks
    # `python -m trainers.cli` must import the same package as the UI, whatever the UI's working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _spawn(cmd: list[str], run_dir: Path) -> subprocess.Popen:
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
    status = write_status(run_dir, pid=proc.pid)  # also records the start time (pid_start)
    _children[(proc.pid, status.get("pid_start"))] = proc
    return proc


def _reap() -> None:
    """Collect exit codes of finished children so that they do not linger as zombies."""
    for key, proc in list(_children.items()):
        code = proc.poll()
        if code is not None:
            _exit_codes[key] = code
            del _children[key]


# ---- start ---------------------------------------------------------------------------------------------------------
def _check_recipe(recipe: Path) -> None:
    """Fail now, in the UI, on a recipe that the training process would reject a second later."""
    try:
        from trainers.recipe import load_recipe
    except ImportError:  # recipe module not available: the training process will report it
        if not recipe.is_file():
            raise RecipeError(f"{recipe}: recipe file not found") from None
        return
    load_recipe(recipe)


def unusable_runs_root(root: str | os.PathLike[str], e: OSError) -> RunError:
    """The one-line error for a runs root where no run folder can be made (not writable, under a file, full)."""
    return RunError(
        f"runs root {root}: cannot create a run folder there ({e.strerror or type(e).__name__}); "
        "pass a writable folder with --runs-dir"
    )


def start_run(
    recipe_path: str | os.PathLike[str], runs_root: str | os.PathLike[str] | None, name: str | None = None
) -> Path:
    """Reserve a run folder and start training in a detached process.

    Args:
        recipe_path: The recipe YAML.
        runs_root: The runs root (None: ``$WORKBENCH_RUNS_DIR`` or ``./runs``).
        name: The run name; default: the recipe's stem and the time (``demo-20261122-153012``).

    Returns:
        The run folder. Its status is ``starting`` with the child's ``pid`` recorded; the child moves it on.

    Raises:
        RecipeError: If the recipe is missing or invalid.
        RunError: If the name is invalid or in use, or the process cannot be started.
    """
    root = resolve_runs_root(runs_root)
    recipe = Path(recipe_path).expanduser().resolve()
    if name is not None:
        validate_run_name(name)
    _check_recipe(recipe)
    _reap()
    try:
        if name is not None:
            run_dir = create_run_dir(root, name)
        else:
            for _attempt in range(10):  # another process may take a generated name between the check and the mkdir
                name = new_run_name(recipe.stem, root)
                try:
                    run_dir = create_run_dir(root, name)
                    break
                except RunError:
                    continue
            else:
                raise RunError(f"could not reserve a run name for {recipe.stem!r} in {root}; pass --name")
    except OSError as e:
        raise unusable_runs_root(root, e) from None
    try:
        _spawn(train_command(recipe, root, name), run_dir)
    except OSError as e:
        mark_failed(run_dir, f"could not start the training process: {e}")
        raise RunError(f"run {name!r}: could not start the training process ({e})") from None
    return run_dir


# ---- watch ---------------------------------------------------------------------------------------------------------
def _process_state(pid: int, pid_start: int | None) -> tuple[bool, int | None]:
    """Whether the process recorded as (pid, start time) is still alive, and its exit code if we learned it."""
    key = (pid, pid_start)
    _reap()
    if key in _exit_codes:
        return False, _exit_codes[key]
    if key in _children:
        return True, None
    stat = proc_stat(pid)
    if stat is None:
        if os.path.isdir("/proc/self"):
            return False, None  # Linux: no /proc entry, no process
        try:  # no /proc (macOS): signal 0 checks existence only, without telling reuse apart
            os.kill(pid, 0)
        except ProcessLookupError:
            return False, None
        except PermissionError:
            pass
        return True, None
    state, start = stat
    if pid_start is not None and start != pid_start:
        return False, None  # the pid now belongs to another process
    if state == "Z":  # dead, waiting for its parent; reap it if that is us (started by an earlier launcher state)
        try:
            waited, wstatus = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False, None
        return False, (os.waitstatus_to_exitcode(wstatus) if waited else None)
    return True, None


def _last_run_end(run_dir: Path) -> dict[str, Any] | None:
    """The ``run_end`` of the latest attempt (after the last ``run_start``), or None if that attempt has none."""
    events, _ = read_events(run_dir / TELEMETRY_FILE)
    end = None
    for ev in events:
        if ev.get("event") == "run_start":
            end = None
        elif ev.get("event") == "run_end":
            end = ev
    return end


def _describe_exit(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f"; exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"; exit code {code}"


def _end_run(
    run_dir: Path,
    current: dict[str, Any],
    status: str,
    error: str | None,
    exit_code: int | None,
    traceback: list[str] | None = None,
) -> dict[str, Any]:
    """Append a ``run_end`` for a process that cannot (so log readers see the end); return the status fields to set."""

    def existing(rel: str) -> str | None:
        path = run_dir / rel
        return str(path) if path.exists() else None

    with TelemetryWriter(run_dir / TELEMETRY_FILE) as writer:
        writer.emit(
            "run_end",
            status=status,
            best_epoch=current.get("best_epoch"),
            best_metric=current.get("best_metric"),
            paths={
                "best": existing("weights/best.pt"),
                "last": existing("weights/last.pt"),
                "results": existing("results.csv"),
            },
            error=error,
            traceback=traceback,
            exit_code=exit_code,
            source="launcher",
        )
    return {"status": status, "error": error, "exit_code": exit_code}


def mark_failed(
    run_dir: str | os.PathLike[str],
    error: str,
    *,
    exit_code: int | None = None,
    traceback: list[str] | None = None,
    owner_pid: int | None = None,
) -> dict[str, Any]:
    """Mark a run that is still starting/running as failed: a ``run_end`` event in telemetry, then status.json.

    Does nothing to a run that has already ended (its own process got there first).

    Args:
        run_dir: The run folder.
        error: One-line message for status.json and the ``run_end`` event.
        exit_code: The process' exit code, if known.
        traceback: Last lines of a traceback, if any.
        owner_pid: Only mark the run if this process owns it: status ``starting`` (reserved for it) or its recorded
            pid. Keeps a rejected second ``train --existing`` from failing a run that another process is training.

    Returns:
        The status after the update.
    """
    run_dir = Path(run_dir)

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        if current.get("status") not in ACTIVE_STATUSES:
            return None
        if owner_pid is not None and current.get("status") != "starting" and current.get("pid") != owner_pid:
            return None
        return _end_run(run_dir, current, "failed", error, exit_code, traceback)

    return update_status(run_dir, change)


def refresh_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run's status and settle it if its process died without saying so.

    For a ``starting``/``running`` run whose process is gone (or whose pid now belongs to another process, told apart
    by the start time recorded at spawn): if the latest attempt's telemetry has a ``run_end``, its status is adopted;
    otherwise a ``run_end`` is appended to telemetry and the run is marked ``failed`` ("exited without a run-end
    event"), or ``stopped`` if a stop had been requested. While the process lives this costs two small file reads,
    so it can be polled every second.

    Returns:
        The (possibly updated) status.

    Raises:
        RunError: If ``run_dir`` is not a run.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.get("status") not in ACTIVE_STATUSES:
        _reap()
        return status
    pid = status.get("pid")
    if pid is None:
        age = time.time() - _mtime(run_dir)
        if age < STARTING_GRACE_S:
            return status  # the launcher is between reserving the folder and spawning
        alive, exit_code = False, None
    else:
        alive, exit_code = _process_state(pid, status.get("pid_start"))
    if alive:
        return status

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        if current.get("status") not in ACTIVE_STATUSES or current.get("pid") != pid:
            return None  # settled (or restarted) by someone else since we looked
        end = _last_run_end(run_dir)
        if end is not None:  # it finished and said so, but died before writing its final status
            return {
                "status": end.get("status") if end.get("status") in ("completed", "stopped", "failed") else "failed",
                "best_epoch": end.get("best_epoch", current.get("best_epoch")),
                "best_metric": end.get("best_metric", current.get("best_metric")),
                "error": end.get("error"),
                "exit_code": exit_code,
            }
        if current.get("stop_requested") and pid is not None:
            # Stopped before the runner could take over the signal (still importing torch, say): the user asked for
            # this end, so it is a stop, not a crash.
            return _end_run(run_dir, current, "stopped", None, exit_code)
        if pid is None:
            error = "training process was never started (the launcher stopped before spawning it)"
        else:
            error = f"training process {pid} exited without a run-end event (killed or out of memory?)"
        return _end_run(run_dir, current, "failed", error + _describe_exit(exit_code), exit_code)

    return update_status(run_dir, change)


def _mtime(run_dir: Path) -> float:
    try:
        return (run_dir / STATUS_FILE).stat().st_mtime
    except OSError:
        return 0.0


# ---- stop, resume, delete ------------------------------------------------------------------------------------------
def stop_run(run_dir: str | os.PathLike[str], sig: int = signal.SIGTERM) -> int:
    """Ask a run's process to stop (the runner turns SIGTERM/SIGINT into a clean stop with ``run_end``).

    The whole process group is signalled when the process leads one (the launcher starts it that way, so DDP workers
    hear it too); a process started from a terminal is signalled alone, never its shell's group.

    Args:
        run_dir: The run folder.
        sig: The signal; ``SIGKILL`` kills without a clean stop (then :func:`refresh_status` marks it failed).

    Returns:
        The pid that was signalled.

    Raises:
        RunError: If the run is not starting/running, or its process is already gone.
    """
    run_dir = Path(run_dir)
    status = refresh_status(run_dir)
    state, pid = status.get("status"), status.get("pid")
    if state not in ACTIVE_STATUSES:
        raise RunError(f"run {run_dir.name!r} is not running (status: {state}); nothing to stop")
    if pid is None:
        raise RunError(f"run {run_dir.name!r} is starting and has no process yet; try again in a moment")
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        raise RunError(f"run {run_dir.name!r} is not running (process {pid} is gone); nothing to stop") from None
    write_status(run_dir, stop_requested=now_iso())
    return pid


def check_resumable(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Refuse to resume a run that is running or completed; return its (refreshed) status.

    A ``starting`` run with no pid yet, or with this process' pid, counts as reserved for us (the launcher set it
    before spawning this process).

    Raises:
        RunError: ``run 'x' is completed; nothing to resume``, or the run is already running.
    """
    run_dir = Path(run_dir)
    status = refresh_status(run_dir)
    state, pid = status.get("status"), status.get("pid")
    if state == "completed":
        raise RunError(f"run {run_dir.name!r} is completed; nothing to resume")
    if state in ACTIVE_STATUSES and not (state == "starting" and pid in (None, os.getpid())):
        raise RunError(f"run {run_dir.name!r} is already {state} (pid {pid}); stop it first or wait for it to end")
    return status


def resume_run_detached(run_dir: str | os.PathLike[str]) -> None:
    """Resume a stopped or failed run in a detached process (``python -m trainers.cli resume RUN_DIR``).

    Raises:
        RunError: If the run is running or completed, its weights/last.pt is damaged (nothing is changed then), or
            the process cannot be started.
    """
    run_dir = Path(run_dir).resolve()
    check_resumable(run_dir)
    last = run_dir / "weights" / "last.pt"
    if last.is_file():  # a damaged checkpoint is refused here, so the UI shows why and the run is left as it was
        from trainers.runner import check_last_checkpoint

        check_last_checkpoint(last)

    def reserve(current: dict[str, Any]) -> dict[str, Any] | None:
        if current.get("status") in ACTIVE_STATUSES:  # another resume got here first
            raise RunError(f"run {run_dir.name!r} is already {current['status']}; stop it first or wait for it to end")
        return dict(status="starting", pid=None, pid_start=None, error=None, exit_code=None, stop_requested=None)

    _reap()
    update_status(run_dir, reserve)
    try:
        _spawn(resume_command(run_dir), run_dir)
    except OSError as e:
        mark_failed(run_dir, f"could not start the resume process: {e}")
        raise RunError(f"run {run_dir.name!r}: could not start the resume process ({e})") from None


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Delete a run folder and everything in it.

    Raises:
        RunError: If the folder is not a run (no status.json: nothing is deleted), or the run is starting/running.
    """
    run_dir = Path(run_dir)
    status = refresh_status(run_dir)
    if status.get("status") in ACTIVE_STATUSES:
        raise RunError(f"run {run_dir.name!r} is {status['status']}; stop it before deleting")
    shutil.rmtree(run_dir)
