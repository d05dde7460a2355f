"""RT-DETR's classification terms with per-class weights (its loss ignores ``model.class_weights``).

YOLO26 and YOLO11 losses multiply the per-class BCE by ``model.class_weights`` in ultralytics 8.4; RT-DETR's
focal/varifocal terms do not, so the class_weights customization swaps in these subclasses. Each repeats the stock
arithmetic operation for operation and multiplies by the weight last, so all-ones weights reproduce the stock loss
bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.nn.tasks import RTDETRDetectionModel
from ultralytics.utils.loss import FocalLoss, VarifocalLoss
from ultralytics.utils.torch_utils import autocast


class WeightedFocalLoss(FocalLoss):
    """ultralytics' FocalLoss with a per-class factor on the element-wise loss before reduction.

    The stock arithmetic is repeated operation for operation and the weight multiplies last, so all-ones weights
    reproduce the stock loss bit for bit.
    """

    def __init__(self, gamma: float, alpha: float, class_weights: torch.Tensor):
        super().__init__(gamma, alpha)
        self.register_buffer("class_weights", class_weights.float().view(1, 1, -1), persistent=False)

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(pred, label, reduction="none")
        pred_prob = pred.sigmoid()
        p_t = label * pred_prob + (1 - label) * (1 - pred_prob)
        modulating_factor = (1.0 - p_t) ** self.gamma
        loss *= modulating_factor
        if (self.alpha > 0).any():
            self.alpha = self.alpha.to(device=pred.device, dtype=pred.dtype)
            alpha_factor = label * self.alpha + (1 - label) * (1 - self.alpha)
            loss *= alpha_factor
        loss = loss * self.class_weights.to(loss.dtype)
        return loss.mean(1).sum()


class WeightedVarifocalLoss(VarifocalLoss):
    """ultralytics' VarifocalLoss (RT-DETR's classification term) with a per-class factor, stock arithmetic kept."""

    def __init__(self, gamma: float, alpha: float, class_weights: torch.Tensor):
        super().__init__(gamma, alpha)
        self.register_buffer("class_weights", class_weights.float().view(1, 1, -1), persistent=False)

    def forward(self, pred_score: torch.Tensor, gt_score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        weight = self.alpha * pred_score.sigmoid().pow(self.gamma) * (1 - label) + gt_score * label
        with autocast(enabled=False, device=pred_score.device.type):
            loss = (
                F.binary_cross_entropy_with_logits(pred_score.float(), gt_score.float(), reduction="none")
                * weight
                * self.class_weights
            )
            return loss.mean(1).sum()


def install_rtdetr_weights(model: RTDETRDetectionModel, weights: torch.Tensor) -> None:
    """Give an RT-DETR model a criterion whose focal/varifocal terms carry the class weights.

    RT-DETR's loss ignores ``model.class_weights``. The criterion is training-only state: ultralytics strips it
    from every checkpoint it writes, so best.pt/last.pt keep the plain model class and load anywhere.
    """
    criterion = model.init_criterion()
    if criterion.fl is not None:
        criterion.fl = WeightedFocalLoss(criterion.fl.gamma, float(criterion.fl.alpha), weights)
    if criterion.vfl is not None:
        criterion.vfl = WeightedVarifocalLoss(criterion.vfl.gamma, criterion.vfl.alpha, weights)
    model.criterion = criterion
