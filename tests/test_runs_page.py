"""The Runs page (app/app_pages/runs.py) with AppTest: findings per run, downloads per run, delete."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from app import run_findings
from tests.conftest import fake_last_pt, make_dataset, wait_for
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.test_app_pages import open_page
from trainers.doctor import count_by_severity, diagnose_run
from trainers.doctor import training as doctor_training
from trainers.runs import launcher
from trainers.runs.status import read_status, write_status


# ---- delete --------------------------------------------------------------------------------------------------------
def test_archiving_a_run_started_on_new_run_moves_it_whole_to_the_archive(runs_root, monkeypatch):
    # a training process that ends at once: the run settles as failed (no run_end), so it can be deleted
    monkeypatch.setattr(launcher, "train_command", lambda recipe, root, name: [sys.executable, "-c", "pass"])
    at = open_page("new_run")
    at.text_input(key="nr_name").set_value("mine").run()
    at.button(key="new_run_start").click().run()
    assert not at.exception
    ui_recipe = runs_root / ".ui-recipes" / "mine.yaml"
    assert ui_recipe.is_file()
    wait_for(lambda: launcher.refresh_status(runs_root / "mine")["status"] == "failed")
    assert read_status(runs_root / "mine")["status"] == "failed"

    at.switch_page("app_pages/runs.py").run()
    at.button(key="runs_delete_mine").click().run()
    at.button(key="runs_confirm_mine").click().run()
    assert not at.exception
    assert not (runs_root / "mine").exists()
    # Delete is Archive now (issue 20): the folder is kept whole under .archive/, restorable, and the recipe New run
    # wrote for it stays beside the other runs' (Use in new run reads it by name)
    assert (runs_root / ".archive" / "mine" / "status.json").is_file()
    assert ui_recipe.is_file()


# ---- findings ------------------------------------------------------------------------------------------------------
def row_texts(at) -> dict[str, str]:
    """Each run's markdown on the page, joined: the row starts at the run's bold name."""
    out: dict[str, str] = {}
    current = None
    for m in at.markdown:
        if m.value.startswith("**") and m.value.endswith("**"):
            current = m.value.strip("*")
            out[current] = ""
        elif current:
            out[current] += " " + m.value
    return out


@pytest.fixture
def doctor_runs(runs_root, tmp_path):
    """``diverged`` (1 critical), ``saturated`` (1 warning, clip saturation), ``fine`` (healthy telemetry; its dataset
    has a label file without an image: 1 warning once the dataset is scanned)."""
    recipe = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}}
    grow = 200.0 * doctor_training.GRAD_NORM_GROWTH
    make_run(runs_root, "diverged", recipe, [epoch(1, grad=(200.0, 900.0)), epoch(2, grad=(300.0, grow)), epoch(3)])
    make_run(runs_root, "saturated", recipe, [epoch(i, max_norm=10.0, clipped=1.0) for i in range(1, 5)])
    fine = make_run(runs_root, "fine", recipe)
    data = make_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "labels" / "train" / "999.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no 999.png
    shutil.copy(data, fine / "data.yaml")  # as the runner leaves it: the run's own copy
    return runs_root


def test_runs_page_counts_findings_by_severity_and_scans_the_dataset_in_the_background(doctor_runs, monkeypatch):
    gate = threading.Event()
    scan = run_findings.dataset_facts_for_run

    def held_scan(run_dir, **kw):  # the background scan waits until the test lets it go
        assert threading.current_thread().name == "dataset-scan", "the page itself never scans a dataset"
        gate.wait(30)
        return scan(run_dir, **kw)

    monkeypatch.setattr(run_findings, "dataset_facts_for_run", held_scan)
    at = open_page("runs")
    rows = row_texts(at)
    assert ":red-badge[1 critical]" in rows["diverged"] and "warning" not in rows["diverged"]
    assert ":orange-badge[1 warning]" in rows["saturated"] and "critical" not in rows["saturated"]
    assert ":green-badge[no findings]" in rows["fine"]  # the telemetry alone is healthy...
    assert "checking the dataset…" in [c.value for c in at.caption]  # ...and the page says the dataset is pending
    assert run_findings.scanning()

    gate.set()
    assert run_findings.wait_for_scans(30)
    at.run()
    assert ":orange-badge[1 warning]" in row_texts(at)["fine"]  # data.orphan_labels, from the scan
    assert "checking the dataset…" not in [c.value for c in at.caption]
    assert (doctor_runs / "fine" / "dataset_check.json").is_file()  # the doctor's cache: the next UI reads it
    for name in ("diverged", "saturated", "fine"):  # the page's counts are the library's
        counts = count_by_severity(diagnose_run(doctor_runs / name))
        assert run_findings.findings_count(doctor_runs / name).counts == counts


def test_findings_count_is_computed_again_only_when_the_run_changed(doctor_runs, monkeypatch):
    calls = []
    count = run_findings.findings_count
    monkeypatch.setattr(run_findings, "findings_count", lambda path: calls.append(path) or count(path))
    run_findings.findings_count(doctor_runs / "fine")  # scan the dataset first: its version settles
    assert run_findings.wait_for_scans(30)
    at = open_page("runs")
    assert len(calls) == 4  # one per run (and the scan above)
    at.run()
    assert len(calls) == 4  # nothing changed: every count from the cache
    write_status(doctor_runs / "saturated", epoch=5)
    at.run()
    assert [Path(p).name for p in calls[4:]] == ["saturated"]


# ---- downloads -----------------------------------------------------------------------------------------------------
def test_runs_page_offers_each_runs_files(doctor_runs):
    run = doctor_runs / "fine"
    fake_last_pt(run)
    (run / "weights" / "best.pt").write_bytes(b"best")
    (run / "results.csv").write_text("epoch,x\n1,2\n")
    at = open_page("runs")
    buttons = {b.proto.id.rsplit("-", 1)[-1]: b.label for b in at.get("download_button")}
    fine = {k: v for k, v in buttons.items() if k.startswith("runs_download_fine_")}
    assert list(fine.values()) == ["best.pt", "last.pt", "recipe.yaml", "telemetry.jsonl", "results.csv"]
    saturated = [v for k, v in buttons.items() if k.startswith("runs_download_saturated_")]
    assert saturated == ["recipe.yaml", "telemetry.jsonl"]  # only the files that exist


def test_badges_name_each_severity_with_a_count():
    count = run_findings.FindingsCount({"critical": 1, "warning": 2, "info": 0})
    assert count.badges() == ":red-badge[1 critical] :orange-badge[2 warnings]" and count.total == 3
    assert run_findings.FindingsCount({"critical": 0, "warning": 0, "info": 0}).badges() == ":green-badge[no findings]"
