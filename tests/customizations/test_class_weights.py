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


# ---- RT-DETR, quick: the first step's loss on a synthetic batch, class by class (no training) -----------------------
RTDETR_NAMES = ["disc", "block", "ring"]


class _TrainerAroundSetClassWeights:
    """Stands in for the ultralytics trainer around ``set_class_weights``: the model, its device, data and recipe."""

    def __init__(self, model, weights: list[float]):
        from trainers.recipe import Recipe

        self.model, self.device = model, torch.device("cpu")
        self.data = {"names": dict(enumerate(RTDETR_NAMES))}
        self.recipe = Recipe.from_dict(
            {"model": "rtdetr-l.yaml", "data": "d.yaml", "customizations": {"class_weights": {"weights": weights}}}
        )

    def set_class_weights(self):  # RTDETRTrainer's own (stock: does nothing without cls_pw)
        pass

    def get_class_counts(self):
        raise AssertionError("explicit weights need no label counts")


class _KeepTerms(torch.nn.Module):
    """Wraps a criterion so the full loss dict (every class/box/GIoU term, aux and denoising too) can be read back."""

    def __init__(self, criterion):
        super().__init__()
        self.inner, self.terms = criterion, None

    def forward(self, *args, **kwargs):
        self.terms = self.inner(*args, **kwargs)
        return self.terms


class _OneClass(torch.nn.Module):
    """A stock focal/varifocal term restricted to class k's column: class k's part of the stock loss.

    Both terms reduce as ``.mean(1).sum()`` over (batch, query, class), so the stock loss is exactly the sum of these
    per-class parts (positives and negatives of that class alike); the normalisation and gain applied outside are
    the same for every class.
    """

    def __init__(self, stock, k: int):
        super().__init__()
        self.stock, self.k = stock, k

    def forward(self, *tensors):
        return self.stock(*(t[..., self.k : self.k + 1] for t in tensors))


@pytest.fixture(scope="module")
def rtdetr_first_step():
    """An RT-DETR model from rtdetr-l.yaml and its training-mode predictions on two synthetic batches.

    'class 2 only': three boxes, all class 2, so only class 2 has positives (varifocal path, with denoising queries);
    'no boxes': the focal path (RT-DETR uses focal when a batch has no targets).
    """
    from ultralytics.nn.tasks import RTDETRDetectionModel

    torch.manual_seed(0)
    model = RTDETRDetectionModel("rtdetr-l.yaml", nc=3, verbose=False).train()
    model.nc = 3  # set_model_attributes does this before set_class_weights
    img = torch.rand(2, 3, 64, 64)
    batches = {
        "class 2 only": {
            "img": img,
            "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
            "cls": torch.tensor([[2.0], [2.0], [2.0]]),
            "bboxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.2], [0.5, 0.5, 0.4, 0.4]]),
        },
        "no boxes": {"img": img, "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)},
    }
    preds = {}
    for name, b in batches.items():
        targets = {  # as RTDETRDetectionModel.loss builds them for the denoising queries
            "cls": b["cls"].long().view(-1),
            "bboxes": b["bboxes"],
            "batch_idx": b["batch_idx"].long(),
            "gt_groups": [int((b["batch_idx"] == i).sum()) for i in range(2)],
        }
        with torch.no_grad():
            preds[name] = model.predict(img, batch=targets)
    return model, batches, preds


def rtdetr_terms(model, batch, preds, criterion) -> dict[str, torch.Tensor]:
    """Every term of RT-DETR's loss with ``criterion``, through the model's own ``loss`` (what a training step runs)."""
    model.criterion = _KeepTerms(criterion)
    with torch.no_grad():
        model.loss(batch, preds)
    return model.criterion.terms


@pytest.mark.parametrize("case", ["class 2 only", "no boxes"])
def test_rtdetr_class_weights_scale_class_k_by_w_k_and_no_other(rtdetr_first_step, case):
    from trainers.customizations.class_weights import ClassWeightsMixin

    model, batches, all_preds = rtdetr_first_step
    batch, preds = batches[case], all_preds[case]
    trainer_cls = type("T", (ClassWeightsMixin, _TrainerAroundSetClassWeights), {})

    def weighted(weights):
        trainer = trainer_cls(model, weights)
        trainer.set_class_weights()  # the customization's own path: model.class_weights + install_rtdetr_weights
        assert trainer.class_weights_used == weights and model.class_weights.tolist() == weights
        return rtdetr_terms(model, batch, preds, model.criterion)

    stock = rtdetr_terms(model, batch, preds, model.init_criterion())
    per_class = []
    for k in range(3):
        criterion = model.init_criterion()
        criterion.fl, criterion.vfl = _OneClass(criterion.fl, k), _OneClass(criterion.vfl, k)
        per_class.append(rtdetr_terms(model, batch, preds, criterion))
    cls_terms = [t for t in stock if t.startswith("loss_class")]
    other_terms = [t for t in stock if t not in cls_terms]
    assert len(cls_terms) == 4 and len(other_terms) == 8  # main, aux, denoising and denoising aux
    for t in cls_terms:  # the per-class parts add up to the stock term
        assert sum(p[t] for p in per_class).item() == pytest.approx(stock[t].item(), rel=1e-5, abs=1e-9), t

    ones = weighted([1.0, 1.0, 1.0])
    assert all(torch.equal(ones[t], stock[t]) for t in stock)  # all-ones: stock, bit for bit

    for weights in ([1.0, 1.0, 5.0], [5.0, 1.0, 1.0], [1.0, 2.0, 3.0]):
        got = weighted(weights)
        for t in cls_terms:
            expected = sum(w * p[t] for w, p in zip(weights, per_class, strict=True))
            assert got[t].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-9), (weights, t)
        for t in other_terms:
            assert torch.equal(got[t], stock[t]), (weights, t)  # box, L1 and GIoU terms untouched

    main = [p["loss_class"].item() for p in per_class]
    assert all(m > 0 for m in main)  # every class has a term (its negatives), so a weight on it always counts
    if case == "class 2 only":
        # class 2 alone has positives (on top of its negatives), so its part is the largest; [1, 1, 5] and [5, 1, 1]
        # therefore change the loss by different amounts, which a weight flattened to its mean cannot do
        assert main[2] > max(main[0], main[1])
