"""class_weights on YOLO26, YOLO11 and RT-DETR: the classification term is scaled, nothing else; all-ones is stock."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import recipe_for, run_trainer
from tests.customizations.helpers import events


class _FirstBatch(Exception):
    pass


def first_batch_losses(recipe: dict, tmp_path: Path) -> dict[str, float]:
    """Loss items of the very first training batch (same seed, same init, same batch for every recipe)."""
    out = {}

    def grab(trainer):
        out.update({k: float(v) for k, v in trainer.loss_items.items()})
        raise _FirstBatch

    with pytest.raises(_FirstBatch):
        run_trainer(recipe, tmp_path, {"on_train_batch_end": grab})
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "cls_key"),
    [("yolo26n.yaml", "cls_loss"), ("yolo11n.yaml", "cls_loss"), ("rtdetr-l.yaml", "cls_loss")],
)
def test_class_weights_scale_classification_loss(tiny_data, tmp_path, model, cls_key):
    train = {"batch": 4, "nbs": 4} if "rtdetr" in model else {}
    stock = first_batch_losses(recipe_for(tiny_data, model, train), tmp_path / "stock")
    ones = first_batch_losses(
        recipe_for(tiny_data, model, train, class_weights={"weights": [1, 1, 1]}), tmp_path / "ones"
    )
    double = first_batch_losses(
        recipe_for(tiny_data, model, train, class_weights={"weights": [2, 2, 2]}), tmp_path / "x2"
    )
    assert ones == stock  # all-ones weights reproduce the stock loss exactly (bit for bit)
    assert double[cls_key] == pytest.approx(2 * stock[cls_key], rel=1e-5)
    for k in stock:
        if k != cls_key:
            assert double[k] == stock[k], k  # box/l1/giou/dfl terms untouched
    assert stock[cls_key] > 0


@pytest.mark.slow
def test_class_weights_from_counts_are_set_on_model_and_checkpoint(tiny_data, tmp_path):
    from trainers.customizations.class_weights import ClassWeights

    r = recipe_for(tiny_data, class_weights={"scheme": "inverse_frequency", "normalize": "mean"})
    trainer = run_trainer(r, tmp_path)
    counts = [int(c) for c in trainer.get_class_counts()]
    expected = ClassWeights(scheme="inverse_frequency", normalize="mean").from_counts(counts)
    assert trainer.class_weights_used == pytest.approx(expected)
    ckpt = torch.load(tmp_path / "run" / "weights" / "last.pt", weights_only=False)
    assert ckpt["model"].class_weights.float().cpu().tolist() == pytest.approx(
        expected, rel=1e-3
    )  # stripped: model=EMA
    start = events(tmp_path, "run_start")[0]
    assert start["class_weights"] == pytest.approx(expected)
