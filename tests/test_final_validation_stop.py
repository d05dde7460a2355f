"""A stop that arrives after the last epoch, during the final validation, ends the run completed (its weights are
final) and Resume is not offered, locally and on a Ray cluster (issue 18 item 5). ultralytics strips last.pt in its
final evaluation, so a run recorded "stopped" there could only fail on resume ("training to N epochs is finished,
nothing to resume").

The real runs get a validation set of many copies of the demo's val images, so the validations take seconds while
training takes one short epoch: a stop sent when status.json says the last epoch is done lands in the final one.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA, recipe_for, wait_for
from trainers.runs import launcher
from trainers.runs.folder import create_run_dir, end_run, resume_refusal
from trainers.runs.status import read_status, write_status
from trainers.statuses import RunStatus
from trainers.telemetry.events import read_events

VAL_COPIES = 40  # 16 demo val images each: 640 images, seconds of validation at imgsz 64 on 2 loaded cores


# ---- the rule, without training --------------------------------------------------------------------------------------
def test_a_stop_recorded_after_the_last_epoch_ends_the_run_completed(tmp_path):
    run = create_run_dir(tmp_path, "done")
    write_status(run, status=RunStatus.RUNNING, epoch=3, epochs=3)
    end_run(run, RunStatus.STOPPED)
    assert read_status(run)["status"] == RunStatus.COMPLETED
    assert read_events(run / "telemetry.jsonl")[0][-1]["status"] == RunStatus.COMPLETED
    assert resume_refusal(run, read_status(run)) == "run 'done' is completed; nothing to resume"


def test_a_stop_before_the_last_epoch_stays_stopped_and_resumable(tmp_path):
    run = create_run_dir(tmp_path, "mid")
    write_status(run, status=RunStatus.RUNNING, epoch=2, epochs=3)
    (run / "weights").mkdir()
    (run / "weights" / "last.pt").write_bytes(b"x")
    end_run(run, RunStatus.STOPPED)
    assert read_status(run)["status"] == RunStatus.STOPPED
    assert resume_refusal(run, read_status(run)) is None
    end_run(run, RunStatus.FAILED)  # only a stop is turned into completed
    assert read_status(run)["status"] == RunStatus.FAILED


def test_a_run_recorded_stopped_after_its_last_epoch_is_not_offered_resume(tmp_path):
    """Runs recorded before this rule (or by hand): status.json says stopped with every epoch done."""
    run = create_run_dir(tmp_path, "old")
    (run / "weights").mkdir()
    (run / "weights" / "last.pt").write_bytes(b"x")
    write_status(run, status=RunStatus.STOPPED, epoch=3, epochs=3)
    assert resume_refusal(run, read_status(run)) == "run 'old' is completed; nothing to resume"


def test_a_stop_after_the_loop_ended_by_itself_is_completed_even_before_the_planned_epochs(tmp_path, monkeypatch):
    """Early stopping (patience) ended the loop at epoch 2 of 10, then the SIGTERM came in the final validation:
    trainer.train() returned without a stop at a batch, so the run is complete (last.pt was stripped)."""
    from trainers.recipe import Recipe
    from trainers.training import run as training_run

    run = create_run_dir(tmp_path, "early")
    write_status(run, status=RunStatus.RUNNING, epoch=2, epochs=10)

    class FinishedTrainer:
        stop_reason = None
        best_record = {"epoch": 1, "name": "fitness", "value": 0.5}

        def add_callback(self, *_):
            pass

        def train(self):
            os.kill(os.getpid(), signal.SIGTERM)  # no batch is left for the stop check: it only sets the flag
            time.sleep(0.05)

        def close_telemetry(self):
            pass

    monkeypatch.setattr(training_run, "make_trainer", lambda *a, **k: FinishedTrainer())
    recipe = Recipe.from_dict({"model": "m.yaml", "data": "d.yaml", "train": {"epochs": 10}})
    assert training_run.execute(run, recipe, resume=False) == training_run.EXIT_OK
    assert read_status(run)["status"] == RunStatus.COMPLETED


# ---- real runs -----------------------------------------------------------------------------------------------------
def slow_val_recipe(tmp_path: Path) -> Path:
    """The demo fine-tune for one epoch, its val split the demo's val images copied VAL_COPIES times."""
    demo = DEMO_DATA.parent
    val = tmp_path / "data" / "val"
    for sub in ("images", "labels"):
        (val / sub).mkdir(parents=True)
    for n in range(VAL_COPIES):
        for image in (demo / "images" / "val").iterdir():
            shutil.copy(image, val / "images" / f"{n}_{image.name}")
            label = demo / "labels" / "val" / f"{image.stem}.txt"
            if label.exists():
                shutil.copy(label, val / "labels" / f"{n}_{image.stem}.txt")
    names = yaml.safe_load(DEMO_DATA.read_text())["names"]
    data = tmp_path / "data" / "data.yaml"
    data.write_text(yaml.safe_dump({"train": str(demo / "images" / "train"), "val": str(val / "images"),
                                    "names": names}))  # fmt: skip
    recipe = tmp_path / "slow-val.yaml"
    train = {"epochs": 1, "imgsz": 64, "batch": 16, "nbs": 16, "workers": 0, "plots": False}
    recipe.write_text(yaml.safe_dump(recipe_for(data, model=str(DEMO_BASE), train=train, per_class_f1={})))
    return recipe


def stop_during_the_final_validation(run_dir: Path) -> dict:
    """Wait for the last epoch to be recorded, stop the run, and return its settled status once it ended."""
    wait_for(lambda: read_status(run_dir).get("epoch") == 1, 240, 0.05, "the last epoch to be recorded")
    t0 = time.monotonic()
    launcher.stop_run(run_dir)  # raises if the run had already ended: then this test proved nothing
    took = time.monotonic() - t0
    status = wait_for(
        lambda: (s := launcher.refresh_status(run_dir))["status"] not in ("starting", "running") and s, 240, 0.2,
        "the run to end",
    )  # fmt: skip
    events = read_events(run_dir / "telemetry.jsonl")[0]
    assert any(e["event"] == "epoch" and e.get("final_eval") for e in events)  # the final validation finished
    print(f"stop sent {took:.2f} s after the last epoch was recorded")
    return status


def assert_completed_not_resumable(run_dir: Path, status: dict) -> None:
    assert status["status"] == RunStatus.COMPLETED, status
    assert read_events(run_dir / "telemetry.jsonl")[0][-1]["status"] == RunStatus.COMPLETED
    assert resume_refusal(run_dir, status) == f"run {run_dir.name!r} is completed; nothing to resume"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_local_run_stopped_during_its_final_validation_is_completed(tmp_path):
    run_dir = launcher.start_run(slow_val_recipe(tmp_path), tmp_path / "runs", name="local")
    status = stop_during_the_final_validation(run_dir)
    assert_completed_not_resumable(run_dir, status)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_ray_run_stopped_during_its_final_validation_is_completed(ray_head, tmp_path):
    run_dir = launcher.start_run(slow_val_recipe(tmp_path), tmp_path / "runs", name="ray", cluster=ray_head, cpus=1)
    status = stop_during_the_final_validation(run_dir)
    assert status.get("stop_requested")  # Ray's stop_job was asked while the job ran
    assert_completed_not_resumable(run_dir, status)
