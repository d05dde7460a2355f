"""Run directories: where runs live, how they are named, and their ``status.json``.

Layout and status values are documented in ``docs/runs.md``. Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trainers.errors import RunError

RUNS_DIR_ENV = "WORKBENCH_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
STATUS_FILE = "status.json"
TELEMETRY_FILE = "telemetry.jsonl"
CONSOLE_FILE = "console.log"

STATUSES = ("starting", "running", "completed", "stopped", "failed")
ACTIVE_STATUSES = ("starting", "running")  # a process owns the run (or is about to)

NAME_MAX = 100
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
NAME_RULE = "1-100 letters, digits, '-', '_' or '.', not starting with '.' or '-'"


def now_iso() -> str:
    """Local time with its UTC offset, to the second (the format of ``created`` and ``updated``)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ---- root and names ------------------------------------------------------------------------------------------------
def runs_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the runs root: ``--runs-dir`` > ``$WORKBENCH_RUNS_DIR`` > ``./runs``, as an absolute path.

    The folder need not exist yet (it is created with the first run).

    Args:
        cli_value: The ``--runs-dir`` value, if given.

    Returns:
        The absolute runs root.

    Raises:
        RunError: If the path exists and is not a directory.
    """
    if cli_value not in (None, ""):
        raw, source = os.fspath(cli_value), "--runs-dir"
    elif os.environ.get(RUNS_DIR_ENV):
        raw, source = os.environ[RUNS_DIR_ENV], RUNS_DIR_ENV
    else:
        raw, source = DEFAULT_RUNS_DIR, "runs root"
    root = Path(raw).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise RunError(f"{source} {root} is not a directory; pass a folder for runs with --runs-dir")
    return root


def validate_run_name(name: str, what: str = "--name") -> str:
    """Return ``name`` if it is a safe run folder name, else raise.

    Allowed: 1-100 ASCII letters, digits, ``-``, ``_`` and ``.``, not starting with ``.`` (no ``.``/``..``, no
    hidden folders) or ``-`` (it would read as an option on the command line). No path separators, so a name can
    never leave the runs root.

    Args:
        name: The proposed name.
        what: How the message names the value (``--name``, ``run name``).

    Raises:
        RunError: Naming ``what`` and the allowed set.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name[0] in ".-":
        raise RunError(f"{what} {name!r} is not allowed: use {NAME_RULE}")
    return name


_issued: set[str] = set()  # names handed out by this process, so two calls in the same second still differ


