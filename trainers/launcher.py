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

from trainers.errors import RunError
from trainers.run_folder import (
    CONSOLE_FILE,
    LAST_CHECKPOINT,
    RECIPE_FILE,
    TELEMETRY_FILE,
    check_resumable,
    create_run_dir,
    end_run,
    new_run_name,
    rerun_stem,
    unusable_runs_root,
    validate_run_name,
)
from trainers.run_folder import runs_root as resolve_runs_root
from trainers.run_status import (
    ACTIVE_STATUSES,
    STATUS_FILE,
    now_iso,
    process_alive,
    read_status,
    update_status,
    write_status,
)
from trainers.telemetry.events import read_events
from trainers.telemetry.run_log import RunLog

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
def _check_recipe(recipe: Path):
    """Fail now, in the UI, on a recipe that the training process would reject a second later; return it."""
    from trainers.recipe import load_recipe

    return load_recipe(recipe)


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
    checked = _check_recipe(recipe)
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
    if checked is not None:  # the run keeps its recipe even if it fails before training writes it again
        (run_dir / RECIPE_FILE).write_text(checked.to_yaml(), encoding="utf-8")
    try:
        _spawn(train_command(recipe, root, name), run_dir)
    except OSError as e:
        mark_failed(run_dir, f"could not start the training process: {e}")
        raise RunError(f"run {name!r}: could not start the training process ({e})") from None
    return run_dir


def start_again(run_dir: str | os.PathLike[str], name: str | None = None) -> Path:
    """Start a new run with the recipe of ``run_dir`` (which is left as it is), in a detached process.

    Args:
        run_dir: A run of any status.
        name: The new run's name; default: the old name's stem and the time (``demo-20261201-195000`` ->
            ``demo-<now>``).

    Raises:
        RunError: If the run has no recipe.yaml.
    """
    run_dir = Path(run_dir)
    recipe = run_dir / RECIPE_FILE
    if not recipe.is_file():
        raise RunError(f"run {run_dir.name!r} has no {RECIPE_FILE}; start a new run from the New run page instead")
    if name is None:
        root = run_dir.parent
        name = new_run_name(rerun_stem(run_dir.name), root)
    return start_run(recipe, run_dir.parent, name=name)


# ---- watch ---------------------------------------------------------------------------------------------------------
def _process_state(pid: int, pid_start: int | None) -> tuple[bool, int | None]:
    """Whether the run's process lives, and its exit code if we learned it (our own children are polled first)."""
    key = (pid, pid_start)
    _reap()
    if key in _exit_codes:
        return False, _exit_codes[key]
    if key in _children:
        return True, None
    return process_alive(pid, pid_start)


def _last_run_end(run_dir: Path) -> dict[str, Any] | None:
    """The ``run_end`` of the latest attempt, or None if that attempt has none."""
    return RunLog.from_events(read_events(run_dir / TELEMETRY_FILE)[0]).run_end


def _describe_exit(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f"; exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"; exit code {code}"


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

    def owned(current: dict[str, Any]) -> bool:
        if current.get("status") not in ACTIVE_STATUSES:
            return False
        return owner_pid is None or current.get("status") == "starting" or current.get("pid") == owner_pid

    return end_run(
        run_dir, "failed", error=error, traceback=traceback, exit_code=exit_code, source="launcher", only_if=owned
    )


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

    def still_ours(current: dict[str, Any]) -> bool:
        return current.get("status") in ACTIVE_STATUSES and current.get("pid") == pid  # else settled or restarted

    end = _last_run_end(run_dir)
    if end is not None:  # it finished and said so, but died before writing its final status

        def adopt(current: dict[str, Any]) -> dict[str, Any] | None:
            if not still_ours(current):
                return None
            return {
                "status": end.get("status") if end.get("status") in ("completed", "stopped", "failed") else "failed",
                "best_epoch": end.get("best_epoch", current.get("best_epoch")),
                "best_metric": end.get("best_metric", current.get("best_metric")),
                "error": end.get("error"),
                "exit_code": exit_code,
            }

        return update_status(run_dir, adopt)
    if status.get("stop_requested") and pid is not None:
        # Stopped before the runner could take over the signal (still importing torch, say): the user asked for
        # this end, so it is a stop, not a crash.
        return end_run(run_dir, "stopped", exit_code=exit_code, source="launcher", only_if=still_ours)
    if pid is None:
        error = "training process was never started (the launcher stopped before spawning it)"
    else:
        error = f"training process {pid} exited without a run-end event (killed or out of memory?)"
    return end_run(
        run_dir, "failed", error=error + _describe_exit(exit_code), exit_code=exit_code, source="launcher",
        only_if=still_ours,
    )  # fmt: skip


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


def resumable_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's settled status (:func:`refresh_status`) if it can be resumed; raises the one-line reason if not.

    Raises:
        RunError: From :func:`trainers.run_folder.check_resumable`.
    """
    return check_resumable(run_dir, refresh_status(run_dir))


def resume_run_detached(run_dir: str | os.PathLike[str]) -> None:
    """Resume a stopped or failed run in a detached process (``python -m trainers.cli resume RUN_DIR``).

    Raises:
        RunError: If the run is running or completed, its weights/last.pt is damaged (nothing is changed then), or
            the process cannot be started.
    """
    from trainers.preflight import check_last_checkpoint

    run_dir = Path(run_dir).resolve()
    resumable_status(run_dir)
    check_last_checkpoint(run_dir / LAST_CHECKPOINT)  # damaged: refused here, so the UI says why, nothing changed

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
