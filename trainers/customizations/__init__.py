"""The seven trainer customizations, one mixin per module, plus the base mixin every composed trainer gets.

Each mixin overrides one Ultralytics hook, always calls ``super()``, reads its settings from the recipe carried on
the class (``self.wb_cfg(name)``) and never imports another customization. ``trainers.compose`` puts them in one
written-down order.
"""

from __future__ import annotations

from trainers.customizations.best_metric import BestMetricMixin
from trainers.customizations.class_weights import ClassWeightsMixin
from trainers.customizations.freeze import FreezeMixin
from trainers.customizations.grad_clip import GradClipMixin
from trainers.customizations.layer_lr import LayerLRMixin
from trainers.customizations.per_class_f1 import PerClassF1Mixin
from trainers.customizations.sync_bn import SyncBNMixin

MIXINS = {
    "per_class_f1": PerClassF1Mixin,
    "class_weights": ClassWeightsMixin,
    "best_metric": BestMetricMixin,
    "freeze": FreezeMixin,
    "layer_lr": LayerLRMixin,
    "sync_bn": SyncBNMixin,
    "grad_clip": GradClipMixin,
}

__all__ = ["MIXINS"]