def new_run_name(recipe_stem: str, root: str | os.PathLike[str] | None = None) -> str:
    """Make a fresh run name from a recipe file's stem and the local time, e.g. ``demo-20261122-153012``.

    Characters that are not allowed in names become ``-``. The name is unique among the names this process issued
    and, when ``root`` is given, among the folders in it (a ``-2``, ``-3``... suffix is added). Reserving it is
    still :func:`create_run_dir`'s job: only its atomic ``mkdir`` is race-free across processes.

    Args:
        recipe_stem: The recipe file name without its suffix.
        root: The runs root to check for existing folders.

    Returns:
        A valid run name.
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", recipe_stem, flags=re.ASCII).lstrip(".-") or "run"
    base = f"{stem[: NAME_MAX - 24]}-{time.strftime('%Y%m%d-%H%M%S')}"  # room for the stamp and a suffix
    name, n = base, 1
    while name in _issued or (root is not None and (Path(root) / name).exists()):
        n += 1
        name = f"{base}-{n}"
    _issued.add(name)
    return name


# ---- status.json ---------------------------------------------------------------------------------------------------
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


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # the rename must not be able to land before the data (power loss)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
        _write_json_atomic(path, status)
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


def _initial_status() -> dict[str, Any]:
    now = now_iso()
    return {
        "status": "starting",
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


# ---- run folders ---------------------------------------------------------------------------------------------------
def create_run_dir(root: str | os.PathLike[str], name: str) -> Path:
    """Create ``<root>/<name>/`` with a ``starting`` status.json; never reuses or overwrites a folder.

    The ``mkdir`` itself is the reservation (no ``exist_ok``), so two processes asking for the same name cannot both
    get it. (``workbench train --existing`` does not call this: the launcher already did.)

    Args:
        root: The runs root (created if missing).
        name: The run name; validated with :func:`validate_run_name`.

    Returns:
        The run folder.

    Raises:
        RunError: If the name is invalid or already in use.
    """
    validate_run_name(name)
    root = Path(root)
    run_dir = root / name
    if root.exists() and not root.is_dir():
        raise RunError(f"runs root {root} is not a directory; pass a folder for runs with --runs-dir")
    root.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise _name_in_use(root, name) from None
    _write_json_atomic(run_dir / STATUS_FILE, _initial_status())
    return run_dir


def _name_in_use(root: Path, name: str) -> RunError:
    return RunError(f"run name {name!r} is already in use in {root}; pick another --name")


def ensure_name_free(root: str | os.PathLike[str], name: str) -> None:
    """Fail early (before a slow start) if ``name`` is invalid or taken; :func:`create_run_dir` still decides.

    Raises:
        RunError: The same message :func:`create_run_dir` would give.
    """
    validate_run_name(name)
    if os.path.lexists(Path(root) / name):
        raise _name_in_use(Path(root), name)


def find_run(root: str | os.PathLike[str], name: str) -> Path:
    """Return ``<root>/<name>`` if it is a run folder.

    Raises:
        RunError: If the name is invalid or no such run exists (the message names the root).
    """
    validate_run_name(name, what="run name")
    run_dir = Path(root) / name
    if not (run_dir / STATUS_FILE).is_file():
        raise RunError(f"run {name!r} not found in {root}; 'workbench runs' lists the runs there")
    return run_dir


def resolve_run(root: str | os.PathLike[str], run: str) -> Path:
    """Resolve a CLI ``RUN`` argument: a run name under ``root``, or a path to a run folder.

    A name wins over a folder of the same name in the current directory.

    Raises:
        RunError: If it is neither.
    """
    if _NAME_RE.fullmatch(run) and run[0] not in ".-" and (Path(root) / run / STATUS_FILE).is_file():
        return Path(root) / run
    path = Path(run).expanduser()
    if (path / STATUS_FILE).is_file():
        return path.resolve()
    if os.sep in run or (os.altsep and os.altsep in run) or run.startswith("."):
        raise RunError(f"run {run!r} not found: {path} is not a run folder (no {STATUS_FILE})")
    return find_run(root, run)  # raises with the name rules or "not found in <root>"


# ---- listing -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary:
    """One row of ``workbench runs`` / the UI's run list, read from status.json alone."""

    name: str
    path: str
    status: str
    epoch: int | None
    epochs: int | None
    best_metric: dict[str, Any] | None
    created: str | None
    updated: str | None
    pid: int | None

    @classmethod
    def from_status(cls, run_dir: Path, status: dict[str, Any]) -> RunSummary:
        """Build a summary from a run folder and its (already read) status."""
        return cls(
            name=run_dir.name,
            path=str(run_dir),
            status=str(status.get("status", "unknown")),
            epoch=status.get("epoch"),
            epochs=status.get("epochs"),
            best_metric=status.get("best_metric"),
            created=status.get("created"),
            updated=status.get("updated"),
            pid=status.get("pid"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def list_runs(root: str | os.PathLike[str]) -> list[RunSummary]:
    """List the runs in ``root``, newest first (by ``created``, then name).

    Reads each run's status.json only (never telemetry), so it stays fast with hundreds of runs. Folders without a
    status.json are not runs and are left out; a run whose status.json cannot be read is listed as ``unknown``.

    Args:
        root: The runs root. A missing root has no runs.
    """
    root = Path(root)
    runs = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise RunError(f"runs root {root} is not a directory; pass a folder for runs with --runs-dir") from None
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        run_dir = Path(entry.path)
        if not (run_dir / STATUS_FILE).is_file():
            continue
        try:
            status = read_status(run_dir)
        except RunError:
            status = {"status": "unknown"}
        runs.append(RunSummary.from_status(run_dir, status))
    runs.sort(key=lambda r: r.name)
    runs.sort(key=lambda r: _timestamp(r.created), reverse=True)
    return runs


def _timestamp(iso: str | None) -> float:
    # Compare instants, not strings: the UTC offset in the text changes with daylight saving time.
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else 0.0
    except (TypeError, ValueError):
        return 0.0
