"""The Runs page's Export popover (app/model_export_panel.py) and its export processes (app/model_export_jobs.py),
with AppTest: the command it starts, running / result / one-line error, downloads; and a real export from the page."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from app import model_export_jobs, model_export_panel
from tests.conftest import fake_last_pt, wait_for
from tests.doctor.runs import make_run
from tests.test_app_pages import MAIN, REPO, open_page
from trainers.cli import commands
from trainers.errors import RunError
from trainers.run_files import MODEL_EXPORT_DIR, UI_EXPORTS_DIR, VERIFY_SUFFIX
from trainers.statuses import RunStatus

RECIPE = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}}


@pytest.fixture
def page_run(runs_root) -> Path:
    """A completed run with best.pt and last.pt (not real models: the export command is stubbed)."""
    run = make_run(runs_root, "r", RECIPE)
    fake_last_pt(run)
    shutil.copy(run / "weights" / "last.pt", run / "weights" / "best.pt")
    return run


@pytest.fixture
def started(monkeypatch, tmp_path):
    """Stub the export process: record what the page asked for, run ``script`` (Python) in its place."""
    calls: list[tuple[str, str, str]] = []
    script = {"code": "pass"}

    def command(run_dir, fmt, weights):
        calls.append((os.fspath(run_dir), fmt, weights))
        return [sys.executable, "-c", script["code"]]

    monkeypatch.setattr(model_export_jobs, "export_command", command)
    yield calls, script
    for job_file in tmp_path.rglob(f"{UI_EXPORTS_DIR}/*/*.json"):  # nothing the test started outlives it
        pid = json.loads(job_file.read_text())["pid"]
        if model_export_jobs.process_alive(pid, json.loads(job_file.read_text())["pid_start"])[0]:
            os.kill(pid, signal.SIGKILL)


def ended(root: Path, run: str = "r", timeout: float = 60) -> model_export_jobs.ExportJob:
    return wait_for(
        lambda: next((j for j in model_export_jobs.jobs(root, run) if j.state != RunStatus.RUNNING), None), timeout
    )


def test_the_command_is_workbench_export_model_with_the_chosen_format_and_weights(tmp_path):
    cmd = model_export_jobs.export_command(tmp_path / "r", "openvino", "last")
    assert cmd[:3] == [sys.executable, "-m", "trainers.cli"]
    args = commands.build_parser().parse_args(cmd[3:])
    assert (args.command, args.run, args.format, args.weights, args.json) == (
        "export-model", str(tmp_path / "r"), "openvino", "last", True
    )  # fmt: skip
    assert args.func.__module__ == "trainers.cli.model_export"


def test_export_offers_the_formats_and_the_runs_checkpoints_and_starts_the_export(page_run, runs_root, started):
    calls, script = started
    record = {"summary": "last.torchscript: verified ...: passed", "passed": True, "path": "/x/last.torchscript"}
    script["code"] = f"print('export-model: exporting...'); print({json.dumps(json.dumps(record))})"
    at = open_page("runs")
    fmt, weights = at.radio(key="runs_export_format_r"), at.radio(key="runs_export_weights_r")
    assert fmt.options == ["ONNX", "TorchScript", "OpenVINO"] and fmt.value == "onnx"
    assert weights.options == ["best.pt", "last.pt"] and weights.value == "best"
    fmt.set_value("torchscript")
    weights.set_value("last")
    at.button(key="runs_export_r").click().run()
    assert not at.exception
    assert calls == [(str(page_run), "torchscript", "last")]
    assert "Exporting last.pt of r to TorchScript in the background." in [s.value for s in at.success]
    job = ended(runs_root)
    assert (job.state, job.passed) == (RunStatus.COMPLETED, True)
    assert (job.message, job.path) == (record["summary"], record["path"])
    at.run()
    assert record["summary"] in [s.value for s in at.success]  # the result line, in the popover


def test_a_failed_export_is_one_line_never_a_traceback(page_run, runs_root, started):
    _, script = started
    script["code"] = (
        "import sys; print('Traceback (most recent call last):', file=sys.stderr);"
        "print('workbench: error: --format onnx needs packages that are missing (onnx is not installed)',"
        " file=sys.stderr); sys.exit(2)"
    )
    at = open_page("runs")
    at.button(key="runs_export_r").click().run()
    assert ended(runs_root).state == RunStatus.FAILED
    at.run()
    shown = [e.value for e in at.error]
    assert shown == ["best.pt → ONNX: --format onnx needs packages that are missing (onnx is not installed)"]


def test_an_export_that_died_without_a_word_says_so_in_one_line(page_run, runs_root, started):
    _, script = started
    script["code"] = "raise SystemExit('Killed')"
    at = open_page("runs")
    at.button(key="runs_export_r").click().run()
    job = ended(runs_root)
    assert job.state == RunStatus.FAILED and job.message == "the export process ended without a result (Killed)"


def test_a_running_export_is_shown_refreshes_the_page_and_cannot_be_started_twice(page_run, runs_root, started):
    _, script = started
    script["code"] = "import time; time.sleep(60)"
    at = open_page("runs")
    assert not model_export_jobs.running(runs_root)
    at.button(key="runs_export_r").click().run()
    assert model_export_jobs.running(runs_root)
    at.run()
    assert "exporting best.pt to ONNX…" in [c.value for c in at.caption]
    assert any(i.value.startswith("best.pt → ONNX: exporting and verifying…") for i in at.info)
    with pytest.raises(RunError, match="is running already"):
        model_export_jobs.start_export(runs_root, page_run, "onnx", "best")
    model_export_jobs.start_export(runs_root, page_run, "torchscript", "best")  # another format may run beside it


def test_a_missing_package_disables_export_and_names_the_extra(page_run, monkeypatch):
    monkeypatch.setattr(
        model_export_panel, "missing", lambda fmt: ("openvino is not installed",) if fmt == "openvino" else ()
    )
    at = open_page("runs")
    assert not at.button(key="runs_export_r").disabled
    at.radio(key="runs_export_format_r").set_value("openvino").run()
    assert at.button(key="runs_export_r").disabled
    assert any("pip install 'trainer-workbench[export]'" in c.value for c in at.caption)


def test_a_run_without_checkpoints_offers_no_export(runs_root):
    make_run(runs_root, "bare", RECIPE)
    at = open_page("runs")
    assert not [b for b in at.button if b.key == "runs_export_bare"]
    assert any(c.value.startswith("No checkpoint yet") for c in at.caption)


def write_export(run: Path, name: str, passed: bool, folder: bool = False) -> Path:
    out = run / MODEL_EXPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    model = out / name
    if folder:
        model.mkdir()
        (model / "best.xml").write_text("<xml/>")
        (model / "best.bin").write_bytes(b"\0" * 10)
    else:
        model.write_bytes(b"model")
    record = {"file": name, "passed": passed, "created": "2026-01-01T00:00:00+00:00"}
    (out / f"{name}{VERIFY_SUFFIX}").write_text(json.dumps(record))
    return model


def test_the_missing_packages_are_asked_again_only_every_30_s(monkeypatch):
    asked = []
    monkeypatch.setattr(model_export_panel, "missing_packages", lambda fmt: asked.append(fmt) or [f"{fmt} gone"])
    now = [1000.0]
    monkeypatch.setattr(model_export_panel.time, "monotonic", lambda: now[0])
    model_export_panel._missing_at.cache_clear()
    assert model_export_panel.missing("onnx") == ("onnx gone",) and model_export_panel.missing("onnx")
    now[0] += model_export_panel.MISSING_RECHECK_S
    model_export_panel.missing("onnx")
    assert asked == ["onnx", "onnx"]


def test_each_export_on_disk_can_be_downloaded_openvino_as_a_zip(page_run):
    write_export(page_run, "best.onnx", passed=True)
    ov = write_export(page_run, "best_openvino_model", passed=False, folder=True)
    (page_run / MODEL_EXPORT_DIR / f"gone.onnx{VERIFY_SUFFIX}").write_text("{}")  # its model was deleted: not offered
    at = open_page("runs")
    labels = [b.label for b in at.get("download_button")]
    assert "best.onnx (verified)" in labels and "best_openvino_model.zip (outside the tolerance)" in labels
    assert not [x for x in labels if x.startswith("gone")]
    with zipfile.ZipFile(io.BytesIO(model_export_panel._zip(ov))) as archive:
        assert sorted(archive.namelist()) == ["best_openvino_model/best.bin", "best_openvino_model/best.xml"]


def test_the_runs_page_with_exports_still_never_imports_torch(tmp_path):
    """The Export popover and its records render in a fresh interpreter without torch or ultralytics."""
    root = tmp_path / "runs"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        os.environ["WORKBENCH_RUNS_DIR"] = {str(root)!r}
        from tests.test_model_export_page import RECIPE, write_export
        from tests.doctor.runs import make_run
        run = make_run(__import__("pathlib").Path({str(root)!r}), "r", RECIPE)
        (run / "weights").mkdir()
        (run / "weights" / "best.pt").write_bytes(b"x")
        write_export(run, "best.onnx", passed=True)
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(MAIN)!r}, default_timeout=60).run()
        at.switch_page("app_pages/runs.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.radio(key="runs_export_format_r").options == ["ONNX", "TorchScript", "OpenVINO"]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics", "torchvision"))
        print("HEAVY:" + ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY:" in out.stdout.splitlines(), out.stdout


# ---- a real export from the page -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_from_the_runs_page_writes_a_verified_onnx_and_offers_it(runs_root, demo_run_64):
    run = Path(shutil.copytree(demo_run_64, runs_root / "r"))
    at = open_page("runs")
    at.button(key="runs_export_r").click().run()  # the defaults: ONNX, best.pt
    assert not at.exception
    job = ended(runs_root, timeout=300)
    assert job.state == RunStatus.COMPLETED and job.passed, job.message
    assert job.path == str(run / MODEL_EXPORT_DIR / "best.onnx") and Path(job.path).is_file()
    assert "passed" in job.message and "tolerance 1.0 px" in job.message
    record = json.loads((run / MODEL_EXPORT_DIR / f"best.onnx{VERIFY_SUFFIX}").read_text())
    assert record["passed"] and record["max_box_diff_px"] <= 1.0 and record["max_conf_diff"] <= 0.01
    at.run()
    assert job.message in [s.value for s in at.success]
    assert "best.onnx (verified)" in [b.label for b in at.get("download_button")]
