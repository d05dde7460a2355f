"""The training doctor: rules over a run's telemetry and dataset that say what went wrong, with the numbers, and
what to change (docs/doctor.md).

- :func:`diagnose` (``log, dataset -> findings``) and :func:`diagnose_run` (a run folder);
- :class:`Finding`: id, severity, title, evidence, fix, ``recipe_change`` (and epochs/steps for chart marks);
- :func:`apply_fix`: the recipe with a finding's change applied (the UI's "Apply fix");
- :func:`dataset_facts_for_run`: the run's cached dataset scan, for callers that diagnose repeatedly.

Nothing here imports torch, ultralytics or streamlit: the UI calls :func:`diagnose` on every refresh.
"""

from __future__ import annotations

from trainers.doctor.dataset_facts import DatasetFacts, dataset_facts_for_run, scan_dataset
from trainers.doctor.diagnose import diagnose, diagnose_run, read_run_log, rules
from trainers.doctor.finding import (
    SEVERITIES,
    Finding,
    count_by_severity,
    findings_text,
    severity_count,
    sort_findings,
)
from trainers.doctor.fixes import apply_fix

__all__ = [
    "SEVERITIES", "DatasetFacts", "Finding", "apply_fix", "count_by_severity", "dataset_facts_for_run", "diagnose",
    "diagnose_run", "findings_text", "read_run_log", "rules", "scan_dataset", "severity_count", "sort_findings",
]  # fmt: skip
