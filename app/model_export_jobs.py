"""The Runs page's exports: ``workbench export-model`` in a detached process, followed through files (no Streamlit).

The UI process never imports torch or ultralytics, so the page starts ``python -m trainers.cli export-model RUN
--format F --weights W --json`` (:mod:`trainers.cli.model_export`) and reads what it leaves behind. Each export of a
run is a pair of files in ``<runs root>/.ui-exports/<run>/``: ``<weights>.<format>.json`` (the process: pid, start
time, command) and ``<weights>.<format>.log`` (its output). Files, not session state: a browser refresh or a restarted
UI still shows the export running, then its one-line result (the command's last JSON line) or its one-line error
(``workbench: error: ...``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.run_files import UI_EXPORTS_DIR, write_json_atomic
from trainers.runs.placement import child_env
from trainers.runs.status import proc_stat, process_alive
from trainers.statuses import RunStatus

ERROR_PREFIX = "workbench: error: "
_children: dict[int, subprocess.Popen] = {}  # polled so that ended exports do not linger as zombies


@dataclass(frozen=True)
class ExportJob:
    """One export the page started, as its files tell it now."""

    run: str
    weights: str  # best | last
    format: str  # onnx | torchscript | openvino
    state: RunStatus  # RUNNING, then COMPLETED (a result, within the tolerance or not) or FAILED (an error)
    started: float  # time.time() at the start
    message: str  # done: the verification line; failed: the error, one line; running: ""
    passed: bool | None = None  # done: within the tolerance
    path: str | None = None  # done: the exported model

    @property
    def key(self) -> str:
        return f"{self.weights}.{self.format}"


def export_command(run_dir: str | os.PathLike[str], fmt: str, weights: str) -> list[str]:
    """The argument list of the export process (no shell)."""
    return [
        sys.executable, "-m", "trainers.cli", "export-model", os.fspath(run_dir),
        "--format", fmt, "--weights", weights, "--json",
    ]  # fmt: skip


def jobs_folder(root: str | os.PathLike[str], run: str) -> Path:
    return Path(root) / UI_EXPORTS_DIR / run


def start_export(root: str | os.PathLike[str], run_dir: str | os.PathLike[str], fmt: str, weights: str) -> ExportJob:
    """Start exporting ``run_dir``'s ``weights`` checkpoint to ``fmt`` in a detached process.

    Raises:
        RunError: An export of the same checkpoint to the same format is running already.
    """
    run = Path(run_dir).name
    folder = jobs_folder(root, run)
    key = f"{weights}.{fmt}"
    if any(j.key == key and j.state == RunStatus.RUNNING for j in jobs(root, run)):
        raise RunError(f"{run}: the export of {weights}.pt to {fmt} is running already")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = export_command(run_dir, fmt, weights)
    for proc in list(_children.values()):
        proc.poll()
    with open(folder / f"{key}.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=child_env(), start_new_session=True, close_fds=True,
        )  # fmt: skip
    _children[proc.pid] = proc
    stat = proc_stat(proc.pid)
    started = time.time()
    write_json_atomic(
        folder / f"{key}.json",
        {"pid": proc.pid, "pid_start": stat[1] if stat else None, "started": started, "cmd": cmd},
    )
    return ExportJob(run, weights, fmt, RunStatus.RUNNING, started, "")


def jobs(root: str | os.PathLike[str], run: str) -> list[ExportJob]:
    """The exports started from the page for ``run``, newest first."""
    folder = jobs_folder(root, run)
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return []
    found = [job for path in paths if (job := _job(path, run)) is not None]
    return sorted(found, key=lambda j: j.started, reverse=True)


def running(root: str | os.PathLike[str]) -> bool:
    """Whether any export started from the page still runs (the Runs page refreshes itself meanwhile)."""
    folder = Path(root) / UI_EXPORTS_DIR
    if not folder.is_dir():
        return False
    return any(j.state == RunStatus.RUNNING for run in folder.iterdir() if run.is_dir() for j in jobs(root, run.name))


def _job(path: Path, run: str) -> ExportJob | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        weights, fmt = path.stem.split(".", 1)
    except (OSError, ValueError):
        return None
    started = float(info.get("started") or 0.0)
    proc = _children.get(info.get("pid"))
    if proc is not None:
        proc.poll()  # our own child: reap it, or process_alive would see a zombie it cannot wait for
    alive, _ = process_alive(info.get("pid"), info.get("pid_start"))
    if alive:
        return ExportJob(run, weights, fmt, RunStatus.RUNNING, started, "")
    state, message, passed, model = _outcome(path.with_suffix(".log"))
    return ExportJob(run, weights, fmt, state, started, message, passed, model)


def _outcome(log: Path) -> tuple[RunStatus, str, bool | None, str | None]:
    """(state, message, passed, model path) from an ended export's output."""
    try:
        lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            return RunStatus.COMPLETED, str(record.get("summary", "")), bool(record.get("passed")), record.get("path")
        if line.startswith(ERROR_PREFIX):
            return RunStatus.FAILED, line.removeprefix(ERROR_PREFIX), None, None
    last = lines[-1] if lines else "no output"
    return RunStatus.FAILED, f"the export process ended without a result ({last[:200]})", None, None
