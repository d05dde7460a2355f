"""Run folders: where runs live, how they are named and found, how they are listed, how a run ends and whether it
can be resumed. Each run's ``status.json`` is read and written through :mod:`trainers.runs.status`.

Layout and status values are documented in ``docs/runs.md``. Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.run_files import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    RESULTS_FILE,
    STATUS_FILE,
    TELEMETRY_FILE,
    chosen_folder,
    write_json_atomic,
)
from trainers.runs.status import initial_status, process_alive, read_status, update_status
from trainers.statuses import ACTIVE_STATUSES, RunStatus

RUNS_DIR_ENV = "WORKBENCH_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"

NAME_MAX = 100
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
NAME_RULE = "1-100 letters, digits, '-', '_' or '.', not starting with '.' or '-'"


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
    root, source = chosen_folder(cli_value, "--runs-dir", RUNS_DIR_ENV, DEFAULT_RUNS_DIR)
    source = source or "runs root"
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


# ---- run folders ---------------------------------------------------------------------------------------------------
def rerun_stem(name: str) -> str:
    """The stem of a run name without the time stamp :func:`new_run_name` added (``demo-20261201-195000-2`` ->
    ``demo``), so starting a run again gets a fresh stamp instead of a second one."""
    return re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", name) or name


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
    write_json_atomic(run_dir / STATUS_FILE, initial_status())
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


def unusable_runs_root(root: str | os.PathLike[str], e: OSError) -> RunError:
    """The one-line error for a runs root where no run folder can be made (not writable, under a file, full)."""
    return RunError(
        f"runs root {root}: cannot create a run folder there ({e.strerror or type(e).__name__}); "
        "pass a writable folder with --runs-dir"
    )


# ---- how a run ends ------------------------------------------------------------------------------------------------
def end_run(
    run_dir: str | os.PathLike[str],
    status: str,
    *,
    error: str | None = None,
    traceback: list[str] | None = None,
    exit_code: int | None = None,
    best: dict[str, Any] | None = None,
    source: str | None = None,
    only_if: Callable[[dict[str, Any]], bool] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """Record how a run ended: a ``run_end`` event in its telemetry, then its status.json. The one run-end writer.

    Both the training process (at the end of every attempt, whatever happened) and the launcher (for a process that
    died without saying so) call it. Runs under the run folder's lock, so the check ``only_if`` and the write are
    atomic. A full disk must not hide the outcome: each of the two writes is tried on its own and never raises.

    Args:
        run_dir: The run folder.
        status: ``completed``, ``stopped`` or ``failed`` (``stopped`` after the last epoch finished: ``completed``).
        error: One-line reason (failed runs).
        traceback: Last lines of the traceback, if any.
        exit_code: The process' exit code, if known (the launcher's view).
        best: ``{"epoch", "name", "value"}`` of best.pt; default: what status.json says (kept up to date each epoch).
        source: Who wrote it when not the training process (``launcher``).
        only_if: Given the current status, whether to end the run at all (e.g. only while it is still active).
        stop_reason: Why a stopped run stopped when it was not the user (a critical doctor finding).

    Returns:
        The status after the update (unchanged when ``only_if`` said no).
    """
    from trainers.telemetry.events import TelemetryWriter

    run_dir = Path(run_dir)

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        if only_if is not None and not only_if(current):
            return None
        ended = RunStatus.COMPLETED if status == RunStatus.STOPPED and all_epochs_done(current) else status
        chosen = best if best is not None and best.get("epoch") is not None else None
        best_epoch = chosen["epoch"] if chosen else current.get("best_epoch")
        best_metric = {"name": chosen["name"], "value": chosen["value"]} if chosen else current.get("best_metric")
        paths = {
            key: str(run_dir / rel) if (run_dir / rel).exists() else None
            for key, rel in (("best", BEST_CHECKPOINT), ("last", LAST_CHECKPOINT), ("results", RESULTS_FILE))
        }
        extra = {"exit_code": exit_code} if exit_code is not None or source else {}
        try:
            with TelemetryWriter(run_dir / TELEMETRY_FILE) as out:
                out.emit(
                    "run_end", status=ended, best_epoch=best_epoch, best_metric=best_metric, paths=paths,
                    error=error, traceback=traceback, stop_reason=stop_reason, **extra,
                    **({"source": source} if source else {}),
                )  # fmt: skip
        except OSError as e:
            print(f"workbench: could not write the run_end event: {e}", file=sys.stderr)
        return {
            "status": ended, "error": error, "best_epoch": best_epoch, "best_metric": best_metric,
            "stop_reason": stop_reason, **({"exit_code": exit_code} if source else {}),
        }  # fmt: skip

    try:
        return update_status(run_dir, change)
    except OSError as e:
        print(f"workbench: could not write status.json: {e}", file=sys.stderr)
        return read_status(run_dir)


# ---- whether a run can be resumed ----------------------------------------------------------------------------------
def check_resumable(run_dir: str | os.PathLike[str], status: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refuse to resume a run that is completed, still owned by a live process, or never finished an epoch.

    The one resume check (the CLI, the UI and the training process ask it). A ``starting`` run with no pid yet, or
    with this process' pid, counts as reserved for us (the launcher set it before spawning this process). A run
    that never finished an epoch has no weights/last.pt: it is refused without touching it, so its original error
    stays; start it again instead (``workbench rerun``).

    Args:
        run_dir: The run folder.
        status: Its status if already read (and settled by the launcher); read here otherwise.

    Returns:
        The status.

    Raises:
        RunError: Naming the run, why, and what to do instead.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir) if status is None else status
    refusal = resume_refusal(run_dir, status)
    if refusal:
        raise RunError(refusal)
    return status


def all_epochs_done(status: dict[str, Any]) -> bool:
    """Whether a run's last epoch finished (status.json's ``epoch`` reached ``epochs``): its weights are final, so a
    stop after it (during the final validation) ends the run completed, and there is nothing left to resume."""
    epoch, epochs = status.get("epoch"), status.get("epochs")
    return isinstance(epoch, int) and isinstance(epochs, int) and 0 < epochs <= epoch


def resume_refusal(run_dir: str | os.PathLike[str], status: dict[str, Any]) -> str | None:
    """Why ``run_dir`` cannot be resumed (one line), or None when it can. See :func:`check_resumable`."""
    run_dir = Path(run_dir)
    state, pid = status.get("status"), status.get("pid")
    if state == RunStatus.COMPLETED or (state == RunStatus.STOPPED and all_epochs_done(status)):
        return f"run {run_dir.name!r} is completed; nothing to resume"
    starting = state == RunStatus.STARTING
    if state in ACTIVE_STATUSES and not (starting and pid in (None, os.getpid())):
        # A Ray run's pid is on a node: it is alive while status.json (settled through Ray's job status) says so.
        if status.get("backend") == "ray" or process_alive(pid, status.get("pid_start"))[0] or starting:
            return f"run {run_dir.name!r} is already {state} (pid {pid}); stop it first or wait for it to end"
    if not (run_dir / LAST_CHECKPOINT).is_file():
        return (
            f"run {run_dir.name!r} never finished an epoch (no {LAST_CHECKPOINT}), so there is nothing to resume; "
            f"start it again with 'workbench rerun {run_dir.name}'"
        )
    return None
