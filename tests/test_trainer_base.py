"""The base mixin of every composed trainer: checkpoints written atomically; status.json off the training thread."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import recipe_for, run_trainer


@pytest.mark.slow
def test_failed_checkpoint_write_keeps_the_previous_epochs_last_pt(tiny_data, tmp_path, monkeypatch):
    import errno
    import pathlib

    real_write = pathlib.Path.write_bytes
    writes = []

    def full_disk_on_epoch_2(self, data):
        writes.append(self.name)
        if len(writes) > 2:  # epoch 1 writes last + best; the next write dies half-way like a full disk
            real_write(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk_on_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        run_trainer(recipe_for(tiny_data, train={"epochs": 3}), tmp_path)
    monkeypatch.undo()
    weights = tmp_path / "run" / "weights"
    assert writes[:2] == [".last.pt.partial", ".best.pt.partial"]  # never written in place
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]  # no partial file left behind
    ckpt = torch.load(weights / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 0  # epoch 1's checkpoint, intact
    from ultralytics import YOLO

    assert YOLO(str(weights / "last.pt")).model.names == {0: "disc", 1: "block", 2: "ring"}


class _FakeStockSave:
    """Stands in for ultralytics' save_model: writes last.pt (and best.pt) in place, the way stock does."""

    def __init__(self, folder):
        self.last, self.best = folder / "last.pt", folder / "best.pt"
        self.callbacks = {"on_model_save": []}
        self.epoch = 0

    def save_model(self):
        data = f"epoch {self.epoch}".encode()
        self.last.write_bytes(data)
        self.best.write_bytes(data)
        return True


def _fake_trainer(tmp_path):
    from trainers.training.base import WorkbenchBase

    return type("Fake", (WorkbenchBase, _FakeStockSave), {})(tmp_path)


def test_checkpoint_renames_finish_before_the_next_save_and_raise_there(tmp_path, monkeypatch):
    import os

    trainer = _fake_trainer(tmp_path)
    trainer.save_model()
    trainer.finish_checkpoints()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
    assert (tmp_path / "last.pt").read_bytes() == b"epoch 0"

    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError(5, "Input/output error")

    trainer.epoch = 1
    monkeypatch.setattr(os, "replace", failing_replace)
    trainer.save_model()  # the renames fail in the helper thread ...
    monkeypatch.setattr(os, "replace", real_replace)
    with pytest.raises(OSError, match="Input/output error"):  # ... and the error surfaces at the next save
        trainer.save_model()
    assert (tmp_path / "last.pt").read_bytes() == b"epoch 0"  # the previous checkpoint is whole


def test_checkpoints_are_in_place_when_on_model_save_has_a_listener(tmp_path):
    trainer = _fake_trainer(tmp_path)
    seen = []
    trainer.callbacks["on_model_save"].append(lambda t: seen.append(t.last.read_bytes()))
    trainer.save_model()
    assert getattr(trainer, "_rename_thread", None) is None  # renamed at once, not in the helper thread
    assert (tmp_path / "last.pt").read_bytes() == b"epoch 0" and not list(tmp_path.glob(".*.partial"))


@pytest.mark.slow  # trains the tiny model (found by a probe on BaseTrainer._do_train over the quick loop)
def test_epoch_status_is_written_off_the_training_thread_and_lands_before_the_final_status(
    tiny_data, tmp_path, monkeypatch
):
    """Per-epoch status.json updates are the helper thread's (an fsync after a checkpoint save waits for the
    checkpoints' data: 40-120 ms an epoch on ext4); the run's end waits for the one in flight, so a slow progress write
    can never land after, and undo, the final status."""
    import threading

    import yaml

    import trainers.runs.status as run_status
    from trainers.runs import folder as run_folder
    from trainers.training.run import train_run

    real, real_end, calls, ended = run_status.write_status, run_folder.end_run, [], threading.Event()

    def slow_write(run_dir, **fields):
        thread = threading.current_thread().name
        calls.append((thread, dict(fields)))
        if thread == "status-writer" and fields.get("epoch") == 2:
            ended.wait(2.0)  # a slow disk: the last progress write is still in flight when the run's end comes
        return real(run_dir, **fields)

    def end_run(*args, **kwargs):
        try:
            return real_end(*args, **kwargs)
        finally:
            ended.set()

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_for(tiny_data, train={"epochs": 2}, per_class_f1={})))
    monkeypatch.setattr(run_status, "write_status", slow_write)
    monkeypatch.setattr(run_folder, "end_run", end_run)
    assert train_run(recipe, tmp_path / "runs", name="r") == 0
    for thread in threading.enumerate():  # a write the run did not wait for would land now
        if thread.name == "status-writer":
            thread.join(10)
    progress = [(thread, f) for thread, f in calls if "epoch" in f and f.get("status") == "running"]
    epochs = [f["epoch"] for _, f in progress if f["epoch"]]
    assert epochs == [1, 2]
    assert {thread for thread, f in progress if f["epoch"]} == {"status-writer"}  # never the training thread
    status = run_status.read_status(tmp_path / "runs" / "r")
    assert status["status"] == "completed" and status["epoch"] == 2
