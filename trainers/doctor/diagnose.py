"""Run every rule over a run's telemetry (and its dataset facts): the one entry point of the dashboard, the Runs
page, ``workbench doctor`` and the ``doctor_stop`` customization.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainers.doctor import classes, data, predictions, training  # noqa: F401 (importing a family registers its rules)
from trainers.doctor.dataset_facts import DatasetFacts, dataset_facts_for_run
from trainers.doctor.finding import Finding, at_least, sort_findings
from trainers.doctor.registry import RULES, Context, Rule
from trainers.telemetry.run_log import RunLog, as_log

RULE_ERROR = "doctor.rule_error"  # a rule that raised on this log: reported, never hidden, never fatal


def diagnose(
    log: RunLog | Iterable[Mapping[str, Any]],
    dataset: DatasetFacts | None = None,
    *,
    live_only: bool = False,
    min_severity: str = "info",
    run_dir: str | os.PathLike[str] | None = None,
) -> list[Finding]:
    """The findings of a run, most severe first, then by id.

    Cheap enough for every dashboard refresh that brings an epoch: rules read the epoch events only (a few ms for a
    300-epoch, 80-class log, whatever the step count; docs/doctor.md).

    Args:
        log: The folded telemetry (or its events).
        dataset: The run's dataset facts (:func:`~trainers.doctor.dataset_facts.dataset_facts_for_run`); None skips
            the rules that need them.
        live_only: Only the rules the ``doctor_stop`` customization runs during training.
        min_severity: Only the rules whose findings are at least this severe.
        run_dir: The run folder, whose per-epoch evidence the prediction rules read (:mod:`~trainers.doctor.
            predictions`); None skips them.
    """
    ctx = Context(as_log(log), dataset, Path(run_dir) if run_dir is not None else None)
    found = []
    for r in rules(live_only=live_only, min_severity=min_severity):
        if (r.needs_dataset and dataset is None) or (r.needs_evidence and run_dir is None):
            continue
        try:
            finding = r.check(ctx)
        except Exception as e:  # an odd log must not take the dashboard down: say which rule failed on it
            finding = Finding(
                RULE_ERROR, "info", f"Rule {r.id} could not read this run", f"{type(e).__name__}: {e}",
                "Report it with the run's telemetry.jsonl: the other rules' findings still stand.", {"rule": r.id},
            )  # fmt: skip
        if finding is not None:
            found.append(finding)
    return sort_findings(found)


def rules(*, live_only: bool = False, min_severity: str = "info") -> list[Rule]:
    """The registered rules, in registry order (optionally the live ones, at least as severe as ``min_severity``)."""
    return [r for r in RULES.values() if (r.live or not live_only) and at_least(r.severity, min_severity)]


def read_run_log(run_dir: str | os.PathLike[str]) -> RunLog:
    """A run folder's telemetry, folded.

    Raises:
        RunError: ``run_dir`` is not a run folder.
    """
    from trainers.errors import RunError
    from trainers.run_files import STATUS_FILE, TELEMETRY_FILE
    from trainers.telemetry.events import read_events

    run_dir = Path(run_dir)
    if not (run_dir / STATUS_FILE).is_file() and not (run_dir / TELEMETRY_FILE).is_file():
        raise RunError(f"{run_dir} is not a run folder (no {STATUS_FILE} or {TELEMETRY_FILE})")
    return RunLog.from_events(read_events(run_dir / TELEMETRY_FILE)[0])


def diagnose_run(run_dir: str | os.PathLike[str], *, dataset: bool = True) -> list[Finding]:
    """The findings of a run folder: its telemetry, its per-epoch evidence, and its dataset (scanned once, cached in
    ``dataset_check.json``).

    Args:
        run_dir: The run folder.
        dataset: Also run the dataset rules (the first call per run scans the dataset: under a second for the label
            counts, up to :data:`~trainers.doctor.dataset_facts.IMAGE_SCAN_LIMIT` images opened per split).

    Raises:
        RunError: ``run_dir`` is not a run folder.
    """
    log = read_run_log(run_dir)
    return diagnose(log, dataset_facts_for_run(run_dir) if dataset else None, run_dir=run_dir)
