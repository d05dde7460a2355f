"""Compose a trainer class from a recipe: one written-down order, the right Ultralytics base.

Order (outermost first in the MRO; each mixin calls ``super()``, so an outer mixin sees what inner ones did):

1. ``TelemetryMixin`` - outermost: records what every other mixin produced.
2. ``best_metric``   - must see the metrics after ``per_class_f1`` added mean F1, and owns the returned fitness.
3. ``per_class_f1``  - adds F1 to the epoch metrics (so it reaches results.csv and best_metric).
4. ``class_weights`` - sets weights after the train loader exists, before the EMA copy.
5. ``freeze``        - sets ``args.freeze`` before the stock freeze loop; unfreezes at epoch start.
6. ``layer_lr``      - re-groups the stock optimizer; includes frozen parameters so unfreezing trains them.
7. ``sync_bn``       - converts BN before DDP wraps the model; the freeze mixin keeps frozen SyncBN in eval.
8. ``grad_clip``     - supplies the threshold to the measured optimizer step of the base mixin.
9. ``WorkbenchBase`` - innermost: recipe access, measured clipping, recipe recorded on the model.

The class is built with ``type()`` and carries its settings as class attributes, which survive ultralytics'
cloudpickle of the trainer class for multi-GPU workers; nothing is registered twice.
"""

from __future__ import annotations

from typing import Any

from trainers.recipe import Recipe

# Composition order for the customizations (outermost first); differs from the recipe's listing order on purpose.
ORDER = ("best_metric", "per_class_f1", "class_weights", "freeze", "layer_lr", "sync_bn", "grad_clip")


def base_trainer(family: str) -> type:
    """The Ultralytics trainer class for a model family ('yolo' or 'rtdetr')."""
    if family == "rtdetr":
        from ultralytics.models.rtdetr.train import RTDETRTrainer

        return RTDETRTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer

    return DetectionTrainer


def build_trainer_class(
    recipe: Recipe | dict[str, Any],
    family: str | None = None,
    *,
    telemetry_path: str | None = None,
    run_dir: str | None = None,
    step_stride: int = 1,
    step_offset: int = 0,
) -> type:
    """Build the trainer class for ``recipe``.

    Args:
        recipe: The recipe (or its dict form).
        family: 'yolo' or 'rtdetr'; defaults to what the recipe's model name says ('yolo' if it cannot tell).
        telemetry_path: JSON-lines file for events; None disables telemetry.
        run_dir: Run directory whose status.json is updated each epoch.
        step_stride: Log every n-th optimizer step.
        step_offset: Steps already logged by an earlier process of the same run (resume).
    """
    from trainers.customizations import MIXINS
    from trainers.customizations.base import WorkbenchBase
    from trainers.trainer_telemetry import TelemetryMixin

    recipe = recipe if isinstance(recipe, Recipe) else Recipe.model_validate(recipe)
    family = family or recipe.family or "yolo"
    base = base_trainer(family)
    enabled = set(recipe.customizations.enabled())
    mixins = [MIXINS[name] for name in ORDER if name in enabled]
    tag = "".join(name.title().replace("_", "") for name in ORDER if name in enabled) or "Stock"
    attrs = {
        "__module__": __name__,
        "__doc__": f"{base.__name__} composed with: {', '.join(n for n in ORDER if n in enabled) or 'nothing'}.",
        "wb_recipe": recipe.to_dict(),
        "wb_family": family,
        "wb_telemetry_path": telemetry_path,
        "wb_run_dir": run_dir,
        "wb_step_stride": int(step_stride),
        "wb_step_offset": int(step_offset),
    }
    return type(f"Workbench{tag}{base.__name__}", (TelemetryMixin, *mixins, WorkbenchBase, base), attrs)
