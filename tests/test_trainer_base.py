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
