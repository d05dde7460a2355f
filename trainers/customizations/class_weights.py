"""Customization 2: class weights in the classification loss, on YOLO26, YOLO11 and RT-DETR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.nn.tasks import RTDETRDetectionModel
from ultralytics.utils import LOGGER
from ultralytics.utils.loss import FocalLoss, VarifocalLoss
from ultralytics.utils.torch_utils import autocast, unwrap_model

from trainers.errors import RecipeError


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


class ClassWeightsMixin:
    """Sets per-class weights on the model after the train dataloader exists (ultralytics' ``set_class_weights``).

    YOLO26 (end-to-end loss) and YOLO11 (``v8DetectionLoss``) multiply the per-class BCE by ``model.class_weights``
    in ultralytics 8.4, so setting that tensor is the whole job and nothing is weighted twice (the recipe rejects
    ``train.cls_pw`` together with this block). RT-DETR gets weighted focal/varifocal terms instead. The tensor is
    a plain attribute of the stock model class, so it is saved in checkpoints and copied to the EMA.
    """

    def set_class_weights(self):
        super().set_class_weights()
        cfg = self.wb_cfg("class_weights")
        nc = self.data["nc"]
        if cfg.get("weights") is not None:
            weights = [float(w) for w in cfg["weights"]]
            if len(weights) != nc:
                raise RecipeError(
                    f"customizations.class_weights.weights has {len(weights)} values but the dataset has {nc} "
                    f"classes ({', '.join(map(str, self.data['names'].values()))}); give one weight per class"
                )
        else:
            from trainers.weights import compute_weights

            counts = [int(c) for c in self.get_class_counts()]
            weights = compute_weights(
                counts,
                cfg.get("scheme", "inverse_frequency"),
                power=cfg.get("power", 0.5),
                beta=cfg.get("beta", 0.999),
                cap=cfg.get("cap"),
                normalize=cfg.get("normalize", "mean"),
                zero_count=cfg.get("zero_count", "max"),
            )
        model = unwrap_model(self.model)
        tensor = torch.tensor(weights, dtype=torch.float32, device=self.device)
        model.class_weights = tensor
        if isinstance(model, RTDETRDetectionModel):
            install_rtdetr_weights(model, tensor)
        self.wb_class_weights = weights
        LOGGER.info(
            f"class_weights: {dict(zip(self.data['names'].values(), [round(w, 3) for w in weights], strict=True))}"
        )
