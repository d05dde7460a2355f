"""freeze: backbone bit-identical while frozen, trained after the unfreeze, also across a resume; .dfl stays frozen."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import recipe_for, run_trainer
from tests.customizations.helpers import changed, events, snapshot


@pytest.mark.slow
@pytest.mark.parametrize("layer_lr", [False, True])
def test_backbone_frozen_bit_identical_then_trains_after_unfreeze(tiny_data, tmp_path, layer_lr):
    backbone = range(11)  # yolo26n: len(model.yaml['backbone']) == 11
    snaps = {}
    extra = {"layer_lr": {"backbone_ratio": 0.5}} if layer_lr else {}
    r = recipe_for(
        tiny_data, train={"epochs": 3, "warmup_epochs": 0}, freeze={"layers": "backbone", "frozen_epochs": 2}, **extra
    )
    cb = {
        "on_train_start": lambda t: snaps.__setitem__("start", snapshot(t, backbone)),
        "on_train_epoch_end": lambda t: snaps.__setitem__(t.epoch, snapshot(t, backbone)),
    }
    trainer = run_trainer(r, tmp_path, cb)
    assert not changed(snaps["start"], snaps[0]) and not changed(snaps["start"], snaps[1])  # frozen: bit-identical
    assert changed(snaps[1], snaps[2])  # unfrozen at the start of epoch 3: trains
    head = snapshot(trainer, range(11, 24))
    assert head  # the head trained all along (sanity: it is not empty)
    ev = events(tmp_path)
    assert [e["event"] for e in ev if e["event"] in {"freeze", "unfreeze"}] == ["freeze", "unfreeze"]
    unfreeze = next(e for e in ev if e["event"] == "unfreeze")
    assert unfreeze["epoch"] == 3 and unfreeze["layers"] == list(backbone)
    frozen_params = [e["params"]["frozen"] for e in ev if e["event"] == "epoch" and not e["final_eval"]]
    assert frozen_params[0] > 0 and frozen_params[1] == frozen_params[0] and frozen_params[2] == 0


@pytest.mark.slow
def test_dfl_stays_frozen_on_yolo11_after_unfreeze(tiny_data, tmp_path):
    r = recipe_for(tiny_data, "yolo11n.yaml", train={"epochs": 2}, freeze={"layers": 3, "frozen_epochs": 1})
    trainer = run_trainer(r, tmp_path)
    params = dict(trainer.model.named_parameters())
    dfl = [n for n in params if ".dfl" in n]
    assert dfl and all(not params[n].requires_grad for n in dfl)
    assert all(params[n].requires_grad for n in params if n.startswith(("model.0.", "model.1.", "model.2.")))


class _Stop(Exception):
    pass


@pytest.mark.slow
def test_unfreeze_happens_when_resuming_past_the_unfreeze_epoch(tiny_data, tmp_path):
    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    r = recipe_for(
        tiny_data,
        train={"epochs": 4, "warmup_epochs": 0},
        freeze={"layers": "backbone", "frozen_epochs": 1},
        layer_lr={"backbone_ratio": 0.5},
    )

    def stop_before_epoch_3(trainer):
        if trainer.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_trainer(r, tmp_path, {"on_train_epoch_start": stop_before_epoch_3})
    last = tmp_path / "run" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["epoch"] == 1  # epochs 1 and 2 finished

    recipe = Recipe.from_dict(r)
    cls = build_trainer_class(recipe, telemetry_path=str(tmp_path / "telemetry.jsonl"))
    trainer = cls(
        overrides={
            **recipe.train,
            "model": str(last),
            "data": recipe.data,
            "resume": str(last),
            "project": str(tmp_path),
            "name": "run",
            "exist_ok": True,
        }
    )
    snaps = {}
    trainer.add_callback("on_train_start", lambda t: snaps.__setitem__("start", snapshot(t, range(11))))
    trainer.add_callback("on_train_epoch_end", lambda t: snaps.__setitem__(t.epoch, snapshot(t, range(11))))
    trainer.train()
    assert trainer.start_epoch == 2
    assert changed(snaps["start"], snaps[2])  # resumed at epoch 3 > unfreeze epoch: backbone trains
    assert all(p.requires_grad for n, p in trainer.model.named_parameters())
    epochs = [e["epoch"] for e in events(tmp_path, "epoch") if not e["final_eval"]]
    assert epochs == [1, 2, 3, 4]


def test_the_unfreeze_rewraps_a_ddp_model_and_only_when_it_thaws(tmp_path):
    """DDP registers only trainable parameters at its wrap: the epoch that thaws must hand back a new wrap (issue 9).

    One gloo rank in this process; the two-rank proof that a stale wrap diverges is tests/test_ddp_unfreeze.py and
    tests/test_ddp_cpu.py (slow).
    """
    import torch.distributed as dist
    from torch import nn

    from trainers.customizations.freeze import FreezeMixin
    from trainers.recipe import Recipe

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))

    class Stock:
        def _model_train(self):
            pass

    class Trainer(FreezeMixin, Stock):
        def __init__(self, model, epoch):
            freeze = {"freeze": {"frozen_epochs": 1}}
            self.recipe = Recipe.model_validate({"model": "yolo26n.yaml", "data": "d.yaml", "customizations": freeze})
            self.model, self.epoch, self.frozen_layers, self.events = model, epoch, [0], []

        def emit_event(self, name, **fields):
            self.events.append(name)

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        net = Net()
        for p in net.model[0].parameters():
            p.requires_grad = False
        wrapped = nn.parallel.DistributedDataParallel(net)
        still_frozen = Trainer(wrapped, epoch=0)
        still_frozen._model_train()
        assert still_frozen.model is wrapped and not net.model[0].weight.requires_grad
        thaws = Trainer(wrapped, epoch=1)
        thaws._model_train()
        assert net.model[0].weight.requires_grad and thaws.events == ["unfreeze"]
        assert isinstance(thaws.model, nn.parallel.DistributedDataParallel) and thaws.model is not wrapped
        assert thaws.model.module is net
        again = Trainer(thaws.model, epoch=2)  # nothing left to thaw: the wrap stays
        again._model_train()
        assert again.model is thaws.model and again.events == []
    finally:
        dist.destroy_process_group()
