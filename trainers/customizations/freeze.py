"""Customization 4: freeze layers (the backbone by default) for N epochs, then unfreeze them."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from ultralytics.utils.torch_utils import unwrap_model

ALWAYS_FROZEN = ".dfl"  # ultralytics keeps the DFL integral layer frozen (YOLO11 has one; YOLO26 has none)


def layer_indices(layers: int | list[int] | str, model: nn.Module) -> list[int]:
    """Layer indices to freeze; 'backbone' is read from the model YAML (11 layers for yolo26n/yolo11n, not 10)."""
    if layers == "backbone":
        return list(range(len(unwrap_model(model).yaml["backbone"])))
    if isinstance(layers, int):
        return list(range(layers))
    return sorted(layers)


def rewrap_ddp(model: nn.Module) -> nn.Module:
    """Re-wrap a DistributedDataParallel model so parameters unfrozen after the wrap are all-reduced.

    DDP registers only parameters with ``requires_grad=True`` at construction; gradients of parameters unfrozen
    later stay local to each rank and the replicas silently diverge. A model that is not DDP is returned as is.
    """
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return model
    return nn.parallel.DistributedDataParallel(
        model.module,
        device_ids=model.device_ids,
        output_device=model.output_device,
        find_unused_parameters=model.find_unused_parameters,
        static_graph=getattr(model, "static_graph", False),
    )


class FreezeMixin:
    """Freezes ``layers`` at the start and unfreezes them at the start of epoch ``frozen_epochs`` (0-based).

    The start-of-run freeze goes through ultralytics' own ``args.freeze`` (set before ``_setup_train`` reads it),
    so ``.dfl`` handling and the stock optimizer (which includes frozen parameters, so they train once unfrozen)
    stay as they are. The unfreeze is decided from the epoch (``>=``, not ``==``) and from the parameters' state,
    so it is idempotent and still happens when a run resumes past the unfreeze epoch. BatchNorm of frozen layers
    is kept in eval for every ``_BatchNorm`` (stock checks only ``nn.BatchNorm2d`` and misses SyncBatchNorm).
    """

    def set_model_attributes(self):
        super().set_model_attributes()
        self.wb_frozen_layers = layer_indices(self.wb_cfg("freeze")["layers"], self.model)
        self.args.freeze = list(self.wb_frozen_layers)  # read by BaseTrainer._setup_train right after this hook

    def _wb_frozen_prefixes(self) -> list[str]:
        return [f"model.{i}." for i in self.wb_frozen_layers]

    def _wb_should_be_frozen(self) -> bool:
        frozen_epochs = self.wb_cfg("freeze").get("frozen_epochs")
        return frozen_epochs is None or self.epoch < frozen_epochs

    def _model_train(self):
        prefixes = self._wb_frozen_prefixes()
        model = unwrap_model(self.model)
        if not self._wb_should_be_frozen():
            thawed = 0
            for name, p in model.named_parameters():
                if not p.requires_grad and ALWAYS_FROZEN not in name and any(x in name for x in prefixes):
                    p.requires_grad = True
                    thawed += p.numel()
            self.freeze_layer_names = [ALWAYS_FROZEN]  # stock _model_train keeps BN of these names in eval
            if thawed:
                self.model = rewrap_ddp(self.model)
                self.wb_event("unfreeze", epoch=self.epoch + 1, layers=self.wb_frozen_layers, params=thawed)
        elif not getattr(self, "_wb_freeze_reported", False):
            self._wb_freeze_reported = True
            frozen = sum(p.numel() for n, p in model.named_parameters() if any(x in n for x in prefixes))
            self.wb_event("freeze", epoch=self.epoch + 1, layers=self.wb_frozen_layers, params=frozen)
        super()._model_train()
        if self._wb_should_be_frozen():
            for name, m in self.model.named_modules():
                if isinstance(m, _BatchNorm) and any(x in name for x in prefixes):
                    m.eval()
