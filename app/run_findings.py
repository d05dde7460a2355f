"""Findings per run for the Runs page (no Streamlit): the training doctor over each run's telemetry and dataset,
counted by severity (docs/doctor.md).

The dataset facts come from the run's ``dataset_check.json`` once the doctor has scanned it. A run that was never
scanned is queued for one background scan (one run at a time, in a daemon thread: seconds per run at 100k labels), so
the page never waits on 50 scans; until its scan is done its count is of the telemetry rules alone and says so
(``dataset_pending``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from trainers.doctor import (
    DatasetFacts,
    count_by_severity,
    dataset_facts_for_run,
    diagnose,
    read_run_log,
    severity_count,
)
from trainers.doctor.predictions import evidence_stamp
from trainers.errors import WorkbenchError
from trainers.run_files import DATA_FILE, DATASET_CHECK_FILE, STATUS_FILE, TELEMETRY_FILE
from trainers.statuses import Severity


@dataclass(frozen=True)
class FindingsCount:
    """How many findings of each severity a run has; ``dataset_pending``: its dataset rules have not run yet."""

    counts: dict[str, int]
    dataset_pending: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def badges(self) -> str:
        """``:red-badge[1 critical] :orange-badge[2 warnings]`` (severities with none left out), or ``no findings``."""
        shown = [f":{Severity.colour_of(s)}-badge[{severity_count(s, n)}]" for s, n in self.counts.items() if n]
        return " ".join(shown) or ":green-badge[no findings]"


# ---- background dataset scans --------------------------------------------------------------------------------------
_SCANNED: dict[str, DatasetFacts | None] = {}  # run -> facts (None: no readable dataset), once its scan is done
_QUEUED: set[str] = set()
_QUEUE: queue.Queue[str] = queue.Queue()
_LOCK = threading.Lock()
_worker: threading.Thread | None = None


def _scan_forever() -> None:
    while True:
        key = _QUEUE.get()
        try:
            facts = dataset_facts_for_run(key)  # writes the run's dataset_check.json when it can
        except Exception:  # a dataset that breaks the scan gets the telemetry findings, as diagnose_run gives it
            facts = None
        with _LOCK:
            _SCANNED[key] = facts
            _QUEUED.discard(key)


def _facts(run_dir: Path) -> tuple[DatasetFacts | None, bool]:
    """``(facts, ready)``: the run's dataset facts if scanned (on disk or here), else queue the scan once."""
    global _worker
    key = str(run_dir.resolve())
    with _LOCK:
        if key in _SCANNED:
            return _SCANNED[key], True
    if not (run_dir / DATA_FILE).is_file():
        return None, True  # no dataset recorded (the run failed before training): the telemetry rules alone
    if (run_dir / DATASET_CHECK_FILE).is_file():
        return dataset_facts_for_run(run_dir), True  # the cached scan: a small JSON
    with _LOCK:
        if key not in _QUEUED:
            _QUEUED.add(key)
            _QUEUE.put(key)
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_scan_forever, name="dataset-scan", daemon=True)
            _worker.start()
    return None, False


def scanning() -> bool:
    """Whether a dataset scan is queued or running (the page refreshes until they are done)."""
    with _LOCK:
        return bool(_QUEUED)


def wait_for_scans(timeout: float = 60.0) -> bool:
    """Block until the queued scans are done (tests, benchmarks); False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while scanning():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def forget(run_dir: str | os.PathLike[str]) -> None:
    """Drop a run's scanned facts (it was deleted)."""
    with _LOCK:
        _SCANNED.pop(str(Path(run_dir).resolve()), None)


# ---- counts --------------------------------------------------------------------------------------------------------
def version(run_dir: str | os.PathLike[str]) -> tuple:
    """What a run's findings depend on: status.json's mtime (written every epoch and at the end), telemetry's size,
    whether its dataset facts are there yet, and its evidence folder's mtime (a validation's evidence lands just after
    its epoch event). The page computes the count again only when this changed."""
    run_dir = Path(run_dir)
    stamps = []
    for name in (STATUS_FILE, TELEMETRY_FILE):
        try:
            st = (run_dir / name).stat()
            stamps.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append((0, 0))
    with _LOCK:
        scanned = str(run_dir.resolve()) in _SCANNED
    return (*stamps, scanned or (run_dir / DATASET_CHECK_FILE).is_file(), evidence_stamp(run_dir))


def findings_count(run_dir: str | os.PathLike[str]) -> FindingsCount | None:
    """The run's findings by severity (:func:`trainers.doctor.count_by_severity`); None if it is not a readable run.

    Reads the run's whole telemetry (epoch events; a few ms for a short run), so callers cache it on :func:`version`.
    """
    run_dir = Path(run_dir)
    facts, ready = _facts(run_dir)
    try:
        findings = diagnose(read_run_log(run_dir), facts, run_dir=run_dir)
    except (WorkbenchError, OSError):
        return None
    return FindingsCount(count_by_severity(findings), dataset_pending=not ready)
