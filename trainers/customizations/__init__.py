"""The trainer customizations, one module each, and the table that lists them.

Each module defines its typed settings, its trainer mixin (one or two overridden ultralytics hooks that always call
``super()``, never importing another customization) and its :class:`~trainers.customizations.table.Customization`
row. The rows are registered here, in listing order (how the recipe, the UI and docs/recipe.md show them); the
composition order is each row's ``rank``. Nothing here imports torch at import time.
"""

from __future__ import annotations

from trainers.customizations import (
    best_metric,
    class_weights,
    doctor_stop,
    freeze,
    grad_clip,
    layer_lr,
    per_class_f1,
    sync_bn,
)
from trainers.customizations.table import Customization, Settings, by_rank, keys, register, row, rows, unregister

for _module in (per_class_f1, class_weights, best_metric, freeze, layer_lr, sync_bn, grad_clip, doctor_stop):
    register(_module.ROW)

__all__ = ["Customization", "Settings", "by_rank", "keys", "register", "row", "rows", "unregister"]
