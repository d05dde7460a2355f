"""Archive instead of delete: a run folder moves to ``<runs root>/.archive/<name>`` (nothing is removed) and can be
moved back. ``list_runs`` skips dot-folders, so an archived run leaves every list and comparison until restored.

Names never collide: a second archived ``r`` becomes ``r-2`` (then ``r-3``...), and a run restored where a run of
its name now exists comes back as ``r-2``. A target name is claimed by creating it empty, then the run folder is
renamed over it (Linux replaces an empty folder atomically), so two archivers never pick the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainers.errors import RunError
from trainers.run_files import ARCHIVE_DIR, STATUS_FILE
from trainers.runs.actions import record_action
from trainers.runs.launcher import refresh_status
from trainers.statuses import ACTIVE_STATUSES


def archive_run(run_dir: str | os.PathLike[str], by: str | None = None) -> Path:
    """Move a run into its root's ``.archive/`` (recording who archived it) and return where it went.

    Raises:
        RunError: The folder is not a run (no status.json), or the run is starting/running.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STATUS_FILE).is_file():
        raise RunError(f"{run_dir} is not a run folder (no {STATUS_FILE}); nothing was archived")
    status = refresh_status(run_dir)
    if status.get("status") in ACTIVE_STATUSES:
        raise RunError(f"run {run_dir.name!r} is {status['status']}; stop it before archiving")
    record_action(run_dir, "archive", by)
    return _move(run_dir, run_dir.parent / ARCHIVE_DIR)


def restore_run(archived: str | os.PathLike[str], by: str | None = None) -> Path:
    """Move an archived run back into its runs root (under a new name if its own is taken now) and return it."""
    archived = Path(archived)
    if archived.parent.name != ARCHIVE_DIR or not (archived / STATUS_FILE).is_file():
        raise RunError(f"{archived} is not an archived run; nothing was restored")
    restored = _move(archived, archived.parent.parent)
    record_action(restored, "restore", by)
    return restored


def archived_runs(root: str | os.PathLike[str]) -> list[Path]:
    """The archived run folders under ``root``, most recently archived first."""
    folder = Path(root) / ARCHIVE_DIR
    try:
        found = [Path(e.path) for e in os.scandir(folder) if e.is_dir() and (Path(e.path) / STATUS_FILE).is_file()]
    except FileNotFoundError:
        return []
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def _move(run_dir: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        target = into / (run_dir.name if n == 1 else f"{run_dir.name}-{n}")
        try:
            target.mkdir()  # claims the name: nobody else gets it
        except FileExistsError:
            continue
        try:
            os.rename(run_dir, target)  # over the empty claimed folder, atomically
        except OSError as e:
            target.rmdir()
            raise RunError(f"cannot move run {run_dir.name!r} to {into} ({e.strerror})") from None
        os.utime(target)  # archived-at order for archived_runs
        return target
    raise RunError(f"no free name for run {run_dir.name!r} in {into}")
