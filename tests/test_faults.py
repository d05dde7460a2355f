"""Faults while a run is going or being resumed, each on real files and (where it matters) a real training process.

- the training process hits a file-size limit while writing a checkpoint: the run fails with one clear line, the
  previous epoch's last.pt still loads, and the run resumes once the limit is gone;
- a damaged last.pt on resume: one line, exit 2, every file of the run byte-identical (CLI, launcher and Runs page);
- a corrupt line in the middle of telemetry: skipped with a warning, everything else kept (the reader itself is
  tested in tests/test_telemetry.py::test_corrupt_middle_line_is_skipped_with_a_warning_naming_its_offset; here the
  dashboard draws such a run);
- an image deleted while a run trains: the run fails and the error names the file (also from a DataLoader worker);
- the UI server killed and started again while three runs train: all three keep training and reattach.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_BASE, REPO, TINY_TRAIN, make_dataset, wait_for
from tests.fixtures.make_telemetry import FIXTURES
from tests.test_robustness import snapshot
from tests.ui_server import WorkbenchUI
from trainers.errors import RunError
from trainers.runs import launcher
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status, write_status
from trainers.telemetry.events import read_events


def cli(*args: str, preexec_fn=None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=preexec_fn,
        timeout=timeout,
    )


def events_of(run_dir: Path) -> list[dict]:
    return read_events(run_dir / "telemetry.jsonl")[0]


def epochs_logged(run_dir: Path) -> list[int]:
    return [e["epoch"] for e in events_of(run_dir) if e["event"] == "epoch" and not e["final_eval"]]


def write_recipe(path: Path, data: Path, model: str = "yolo26n.yaml", train: dict | None = None, **custom) -> Path:
    path.write_text(
        yaml.safe_dump(
            {"model": model, "data": str(data), "train": {**TINY_TRAIN, **(train or {})}, "customizations": custom}
        )
    )
    return path


# ---- a file-size limit (or a full disk) while a checkpoint is written -------------------------------------------
# yolo26n at imgsz 64 with the backbone frozen for epoch 1: last.pt after epoch 1 holds optimizer state for the head
# only (14.7 MB measured); after epoch 2, with the backbone training, for every layer (25.7 MB). A 20 MB limit on
# every file the process writes lets the first save through and stops the second one half-way, every time.
FSIZE_LIMIT = 20_000_000
FULL_DISK_ERROR = (
    "OSError: [Errno 27] File too large (a full disk or a file-size limit stopped a write; free space or raise the "
    "limit, then resume)"
)


@pytest.mark.slow
def test_file_size_limit_on_the_second_checkpoint_fails_the_run_and_keeps_epoch_1s_last_pt(tmp_path, tiny_data):
    import torch
    from ultralytics import YOLO

    recipe = write_recipe(tmp_path / "r.yaml", tiny_data, train={"epochs": 3}, freeze={"frozen_epochs": 1})
    run = tmp_path / "runs" / "fsize"

    def limit_file_size() -> None:  # in the child, before exec; CPython ignores SIGXFSZ, so write() raises EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))

    result = cli("train", str(recipe), "--runs-dir", str(run.parent), "--name", run.name, preexec_fn=limit_file_size)
    assert result.returncode == 1, result.stderr[-3000:]
    status = read_status(run)
    assert status["status"] == "failed" and status["epoch"] == 1
    assert status["error"] == FULL_DISK_ERROR
    end = events_of(run)[-1]
    assert end["event"] == "run_end" and end["status"] == "failed" and end["error"] == FULL_DISK_ERROR
    assert "File too large" in end["traceback"][-1]
    assert epochs_logged(run) == [1]

    weights = run / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]  # no half-written temp file left
    last = weights / "last.pt"
    assert 10_000_000 < last.stat().st_size < FSIZE_LIMIT, "epoch 1's checkpoint (head-only optimizer state)"
    assert torch.load(last, weights_only=False)["epoch"] == 0  # 0-based: the first epoch, saved whole
    assert YOLO(str(last)).model.names == {0: "disc", 1: "block", 2: "ring"}

    # With the limit gone, the run goes on from that checkpoint and finishes.
    resumed = cli("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_status(run)["status"] == "completed"
    assert epochs_logged(run) == [1, 2, 3]


# ---- a damaged last.pt on resume ----------------------------------------------------------------------------------
def _truncate(p: Path) -> str:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return "truncated or not a zip archive"


def _zero_bytes(p: Path) -> str:
    p.write_bytes(b"")
    return "truncated or not a zip archive"


def _overwrite_middle(p: Path) -> str:
    """Zero 64 bytes inside the largest tensor: still a valid zip, and torch.load would load it without a word."""
    with zipfile.ZipFile(p) as z:
        member = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(p.read_bytes())
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra) + member.file_size // 2
    data[start : start + 64] = bytes(64) if data[start : start + 64] != bytes(64) else b"\xff" * 64
    p.write_bytes(bytes(data))
    return f"corrupted: {member.filename} fails its checksum"


def _text(p: Path) -> str:
    p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 5328133\n")  # an LFS pointer
    return "truncated or not a zip archive"


DAMAGE = {"truncated": _truncate, "zero bytes": _zero_bytes, "bytes overwritten": _overwrite_middle, "text": _text}


@pytest.fixture
def stopped_run(tmp_path) -> Path:
    """A stopped run whose weights/last.pt is a real ultralytics checkpoint (the demo base model)."""
    run = create_run_dir(tmp_path / "runs", "halted")
    (run / "recipe.yaml").write_text(f"model: {DEMO_BASE}\ndata: {REPO / 'assets/demo/data.yaml'}\n")
    shutil.copy(FIXTURES / "one_epoch.jsonl", run / "telemetry.jsonl")
    (run / "weights").mkdir()
    shutil.copy(DEMO_BASE, run / "weights" / "last.pt")
    write_status(run, status="stopped", epoch=1, epochs=6)
    return run


def test_intact_last_pt_passes_the_resume_check(stopped_run):
    from trainers.runs.preflight import check_last_checkpoint

    check_last_checkpoint(stopped_run / "weights" / "last.pt")  # no false alarm on a real checkpoint


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_last_pt_on_resume_is_one_line_and_touches_nothing(damage, stopped_run):
    last = stopped_run / "weights" / "last.pt"
    detail = DAMAGE[damage](last)
    message = f"{last}: not a readable checkpoint ({detail}); nothing was changed"
    before = snapshot(stopped_run.parent)

    result = cli("resume", stopped_run.name, "--runs-dir", str(stopped_run.parent), timeout=120)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2 and result.stderr == f"workbench: error: {message}\n"
    assert snapshot(stopped_run.parent) == before

    # The UI's Resume button (launcher.resume_run_detached) refuses it the same way, before spawning anything.
    with pytest.raises(RunError) as err:
        launcher.resume_run_detached(stopped_run)
    assert str(err.value) == message
    assert snapshot(stopped_run.parent) == before


def test_runs_page_resume_of_a_damaged_last_pt_shows_the_error_and_changes_nothing(stopped_run, monkeypatch):
    from tests.test_app_pages import errors, open_page

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(stopped_run.parent))
    last = stopped_run / "weights" / "last.pt"
    detail = _overwrite_middle(last)
    before = snapshot(stopped_run.parent)
    at = open_page("runs")
    at.button(key="runs_resume_halted").click().run()
    assert not at.exception
    assert errors(at) == [f"{last}: not a readable checkpoint ({detail}); nothing was changed"]
    assert snapshot(stopped_run.parent) == before


# ---- a corrupt line in the middle of telemetry --------------------------------------------------------------------
def test_dashboard_draws_a_run_whose_telemetry_has_a_corrupt_middle_line(tmp_path, monkeypatch):
    from app import run_views
    from tests.test_app_pages import open_page

    root = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    clean = (FIXTURES / "complete.jsonl").read_bytes().splitlines(keepends=True)
    run = create_run_dir(root, "torn")
    middle = len(clean) // 2
    garbage = b'{"v":1,"event":"step","epoch":3,"st\x00\xff garbage from a crashed writer\n'
    (run / "telemetry.jsonl").write_bytes(b"".join(clean[:middle]) + garbage + b"".join(clean[middle:]))
    write_status(run, status="completed", epoch=6, epochs=6)

    with pytest.warns(RuntimeWarning, match=f"byte offset {len(b''.join(clean[:middle]))}"):
        events, _ = read_events(run / "telemetry.jsonl")
    assert events == [json.loads(line) for line in clean]  # every other event kept, in order

    run_views._CACHE.clear()
    with pytest.warns(RuntimeWarning, match="byte offset"):
        at = open_page("dashboard", query={"run": "torn"})
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Steps"] == "150"  # as for the clean log
    assert len(at.get("plotly_chart")) == 6


# ---- an image deleted while the run trains ------------------------------------------------------------------------
@pytest.mark.slow
def test_image_deleted_mid_run_fails_the_run_naming_the_file(tmp_path):
    data = make_dataset(tmp_path / "ds")
    recipe = write_recipe(tmp_path / "r.yaml", data, train={"epochs": 10, "cache": False})
    run = launcher.start_run(recipe, tmp_path / "runs", name="shrinking")
    wait_for(lambda: epochs_logged(run), 300, 0.05, "epoch 1 logged")
    # A validation image: the validator reads every image from disk each epoch (training keeps up to batch*8 recently
    # used images in RAM for mosaic, which would hide a deleted training image on a dataset this small).
    victim = tmp_path / "ds" / "images" / "val" / "003.png"
    victim.unlink()
    status = wait_for(lambda: (s := read_status(run))["status"] not in ("starting", "running") and s, 300, 0.2)
    assert status["status"] == "failed", status
    assert status["error"] == f"FileNotFoundError: Image Not Found {victim}"
    end = events_of(run)[-1]
    assert end["event"] == "run_end" and end["error"] == status["error"]
    assert 1 <= len(epochs_logged(run)) < 10


def test_error_from_a_dataloader_worker_names_the_workers_file():
    """On a GPU, ultralytics loads images in DataLoader workers; torch re-raises their error with a header line."""
    from torch._utils import ExceptionWrapper

    from trainers.training.run import error_line

    try:
        raise FileNotFoundError("Image Not Found /data/images/val/003.png")
    except FileNotFoundError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(FileNotFoundError) as err:
        wrapped.reraise()
    assert str(err.value).splitlines()[0] == "Caught FileNotFoundError in DataLoader worker process 0."
    assert error_line(err.value) == "FileNotFoundError: Image Not Found /data/images/val/003.png"


# ---- the UI server killed and restarted while three runs train -------------------------------------------------
@pytest.mark.slow
def test_ui_killed_and_restarted_while_three_runs_train_all_three_reattach(tmp_path, tiny_data, monkeypatch):
    from app import run_views
    from tests.test_app_pages import open_page
    from trainers.runs.status import process_start_time

    root = tmp_path / "runs"
    recipe = write_recipe(tmp_path / "long.yaml", tiny_data, train={"epochs": 300}, per_class_f1={})
    runs = [launcher.start_run(recipe, root, name=f"live{i}") for i in range(3)]
    ui = WorkbenchUI(root, log=tmp_path / "ui.log")
    port = ui.port
    try:
        for run in runs:
            wait_for(lambda run=run: epochs_logged(run), 300, 0.2, f"{run.name}: epoch 1 logged")
        pids = {run.name: read_status(run)["pid"] for run in runs}

        ui.start()
        ui.kill()  # SIGKILL to the CLI and Streamlit: no shutdown code runs
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
        for run in runs:  # the runs live in their own sessions: untouched by the UI's death
            status = launcher.refresh_status(run)
            assert status["status"] == "running" and status["pid"] == pids[run.name]
            assert process_start_time(status["pid"]) == status["pid_start"]

        ui.start()  # same port, same runs root: what a user does after a crash

        # What the restarted server shows, rendered by the same page scripts against the same runs root.
        monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
        run_views._CACHE.clear()  # a new UI process starts with no event cache
        at = open_page("runs")
        text = " ".join(m.value for m in at.markdown)
        for run in runs:
            assert f"**{run.name}**" in text
            assert at.button(key=f"runs_stop_{run.name}")  # only active runs get a Stop button
        assert {r.name: r.status for r in run_views.run_rows(root)} == {r.name: "running" for r in runs}
        for run in runs:
            size = (run / "telemetry.jsonl").stat().st_size
            dash = open_page("dashboard", query={"run": run.name})
            assert not dash.exception
            cache = run_views.run_events(run)
            assert cache.offset >= size  # it read the whole log on disk, from the start
            steps = int({m.label: m.value for m in dash.metric}["Steps"].replace(",", ""))
            assert steps > 0

            def cache_holds_every_event_on_disk(cache=cache, run=run) -> bool:
                log = cache.poll()  # the live refresh: reads what the run appended since
                on_disk, end = read_events(run / "telemetry.jsonl")
                return end == cache.offset and log.n_events == len(on_disk)  # equal unless the run wrote in between

            wait_for(cache_holds_every_event_on_disk, 30, 0.05, f"{run.name}: event cache == telemetry on disk")
        assert all(read_status(r)["status"] == "running" for r in runs)
    finally:
        ui.kill()
        for run in runs:
            try:
                launcher.stop_run(run)
            except RunError:
                pass
        for run in runs:
            wait_for(lambda run=run: read_status(run)["status"] in ("stopped", "failed", "completed"), 120, 0.2)
    assert [read_status(r)["status"] for r in runs] == ["stopped"] * 3  # stopped cleanly: resumable
