"""The training doctor as the UI shows it (no Streamlit): a run's findings on each refresh, its dataset facts scanned
once in the background, and a finding's fix as a prefilled New run form.

:func:`trainers.doctor.diagnose` reads the epoch events only (about 2 ms for 300 epochs x 80 classes), so the
dashboard runs it on every refresh. The dataset rules also need the run's dataset facts: the first scan of a large
dataset opens thousands of images (seconds), so it runs in a worker thread and the page shows the telemetry's
findings until it is done; the result is cached in the run folder (``dataset_check.json``) by the doctor.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.recipe_form import FormValues
from app.recipe_prefill import form_for_recipe
from trainers.doctor import DatasetFacts, Finding, apply_fix, dataset_facts_for_run
from trainers.errors import WorkbenchError
from trainers.recipe import load_recipe
from trainers.recipe.dotted import diff as recipe_diff
from trainers.run_files import RECIPE_FILE
from trainers.runs.facts import findings_of
from trainers.statuses import Severity
from trainers.telemetry.run_log import RunLog

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-facts")
_SCANS: dict[str, Future] = {}
_LOCK = threading.Lock()


def dataset_facts(run_dir: str | os.PathLike[str], wait: float = 0.0) -> tuple[DatasetFacts | None, bool]:
    """The run's dataset facts and whether they are ready: ``(facts, True)`` once scanned (facts None when the
    dataset cannot be read), ``(None, False)`` while the scan runs. The scan starts on the first call per run;
    ``wait`` seconds are waited for it (a small dataset is ready on the first render)."""
    key = str(Path(run_dir).resolve())
    with _LOCK:
        future = _SCANS.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = _SCANS[key] = _POOL.submit(dataset_facts_for_run, key)
    try:
        return future.result(timeout=wait), True
    except TimeoutError:
        return None, False
    except Exception:  # a scan that failed: the telemetry's findings still stand; the next call scans again
        return None, True


def findings(log: RunLog, run_dir: str | os.PathLike[str], wait: float = 0.5) -> tuple[list[Finding] | None, bool]:
    """The run's findings, most severe first, and whether the dataset rules were part of them; None before the first
    epoch, as ``workbench runs --json`` counts them (:func:`trainers.runs.facts.findings_of`)."""
    if not log.epochs:
        return None, True
    facts, ready = dataset_facts(run_dir, wait)
    return findings_of(log, facts, run_dir), ready


@dataclass(frozen=True)
class Fix:
    """A finding's fix as a new run: the prefilled form and the settings it changes (dotted key, old, new)."""

    form: FormValues
    changes: list[tuple[str, Any, Any]]


def fix_as_new_run(run_dir: str | os.PathLike[str], finding: Finding) -> Fix:
    """The New run form for the run's recipe with ``finding``'s fix applied (the old run is not touched).

    Raises:
        WorkbenchError: The run has no readable recipe, the finding has no recipe change, or the fixed recipe's
            model cannot be chosen on the form (each says which).
    """
    path = Path(run_dir) / RECIPE_FILE
    if not path.is_file():
        raise WorkbenchError(f"run {Path(run_dir).name!r} has no {RECIPE_FILE}: its fix cannot be applied here")
    old = load_recipe(path)
    new = apply_fix(old, finding)
    diff = recipe_diff({"old": old, "new": new})
    return Fix(form_for_recipe(new), [(key, before, after) for key, (before, after) in diff.items()])


def change_text(changes: list[tuple[str, Any, Any]]) -> str:
    """``train.lr0 1 → 0.1; customizations.grad_clip.max_norm 0 → 200``; a customization switched on reads
    ``customizations.class_weights off → on (weights [..], scheme inverse_frequency, ...)``."""

    def show(v: Any) -> str:
        return "off" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    parts: list[str] = []
    turned_on: dict[str, list[str]] = {}
    for key, before, after in changes:
        block, _, setting = key.rpartition(".")
        if before is None and block.startswith("customizations.") and block.count(".") == 1:
            turned_on.setdefault(block, []).append(f"{setting} {show(after)}")
        else:
            parts.append(f"{key} {show(before)} → {show(after)}")
    parts += [f"{block} off → on ({', '.join(settings)})" for block, settings in turned_on.items()]
    return "; ".join(parts)


def chart_marks(found: list[Finding], limit: int = 3) -> list[Finding]:
    """The findings marked on the charts: critical and warning ones with an epoch, the first ``limit``."""
    return [f for f in found if f.severity != Severity.INFO and f.epoch is not None][:limit]
