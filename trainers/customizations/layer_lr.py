"""Per-layer learning rates: the backbone at a ratio of the head's LR, groups split by section and kind."""

from __future__ import annotations

from pydantic import Field

from trainers.customizations.backbone import backbone_param_names
from trainers.customizations.table import Customization, Settings


class LayerLR(Settings):
    backbone_ratio: float = Field(
        0.1, gt=0, le=100, title="Backbone LR ratio",
        description="backbone lr = this x head lr at every step (1 = stock, 0.1 = ten times slower). Default 0.1, a "
        "guess: a common fine-tuning ratio; the doctor suggests a lower one when the unfreeze jolts the loss",
    )  # fmt: skip


def backbone_param_ids(model) -> set[int]:
    """ids of the backbone's parameters (layers ``0 .. backbone_length - 1``, see
    :mod:`trainers.customizations.backbone`)."""
    from ultralytics.utils.torch_utils import unwrap_model

    names = set(backbone_param_names(model))
    return {id(p) for name, p in unwrap_model(model).named_parameters() if name in names}


class LayerLRMixin:
    """Splits every stock parameter group into a head and a backbone group; backbone lr = ratio x head lr.

    Built on top of the stock ``build_optimizer``, so the optimizer choice ('auto', SGD, AdamW, MuSGD...), the
    weight/bn/bias decay rules and the ``param_group`` tags that warmup and the decay refresh rely on are exactly
    stock. Every parameter is kept, frozen ones included, so layers unfrozen later are trained. Each group gets a
    readable ``name`` ("backbone/weight"). The scheduler scales each group's own initial lr, so the ratio holds
    at every step after warmup.
    """

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        from ultralytics.utils import LOGGER

        optimizer = super().build_optimizer(
            model, name=name, lr=lr, momentum=momentum, decay=decay, iterations=iterations
        )
        ratio = self.recipe.customizations.layer_lr.backbone_ratio
        backbone = backbone_param_ids(model)
        stock_groups, optimizer.param_groups = optimizer.param_groups, []
        for section in ("head", "backbone"):
            for group in stock_groups:
                params = [p for p in group["params"] if (id(p) in backbone) == (section == "backbone")]
                if not params:
                    continue
                tag = group.get("param_group", "params")
                new = {**group, "params": params, "name": f"{section}/{tag}"}
                if section == "backbone":
                    new["lr"] = group["lr"] * ratio
                optimizer.param_groups.append(new)
        counts = ", ".join(f"{g['name']}={len(g['params'])} (lr={g['lr']:.3g})" for g in optimizer.param_groups)
        LOGGER.info(f"layer_lr: backbone_ratio={ratio}: {counts}")
        return optimizer


ROW = Customization(
    key="layer_lr",
    rank=50,
    why="re-groups the stock optimizer and keeps frozen parameters in it, so the backbone trains once unfrozen",
    title="Per-layer learning rate",
    help="Train the backbone at a fraction of the head's learning rate.",
    settings=LayerLR,
    mixin=LayerLRMixin,
)
