"""The base mixin of every composed trainer: checkpoints written atomically."""

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
    from trainers.trainer_base import WorkbenchBase

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
