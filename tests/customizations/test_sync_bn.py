"""sync_bn: BatchNorm -> SyncBatchNorm exactly when world size > 1 (simulated), frozen SyncBN kept in eval.

No training: the model is built from its YAML the way _setup_train does, so this runs in the quick suite.
"""

from __future__ import annotations

import pytest

from tests.conftest import recipe_for


def _setup_model(trainer):
    """Build the model the way _setup_train does up to set_model_attributes."""
    trainer.setup_model()
    trainer.model = trainer.model.to(trainer.device)


@pytest.mark.parametrize("world_size", [0, 1, 2, 4])
def test_sync_bn_conversion_exactly_when_world_size_above_one(tiny_data, tmp_path, world_size):
    from torch import nn

    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    r = Recipe.from_dict(
        recipe_for(tiny_data, train={"epochs": 3}, sync_bn={}, freeze={"layers": "backbone", "frozen_epochs": 1})
    )
    trainer = build_trainer_class(r)(
        overrides={**r.train, "model": r.model, "data": r.data, "project": str(tmp_path), "name": "run"}
    )
    _setup_model(trainer)
    trainer.world_size = world_size  # simulated: the conversion and the BN modes do not need real ranks
    trainer.set_model_attributes()
    sync = [m for m in trainer.model.modules() if isinstance(m, nn.SyncBatchNorm)]
    plain = [m for m in trainer.model.modules() if type(m) is nn.BatchNorm2d]
    if world_size > 1:
        assert sync and not plain
        trainer.freeze_layer_names = [f"model.{i}." for i in range(11)] + [".dfl"]
        trainer.epoch = 0
        trainer._model_train()
        for name, m in trainer.model.named_modules():
            if isinstance(m, nn.SyncBatchNorm):
                frozen = any(name.startswith(f"model.{i}.") for i in range(11))
                assert m.training is (not frozen), name  # frozen SyncBN in eval, the rest training
    else:
        assert not sync and plain
