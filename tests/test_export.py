"""``workbench export RUN`` (trainers/telemetry/export.py): steps, epochs and per-class series that pandas and polars
read as
they are, equal to what the run logged; resumed attempts superseding what they redid; older logs too."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.conftest import REPO
from tests.fixtures.make_telemetry import FIXTURES
from trainers.runs.folder import create_run_dir
from trainers.telemetry.events import TelemetryWriter
from trainers.telemetry.steps import StepWriter

NAMES = ["cat", "dog"]


def logged_run(root, name="exp"):
    """A run with two attempts: epochs 1-2, an interrupted epoch 3 (steps 21-25), then a resume redoing epoch 3."""
    run = create_run_dir(root, name)
    events = TelemetryWriter(run / "telemetry.jsonl")
    cols = {
        "lr/head": "float64",
        "grad_norm": "float32",
        "clipped": "uint8",
        "max_norm": "float32",
        "loss/box": "float32",
    }
    rng = np.random.default_rng(0)

    def steps(writer, first, n, epoch):
        step = np.arange(first, first + n)
        writer.append(
            {"step": step, "epoch": np.full(n, epoch), "t": 1e9 + step, "lr/head": np.full(n, 0.01 / epoch),
             "grad_norm": rng.uniform(1, 100, n).astype(np.float32), "clipped": np.ones(n, np.uint8),
             "max_norm": np.full(n, 10, np.float32), "loss/box": rng.uniform(0, 3, n).astype(np.float32)}
        )  # fmt: skip

    def epoch(e, step):
        events.emit(
            "epoch", epoch=e, final_eval=False, step=step, metrics={"metrics/mAP50(B)": 0.1 * e, "val/box_loss": 3 - e},
            per_class=[{"id": i, "name": n, "precision": 0.5, "recall": 0.5, "f1": 0.1 * e + i, "ap50": 0.4, "ap": 0.3,
                        "present": True} for i, n in enumerate(NAMES)],
            mean_f1=0.1 * e, fitness=0.1 * e, best_saved=True, lr={"head": 0.01 / e}, epoch_time=1.0,
            steps={"n": 10, "grad_norm": {"p90": 50.0 + e}}, system={"data_share": 0.1},
        )  # fmt: skip

    events.emit("run_start", names=NAMES, start_epoch=1, param_groups=["head"], epochs=4)
    first = StepWriter(run / "steps", attempt=1, first_step=0, columns=cols)
    steps(first, 1, 10, 1)
    epoch(1, 10)
    steps(first, 11, 10, 2)
    epoch(2, 20)
    steps(first, 21, 5, 3)  # interrupted
    first.close()
    events.emit("run_start", names=NAMES, start_epoch=3, param_groups=["head"], epochs=4, resumed=True)
    second = StepWriter(run / "steps", attempt=2, first_step=20, columns=cols)
    steps(second, 21, 10, 3)
    epoch(3, 30)
    second.close()
    events.close()
    return run


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_tables_pandas_and_polars_read(tmp_path, fmt):
    from trainers.telemetry.export import export_run

    run = logged_run(tmp_path / "runs")
    files = export_run(run, fmt)
    assert [f.name for f in files] == [f"steps.{fmt}", f"epochs.{fmt}", f"per_class.{fmt}"]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    steps, epochs, per_class = (read(f) for f in files)
    assert list(steps["step"]) == list(range(1, 31))  # the interrupted epoch's steps 21-25 superseded, once each
    assert list(steps["epoch"]) == [1] * 10 + [2] * 10 + [3] * 10
    assert steps["lr/head"].iloc[-1] == pytest.approx(0.01 / 3)
    assert list(epochs["epoch"]) == [1, 2, 3] and list(epochs["metrics/mAP50(B)"]) == pytest.approx([0.1, 0.2, 0.3])
    assert list(epochs["steps.grad_norm.p90"]) == [51.0, 52.0, 53.0] and "system.data_share" in epochs
    assert len(per_class) == 3 * len(NAMES) and set(per_class["name"]) == set(NAMES)
    dog = per_class[per_class["name"] == "dog"]
    assert list(dog["f1"]) == pytest.approx([1.1, 1.2, 1.3])
    polars_read = pl.read_csv if fmt == "csv" else pl.read_parquet
    assert polars_read(files[0]).height == 30


def test_export_of_an_older_log_with_step_events(tmp_path):
    from trainers.telemetry.export import export_run

    run = create_run_dir(tmp_path / "runs", "old")
    shutil.copy(FIXTURES / "resumed.jsonl", run / "telemetry.jsonl")
    steps = pd.read_csv(export_run(run, "csv")[0])
    assert steps["step"].is_monotonic_increasing and steps["step"].is_unique  # superseded steps dropped


def test_the_cli_exports_and_refuses_bad_input(tmp_path):
    run = logged_run(tmp_path / "runs")
    cmd = [sys.executable, "-m", "trainers.cli", "export"]
    ok = subprocess.run([*cmd, "exp", "--runs-dir", str(tmp_path / "runs"), "--format", "parquet", "--out",
                         str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == [str(tmp_path / "out" / f"{n}.parquet") for n in ("steps", "epochs", "per_class")]
    missing = subprocess.run(
        [*cmd, "nope", "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True, cwd=REPO
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "run 'nope' not found" in missing.stderr
    assert run.is_dir()
