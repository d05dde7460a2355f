"""layer_lr: backbone LR = ratio x head LR at every step after warmup, stock tags kept, frozen params included."""

from __future__ import annotations

import pytest

from tests.conftest import recipe_for, run_trainer, step_rows


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["auto", "SGD", "AdamW"])
def test_backbone_lr_is_ratio_of_head_lr_every_step_after_warmup(tiny_data, tmp_path, optimizer):
    ratio = 0.25
    r = recipe_for(
        tiny_data,
        train={"epochs": 3, "warmup_epochs": 1, "optimizer": optimizer, "lr0": 0.01},
        layer_lr={"backbone_ratio": ratio},
        freeze={"layers": "backbone", "frozen_epochs": 1},
    )
    trainer = run_trainer(r, tmp_path)
    groups = trainer.optimizer.param_groups
    names = [g["name"] for g in groups]
    assert names == ["head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias"]
    assert [g["param_group"] for g in groups] == ["weight", "bn", "bias"] * 2  # stock tags kept for warmup
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(trainer.model.parameters()))  # frozen ones included
    steps = step_rows(tmp_path)
    nb = len(trainer.train_loader)
    after_warmup = [s for s in steps if s["step"] > nb]  # warmup_epochs=1 -> the first nb steps
    assert len(after_warmup) == 2 * nb
    for s in after_warmup:
        for kind in ("weight", "bn", "bias"):
            assert s["lr"][f"backbone/{kind}"] == pytest.approx(ratio * s["lr"][f"head/{kind}"], rel=1e-12)
    assert {s["epoch"] for s in steps} == {1, 2, 3}
