"""RT-DETR's weighted focal/varifocal terms: equal to a hand computation class by class; all-ones weights are stock.

The hand computation below is written out in plain torch ops from the formulas (focal loss, Lin et al. 2017, in
ultralytics' TF-style form; varifocal loss, Zhang et al. 2021), not from the module's code, so a weight applied to
the wrong class, flattened to its mean or applied twice shows up as a per-class mismatch.
"""

from __future__ import annotations

import pytest
import torch

WEIGHTS = [1.0, 2.0, 3.0]
GAMMA, ALPHA = 1.5, 0.25  # what RTDETRDetectionLoss passes to both terms (DETRLoss defaults)


def synthetic(seed: int = 0, bs: int = 2, nq: int = 7, nc: int = 3):
    """Logits, a one-hot label per query (some queries background) and IoU-like scores, as DETRLoss builds them."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(bs, nq, nc, generator=g) * 2
    targets = torch.randint(0, nc + 1, (bs, nq), generator=g)  # nc = background
    one_hot = torch.nn.functional.one_hot(targets, nc + 1)[..., :nc]  # int64, as DETRLoss._get_loss_class
    iou = torch.rand(bs, nq, 1, generator=g)
    gt_scores = iou * one_hot
    assert one_hot.sum(dim=(0, 1)).min() > 0 and (targets == nc).any()  # every class has positives and negatives
    return logits, one_hot, gt_scores


def log_sigmoid_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p = 1 / (1 + torch.exp(-x))
    return torch.log(p), torch.log(1 - p)


def hand_focal(logits, label, k: int) -> torch.Tensor:
    """Class k's focal term, unweighted: mean over queries, summed over the batch."""
    x, y = logits[..., k], label[..., k].float()
    log_p, log_1p = log_sigmoid_pair(x)
    p = torch.exp(log_p)
    bce = -(y * log_p + (1 - y) * log_1p)
    p_t = y * p + (1 - y) * (1 - p)
    alpha_t = y * ALPHA + (1 - y) * (1 - ALPHA)
    return (bce * (1 - p_t) ** GAMMA * alpha_t).mean(dim=1).sum()


def hand_varifocal(logits, gt_scores, label, k: int) -> torch.Tensor:
    """Class k's varifocal term, unweighted: positives weighted by their IoU target, negatives by alpha * p^gamma."""
    x, q, y = logits[..., k], gt_scores[..., k], label[..., k].float()
    log_p, log_1p = log_sigmoid_pair(x)
    bce = -(q * log_p + (1 - q) * log_1p)  # BCE against the soft (IoU) target
    weight = ALPHA * torch.exp(log_p) ** GAMMA * (1 - y) + q * y
    return (bce * weight).mean(dim=1).sum()


def only(k: int, weights: list[float]) -> torch.Tensor:
    """``weights`` with every class but k zeroed: the module's contribution of class k alone."""
    return torch.tensor([w if i == k else 0.0 for i, w in enumerate(weights)])


def test_weighted_focal_equals_hand_computation_class_by_class():
    from trainers.customizations.weighted_losses import WeightedFocalLoss

    logits, one_hot, _ = synthetic()
    label = one_hot.float()
    per_class = [WeightedFocalLoss(GAMMA, ALPHA, only(k, WEIGHTS))(logits, label) for k in range(3)]
    expected = [WEIGHTS[k] * hand_focal(logits, label, k) for k in range(3)]
    for k in range(3):
        assert per_class[k].item() == pytest.approx(expected[k].item(), rel=1e-5), f"class {k}"
    total = WeightedFocalLoss(GAMMA, ALPHA, torch.tensor(WEIGHTS))(logits, label)
    assert total.item() == pytest.approx(sum(e.item() for e in expected), rel=1e-5)
    assert len({round(e.item() / WEIGHTS[k], 6) for k, e in enumerate(expected)}) == 3  # classes really differ


def test_weighted_varifocal_equals_hand_computation_class_by_class():
    from trainers.customizations.weighted_losses import WeightedVarifocalLoss

    logits, one_hot, gt_scores = synthetic(seed=1)
    per_class = [WeightedVarifocalLoss(GAMMA, ALPHA, only(k, WEIGHTS))(logits, gt_scores, one_hot) for k in range(3)]
    expected = [WEIGHTS[k] * hand_varifocal(logits, gt_scores, one_hot, k) for k in range(3)]
    for k in range(3):
        assert per_class[k].item() == pytest.approx(expected[k].item(), rel=1e-5), f"class {k}"
    total = WeightedVarifocalLoss(GAMMA, ALPHA, torch.tensor(WEIGHTS))(logits, gt_scores, one_hot)
    assert total.item() == pytest.approx(sum(e.item() for e in expected), rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_ones_weights_equal_stock_losses_bit_for_bit(seed):
    from ultralytics.utils.loss import FocalLoss, VarifocalLoss

    from trainers.customizations.weighted_losses import WeightedFocalLoss, WeightedVarifocalLoss

    logits, one_hot, gt_scores = synthetic(seed)
    ones = torch.ones(3)
    assert torch.equal(
        WeightedFocalLoss(GAMMA, ALPHA, ones)(logits, one_hot.float()), FocalLoss(GAMMA, ALPHA)(logits, one_hot.float())
    )
    assert torch.equal(
        WeightedVarifocalLoss(GAMMA, ALPHA, ones)(logits, gt_scores, one_hot),
        VarifocalLoss(GAMMA, ALPHA)(logits, gt_scores, one_hot),
    )


def test_install_rtdetr_weights_puts_the_weights_into_both_terms():
    from ultralytics.nn.tasks import RTDETRDetectionModel

    from trainers.customizations.weighted_losses import WeightedFocalLoss, WeightedVarifocalLoss, install_rtdetr_weights

    model = RTDETRDetectionModel("rtdetr-l.yaml", nc=3, verbose=False)
    model.nc = 3  # set by the trainer's set_model_attributes before set_class_weights
    stock = model.init_criterion()
    install_rtdetr_weights(model, torch.tensor(WEIGHTS))
    fl, vfl = model.criterion.fl, model.criterion.vfl
    assert type(fl) is WeightedFocalLoss and type(vfl) is WeightedVarifocalLoss
    assert fl.class_weights.flatten().tolist() == WEIGHTS and vfl.class_weights.flatten().tolist() == WEIGHTS
    assert (fl.gamma, float(fl.alpha), vfl.gamma, vfl.alpha) == (
        stock.fl.gamma,
        float(stock.fl.alpha),
        stock.vfl.gamma,
        stock.vfl.alpha,
    )
    assert model.criterion.nc == 3 and model.criterion.loss_gain == stock.loss_gain
