"""Customization 5: per-layer learning rates (backbone at a ratio of the head), groups split by section and kind."""

from __future__ import annotations

from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import unwrap_model


def backbone_param_ids(model) -> set[int]:
    """ids of the parameters in backbone layers, whose count is read from the model YAML (not hard-coded)."""
    m = unwrap_model(model)
    n = len(m.yaml["backbone"])
    return {id(p) for name, p in m.named_parameters() if name.split(".")[0] == "model" and int(name.split(".")[1]) < n}


class LayerLRMixin:
    """Splits every stock parameter group into a head and a backbone group; backbone lr = ratio x head lr.

    Built on top of the stock ``build_optimizer``, so the optimizer choice ('auto', SGD, AdamW, MuSGD...), the
    weight/bn/bias decay rules and the ``param_group`` tags that warmup and the decay refresh rely on are exactly
    stock. Every parameter is kept, frozen ones included, so layers unfrozen later are trained. Each group gets a
    readable ``name`` ("backbone/weight"). The scheduler scales each group's own initial lr, so the ratio holds
    at every step after warmup.
    """

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        optimizer = super().build_optimizer(
            model, name=name, lr=lr, momentum=momentum, decay=decay, iterations=iterations
        )
        ratio = float(self.wb_cfg("layer_lr").get("backbone_ratio", 0.1))
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
