"""``workbench runs --json`` lists every fact the run's dashboard header shows, from the same function
(``trainers/runs/facts.py``): the header as AppTest renders it and the CLI's JSON agree field by field, on a completed
run with steps and on a diverged run with findings. The real stop-after-best + resume is in tests/test_resume_truth.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.run_views import format_count, format_duration, format_metric
from tests.conftest import REPO
from tests.doctor.synthetic import epoch
from tests.fixtures.make_telemetry import FIXTURES
from tests.test_app_pages import open_page
from tests.test_doctor_ui import diverging_run
from trainers.doctor import severity_count
from trainers.metrics import metric_label
from trainers.runs.facts import RunFacts, read_run_facts, run_facts
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status, write_status
from trainers.telemetry.run_log import RunLog


def cli_rows(root: Path) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "runs", "--json", "--runs-dir", str(root)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)["runs"]}


def header_shown(at) -> dict[str, str]:
    """The header's metrics (label -> value, the best metric's help too) and the doctor's line, as the page shows."""
    shown = {m.label: m.value for m in at.metric}
    best = next(m for m in at.metric if m.label.startswith("Best"))
    shown["best help"] = best.help or ""
    shown["doctor"] = next((e.label for e in at.expander if e.label.startswith("Doctor:")), "")
    return shown


def header_from(row: dict) -> dict[str, str]:
    """What the header shows, from a row of ``runs --json``: the page's own formatting of each fact."""
    best = row["best_metric"] or {}
    counts = row["findings"]
    head = ", ".join(severity_count(s, n) for s, n in (counts or {}).items() if n) or "nothing to report so far"
    return {
        "Epoch": f"{row['epoch']}/{row['epochs'] or '?'}",
        "ETA": format_duration(row["eta_s"]),
        f"Best {metric_label(best.get('name'))}".strip(): f"{best['value']:.3f}" if best else "-",
        "best help": f"{format_metric(best)}, epoch {row['best_epoch']} (best.pt)" if row["best_epoch"] else "",
        "Steps": format_count(row["steps"]),
        "Clipped": f"{row['clipped_share']:.1%}" if row["clipped_share"] is not None else "-",
        "doctor": f"Doctor: {head}" if counts is not None else "",
    }


def dashboard_scan_done(run_dir: Path) -> None:
    """The dashboard's dataset scan of the run, finished (and cached in the run folder, where the CLI reads it): the
    page waits only 0.5 s for it and says "checking the dataset..." until then, which a loaded machine can hit."""
    from app import doctor_views

    assert doctor_views.dataset_facts(run_dir, wait=120)[1]


def completed_with_steps(root: Path) -> Path:
    run = create_run_dir(root, "done")
    shutil.copy(FIXTURES / "complete.jsonl", run / "telemetry.jsonl")
    write_status(run, status="completed", epoch=6, epochs=6, best_epoch=5,
                 best_metric={"name": "mAP50-95", "value": 0.41})  # fmt: skip
    return run


@pytest.mark.parametrize("make", [completed_with_steps, diverging_run], ids=["completed", "diverged"])
def test_runs_json_lists_what_the_dashboard_header_shows(runs_root, make):
    run = make(runs_root)
    dashboard_scan_done(run)
    row = cli_rows(runs_root)[run.name]
    assert {"best_epoch", "steps", "clipped_share", "eta_s", "findings"} <= set(row)
    at = open_page("dashboard", query={"run": run.name})
    shown = header_shown(at)
    assert shown == {**{k: v for k, v in shown.items() if k not in header_from(row)}, **header_from(row)}
    assert row["steps"] > 0 and row["best_epoch"] is not None
    if run.name == "diverged":
        assert row["findings"]["critical"] >= 1 and "critical" in shown["doctor"]


def test_the_facts_of_a_run_with_no_epoch_yet():
    facts = run_facts({"status": "starting"}, RunLog())
    assert facts == RunFacts("starting", 0, None, None, None, 0, None, None, None)


def test_eta_only_while_active_and_findings_counted_by_severity():
    log = RunLog.from_events([{"event": "run_start", "epochs": 10, "t": 1000.0}, epoch(1), epoch(2)])
    running = run_facts({"status": "running", "epochs": 10, "epoch": 2}, log, findings=[], now=time.time())
    assert running.eta_s is not None and running.findings == {"critical": 0, "warning": 0, "info": 0}
    stopped = run_facts({"status": "stopped", "epochs": 10, "epoch": 2}, log, findings=None)
    assert stopped.eta_s is None and stopped.findings is None


def test_read_run_facts_of_a_run_folder_reads_its_step_store(runs_root):
    run = diverging_run(runs_root)  # steps only in the step store, none in the events log
    facts = read_run_facts(run, read_status(run))
    assert facts.steps == 30 and facts.clipped_share == 0.0 and facts.findings["critical"] >= 1
