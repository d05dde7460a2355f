"""A run's ``status.json``: read and merged under the run folder's lock, who owns the run (its process, told apart
from a reused pid by its start time), and whether that process is still alive.

The field list is in ``docs/runs.md``. Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.run_files import STATUS_FILE, write_json_atomic
from trainers.statuses import STATUSES, RunStatus


def now_iso() -> str:
    """Local time with its UTC offset, to the second (the format of ``created`` and ``updated``)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ---- the owning process ----------------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time of process ``pid``, from ``/proc/<pid>/stat`` (fields 3 and 22).

    The start time (clock ticks since boot) is recorded next to a pid so that a later check can tell the same
    process from a new one that reused the pid; state ``Z`` is a zombie: dead, not yet reaped.

    Returns:
        ``(state, start_time)``, or None if the process does not exist or the platform has no ``/proc``.
    """
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read()
    except (OSError, ValueError, TypeError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])  # fields[0] is field 3, so field 22 is fields[19]
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` (see :func:`proc_stat`), or None if unknown."""
    stat = proc_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: Any, pid_start: int | None = None) -> tuple[bool, int | None]:
    """Whether the process recorded as ``(pid, start time)`` still runs, and its exit code when we can learn it.

    The one liveness check of the workbench. A pid whose ``/proc`` start time differs from ``pid_start`` belongs to
    another process now (the run's died and the pid was reused). A zombie is dead; if it is our child it is reaped
    here and its exit code returned.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False, None
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
        return False, None
    if state == "Z":  # dead, waiting for its parent; reap it if that is us
        try:
            waited, wstatus = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False, None
        return False, (os.waitstatus_to_exitcode(wstatus) if waited else None)
    return True, None


# ---- status.json ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder while a read-merge-write of status.json runs.

    The launcher (recording the pid) and the training process (reporting progress) update the same file at about
    the same time; without the lock one merge could overwrite the other's fields.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic replace still keeps the file whole
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run's ``status.json``.

    Raises:
        RunError: If the folder has no readable status file (it is not a run).
    """
    path = Path(run_dir) / STATUS_FILE
    try:
        with open(path, encoding="utf-8") as f:
            status = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{Path(run_dir)} is not a workbench run (no {STATUS_FILE})") from None
    except (OSError, ValueError) as e:
        raise RunError(f"{path} cannot be read ({e.__class__.__name__}: {e})") from None
    if not isinstance(status, dict):
        raise RunError(f"{path} cannot be read (not a JSON object)")
    return status


def update_status(
    run_dir: str | os.PathLike[str], change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any]:
    """Read-modify-write ``status.json`` under the run folder's lock.

    Use it when the new fields depend on the current ones (mark a run failed only if it is still running):
    ``change`` sees the status as it is now, and no other writer can slip in between the check and the write.

    Args:
        run_dir: The run folder (must exist).
        change: Gets the current status (``{}`` if there is no file yet); returns the fields to merge, or None to
            leave the file untouched.

    Returns:
        The status after the update.

    Raises:
        RunError: If status.json exists but cannot be read (it is not silently replaced).
        ValueError: If ``status`` is not one of :data:`STATUSES` (a programming error, not user input).
    """
    run_dir = Path(run_dir)
    path = run_dir / STATUS_FILE
    with _locked(run_dir):
        try:
            status = read_status(run_dir)
        except RunError:
            if path.exists():
                raise
            status = {}
        fields = change(dict(status))
        if fields is None:
            return status
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {fields['status']!r}")
        if fields.get("pid") is not None and "pid_start" not in fields:
            fields = {**fields, "pid_start": process_start_time(fields["pid"])}
        status.update(fields)
        status["updated"] = now_iso()
        write_json_atomic(path, status)
    return status


def write_status(run_dir: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``status.json`` and write it atomically (temp file + ``os.replace``).

    Readers never see a half-written file. ``updated`` is set to now. When ``pid`` is written without
    ``pid_start``, the process' start time is recorded with it (see :func:`process_start_time`), so that a later
    liveness check is not fooled by a reused pid.

    Args:
        run_dir: The run folder (must exist).
        **fields: Fields to set; see ``docs/runs.md``.

    Returns:
        The status as written.

    Raises:
        ValueError: If ``status`` is not one of :data:`STATUSES` (a programming error, not user input).
    """
    return update_status(run_dir, lambda _current: fields)


def initial_status() -> dict[str, Any]:
    now = now_iso()
    return {
        "status": RunStatus.STARTING,
        "pid": None,
        "created": now,
        "updated": now,
        "epoch": 0,
        "epochs": None,
        "best_epoch": None,
        "best_metric": None,
        "error": None,
        "resumes": 0,
    }


class StatusWriter:
    """The training process' ``status.json`` updates, written by a helper thread so training never waits for them.

    Each write is fsynced before its rename (:func:`write_json_atomic`). On ext4 that fsync commits the journal,
    which first writes out the data of every file renamed since the last commit: right after a checkpoint save that
    is the two new ~5 MB checkpoints, and the training thread waited 40-120 ms per epoch for a file of 300 bytes
    (``benchmarks/bench_overhead.py``, docs/benchmarks.md). Here the thread waits instead.

    Writes keep their order: fields given while a write is in progress are merged (later values win) and written
    next. :meth:`flush` waits until everything given is on disk and raises the error a write hit; the training
    process calls it before the run's final status is written, so a late progress update can never land after it.
    A kill before a write finishes leaves the previous ``status.json`` whole.
    """

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        self._pending: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, **fields: Any) -> None:
        """Merge ``fields`` into status.json soon (as :func:`write_status`); raises an earlier write's error."""
        with self._cond:
            self._raise_error()
            self._pending.update(fields)
            if self._thread is None:
                # Not a daemon: an interpreter that exits waits for the write, so it is never cut off half-way.
                self._thread = threading.Thread(target=self._work, name="status-writer")
                self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                fields, self._pending = self._pending, {}
                if not fields or self._error is not None:
                    self._thread = None
                    self._cond.notify_all()
                    return
            try:
                write_status(self.run_dir, **fields)
            except BaseException as e:  # raised in the training thread by the next write or flush
                with self._cond:
                    self._error = e

    def flush(self) -> None:
        """Wait for the pending writes; raise the error one of them hit."""
        with self._cond:
            self._cond.wait_for(lambda: self._thread is None)
            self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
