"""Freeze then unfreeze: layers (the backbone by default) frozen for the first epochs, then trained."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from trainers.customizations.table import Customization, RecipeView, Settings
from trainers.errors import Problem
from trainers.train_args import train_default, train_value

ALWAYS_FROZEN = ".dfl"  # ultralytics keeps the DFL integral layer frozen (YOLO11 has one; YOLO26 has none)
FROZEN_SHARE = 4  # frozen_epochs defaults to 1/FROZEN_SHARE of the run: a guess, and the doctor's own suggestion
NEVER_UNFREEZE = "never unfreeze"  # what null means: the New run form's checkbox label (capitalised there)


def fitted_frozen_epochs(epochs: int) -> int | None:
    """The default ``frozen_epochs`` of a run of ``epochs``: a quarter of it, at least 1 and always below it, so the
    layers unfreeze in every run they can (a 1-epoch run has no later epoch: None, frozen throughout)."""
    return max(1, epochs // FROZEN_SHARE) if epochs > 1 else None


class Freeze(Settings):
    layers: int | list[int] | Literal["backbone"] = Field(
        "backbone", description="'backbone' (its length read from the model YAML), N = layers 0..N-1, or indices"
    )
    frozen_epochs: int | None = Field(
        default_factory=lambda: fitted_frozen_epochs(train_default("epochs") or 100), ge=1,
        description="epochs kept frozen; unfrozen at the start of epoch frozen_epochs+1; null = never. Default: a "
        "quarter of train.epochs (at least 1), a guess",
        json_schema_extra={"none_label": NEVER_UNFREEZE},
    )  # fmt: skip

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: int | list[int] | str) -> int | list[int] | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 (number of leading layers), a list of layer indices or 'backbone', got {v}")
        if isinstance(v, list):
            if not v or any(i < 0 for i in v) or len(set(v)) != len(v):
                raise ValueError(f"must be a non-empty list of distinct layer indices >= 0, got {v}")
        return v

    @classmethod
    def run_defaults(cls, train: Mapping[str, Any]) -> dict[str, Any]:
        epochs = train_value(dict(train), "epochs")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            return {}  # train.epochs is reported by its own check
        return {"frozen_epochs": fitted_frozen_epochs(epochs)}


def check(settings: Freeze, recipe: RecipeView) -> Iterator[Problem]:
    epochs = train_value(recipe.train, "epochs")
    if settings.frozen_epochs is not None and settings.frozen_epochs >= epochs:
        yield Problem(
            "customizations.freeze.frozen_epochs",
            f"customizations.freeze.frozen_epochs ({settings.frozen_epochs}) must be less than train.epochs "
            f"({epochs}) to ever unfreeze",
            f"lower it, or tick '{NEVER_UNFREEZE.capitalize()}' (frozen_epochs: null in a recipe file) to keep the "
            "layers frozen",
        )


def layer_indices(layers: int | list[int] | str, model) -> list[int]:
    """Layer indices to freeze; 'backbone' is read from the model YAML (see :mod:`trainers.customizations.backbone`)."""
    from trainers.customizations.backbone import backbone_length

    if layers == "backbone":
        return list(range(backbone_length(model)))
    if isinstance(layers, int):
        return list(range(layers))
    return sorted(layers)


def rewrap_ddp(model):
    """Re-wrap a DistributedDataParallel model so parameters unfrozen after the wrap are all-reduced.

    DDP registers only parameters with ``requires_grad=True`` at construction; gradients of parameters unfrozen
    later stay local to each rank and the replicas silently diverge. A model that is not DDP is returned as is.
    """
    from torch import nn

    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return model
    # ultralytics turns buffer syncing off at every forward; keep its choice (the flag was renamed in torch 2.13).
    sync = (
        {"forward_sync_buffers": model.forward_sync_buffers}
        if hasattr(model, "forward_sync_buffers")
        else {"broadcast_buffers": model.broadcast_buffers}
    )
    return nn.parallel.DistributedDataParallel(
        model.module,
        device_ids=model.device_ids,
        output_device=model.output_device,
        find_unused_parameters=model.find_unused_parameters,
        static_graph=getattr(model, "static_graph", False),
        **sync,
    )


class FreezeMixin:
    """Freezes ``layers`` at the start and unfreezes them at the start of epoch ``frozen_epochs`` (0-based).

    The start-of-run freeze goes through ultralytics' own ``args.freeze`` (set before ``_setup_train`` reads it),
    so ``.dfl`` handling and the stock optimizer (which includes frozen parameters, so they train once unfrozen)
    stay as they are. The unfreeze is decided from the epoch (``>=``, not ``==``) and from the parameters' state,
    so it is idempotent and still happens when a run resumes past the unfreeze epoch. BatchNorm of frozen layers
    is kept in eval for every ``_BatchNorm`` (stock checks only ``nn.BatchNorm2d`` and misses SyncBatchNorm).
    """

    frozen_layers: list[int]  # set by set_model_attributes, before anything reads it
    _freeze_reported: bool = False  # the freeze event is written once, at the first epoch's start

    def set_model_attributes(self):
        super().set_model_attributes()
        self.frozen_layers = layer_indices(self.recipe.customizations.freeze.layers, self.model)
        self.args.freeze = list(self.frozen_layers)  # read by BaseTrainer._setup_train right after this hook

    def _frozen_prefixes(self) -> list[str]:
        return [f"model.{i}." for i in self.frozen_layers]

    def _should_be_frozen(self) -> bool:
        frozen_epochs = self.recipe.customizations.freeze.frozen_epochs
        return frozen_epochs is None or self.epoch < frozen_epochs

    def run_state(self) -> dict:
        """What this attempt starts with: the frozen layers and until when (a resumed run reports what it found)."""
        frozen_epochs = self.recipe.customizations.freeze.frozen_epochs
        still_frozen = frozen_epochs is None or self.start_epoch < frozen_epochs
        frozen = {"layers": self.frozen_layers, "until_epoch": frozen_epochs} if still_frozen else None
        return {**super().run_state(), "frozen": frozen}

    def _model_train(self):
        from torch.nn.modules.batchnorm import _BatchNorm
        from ultralytics.utils.torch_utils import unwrap_model

        prefixes = self._frozen_prefixes()
        model = unwrap_model(self.model)
        frozen_epochs = self.recipe.customizations.freeze.frozen_epochs
        if not self._should_be_frozen():
            thawed = 0
            for name, p in model.named_parameters():
                if not p.requires_grad and ALWAYS_FROZEN not in name and any(x in name for x in prefixes):
                    p.requires_grad = True
                    thawed += p.numel()
            self.freeze_layer_names = [ALWAYS_FROZEN]  # stock _model_train keeps BN of these names in eval
            if thawed:
                self.model = rewrap_ddp(self.model)
                # Events say when the state changed. A run resumed after the unfreeze epoch thaws again (ultralytics
                # re-freezes args.freeze in every process) but nothing changes: its run_start already says so.
                if self.epoch == frozen_epochs:
                    self.emit_event("unfreeze", epoch=self.epoch + 1, layers=self.frozen_layers, params=thawed)
        elif self.epoch == 0 and not self._freeze_reported:
            self._freeze_reported = True
            frozen = sum(p.numel() for n, p in model.named_parameters() if any(x in n for x in prefixes))
            self.emit_event("freeze", epoch=self.epoch + 1, layers=self.frozen_layers, params=frozen)
        super()._model_train()
        if self._should_be_frozen():
            for name, m in self.model.named_modules():
                if isinstance(m, _BatchNorm) and any(x in name for x in prefixes):
                    m.eval()


ROW = Customization(
    key="freeze",
    rank=40,
    why="sets args.freeze before the stock freeze loop and unfreezes at epoch start, re-wrapping DDP",
    title="Freeze, then unfreeze",
    help="Freeze layers (the backbone by default) for the first epochs, then unfreeze them.",
    settings=Freeze,
    mixin=FreezeMixin,
    check=check,
)
