"""A resumed run keeps the truth (issue 9): the best epoch survives the resume everywhere it is shown, the unfreeze
stays at the epoch it happened in, and a run that never finished an epoch is refused without losing its error.

Real tiny training through the launcher and the CLI, as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, TINY_TRAIN, make_dataset, wait_for
from trainers.runs import launcher
from trainers.runs.status import read_status
from trainers.telemetry.events import read_events
from trainers.telemetry.run_log import RunLog


def log_of(run_dir) -> RunLog:
    return RunLog.from_events(read_events(run_dir / "telemetry.jsonl")[0])


def true_best(log: RunLog) -> int | None:
    """The epoch best.pt holds: the last standing epoch that saved it."""
    saved = [e["epoch"] for e in log.epochs if e.get("best_saved")]
    return saved[-1] if saved else None


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_resume_keeps_the_best_epoch_and_the_real_unfreeze_everywhere(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n_train=24, n_val=8)
    recipe = tmp_path / "recipe.yaml"
    # "Higher val/cls_loss is better" makes an early epoch the best: the loss falls as the model learns, so the
    # resumed epochs do not beat it and a resume that forgot the best would show none.
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": "yolo26n.yaml",
                "data": str(data),
                "train": {**TINY_TRAIN, "epochs": 6, "batch": 4, "nbs": 4},
                "customizations": {
                    "per_class_f1": {},
                    "best_metric": {"metric": "val/cls_loss", "mode": "max"},
                    "freeze": {"layers": "backbone", "frozen_epochs": 1},
                },
            }
        )
    )
    root = tmp_path / "runs"
    run_dir = launcher.start_run(recipe, root, name="truth")
    wait_for(lambda: read_status(run_dir).get("epoch", 0) >= 3, 300, 0.1, "three epochs")
    launcher.stop_run(run_dir)
    wait_for(lambda: launcher.refresh_status(run_dir)["status"] == "stopped", 120, 0.2, "the stop")
    before = log_of(run_dir)
    best_before = true_best(before)
    assert best_before is not None and read_status(run_dir)["best_epoch"] == best_before
    stopped_at = max(before.epoch_numbers)

    launcher.resume_run_detached(run_dir)
    seen_during = []

    def finished() -> bool:
        status = launcher.refresh_status(run_dir)
        if status["status"] == "running" and status.get("resumes") == 1:
            seen_during.append(status.get("best_epoch"))
        return status["status"] == "completed"

    wait_for(finished, 400, 0.1, "the resumed run to complete")
    after = log_of(run_dir)
    best = true_best(after)
    assert best is not None
    assert None not in seen_during, "status.json lost the best epoch during the resumed epochs"
    if best == best_before:  # the premise of the bug: no resumed epoch beat the best one
        assert best_before <= stopped_at
    status = read_status(run_dir)
    assert status["best_epoch"] == best and status["best_metric"]["name"] == "val/cls_loss"
    assert after.run_end["best_epoch"] == best and after.run_end["status"] == "completed"
    listed = json.loads(cli("runs", "--json", "--runs-dir", str(root)).stdout)["runs"]
    (row,) = [r for r in listed if r["name"] == "truth"]
    assert row["best_metric"] == status["best_metric"] and row["best_epoch"] == best
    assert row["steps"] > 0 and row["findings"] is not None

    # The dashboard header shows the best metric, not "-", and every fact as `runs --json` lists it.
    from tests.test_app_pages import open_page
    from tests.test_run_facts import dashboard_scan_done, header_from, header_shown

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    dashboard_scan_done(run_dir)
    at = open_page("dashboard", query={"run": "truth"})
    header = {m.label: m.value for m in at.metric}
    assert header["Best val/cls_loss"] != "-"
    shown = header_shown(at)
    assert {k: shown[k] for k in header_from(row)} == header_from(row)

    # One unfreeze, at the epoch it happened in (frozen_epochs 1 -> epoch 2), in the log and in what charts draw.
    assert [e["epoch"] for e in after.unfreezes] == [2]
    raw = [e for e in read_events(run_dir / "telemetry.jsonl")[0] if e["event"] == "unfreeze"]
    assert [e["epoch"] for e in raw] == [2], "a resumed attempt wrote another unfreeze"
    starts = [e for e in read_events(run_dir / "telemetry.jsonl")[0] if e["event"] == "run_start"]
    assert starts[0]["frozen"] == {"layers": list(range(11)), "until_epoch": 1} and starts[1]["frozen"] is None
    # the resumed attempt starts from the first attempt's best (run_start.best), not from nothing
    assert starts[0]["best"] is None and starts[1]["best"]["epoch"] == best_before
    from app import class_charts

    markers = [s.name for s in class_charts.f1_figure(after).layout.shapes if "unfreeze" in (s.name or "")]
    assert markers == ["unfreeze (epoch 2)"]


@pytest.mark.slow
def test_a_run_that_never_finished_an_epoch_is_refused_keeps_its_error_and_starts_again(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    (data.parent / "images" / "val" / "000.png").write_bytes(b"")  # the preflight check refuses an empty image
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": "yolo26n.yaml", "data": str(data), "train": dict(TINY_TRAIN)}))
    root = tmp_path / "runs"
    run_dir = launcher.start_run(recipe, root, name="early")
    wait_for(lambda: launcher.refresh_status(run_dir)["status"] == "failed", 120, 0.2, "the run to fail")
    error = read_status(run_dir)["error"]
    assert "000.png" in error
    files = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    result = cli("resume", "early", "--runs-dir", str(root))
    assert result.returncode == 2
    assert result.stderr == (
        "workbench: error: run 'early' never finished an epoch (no weights/last.pt), so there is nothing to resume; "
        "start it again with 'workbench rerun early'\n"
    )
    assert {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()} == files  # nothing changed
    assert read_status(run_dir)["error"] == error

    # The UI: Resume disabled with the reason, Start again offered.
    from tests.test_app_pages import open_page

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    at = open_page("dashboard", query={"run": "early"})
    resume = at.button(key="run_resume")
    assert resume.disabled and "never finished an epoch" in resume.help
    at = open_page("runs")
    assert at.button(key="runs_resume_early").disabled

    # Start again: a new run with the same recipe (here fixed first, so it trains).
    (data.parent / "images" / "val" / "000.png").unlink()
    result = cli("rerun", "early", "--runs-dir", str(root), "--name", "early-again")
    assert result.returncode == 0, result.stderr
    again = root / "early-again"
    assert read_status(again)["status"] == "completed"
    assert yaml.safe_load((again / "recipe.yaml").read_text()) == yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert read_status(run_dir)["error"] == error  # the original run is untouched
