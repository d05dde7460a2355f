"""Compose a trainer class from a recipe: the right Ultralytics base, the enabled customizations in one order.

The MRO, outermost first, is::

    TelemetryMixin  ->  EvidenceMixin  ->  customizations by rank (trainers/customizations, each row's `rank` and
                    `why`)  ->  WorkbenchBase  ->  DetectionTrainer | RTDETRTrainer

``TelemetryMixin`` is outermost so it records what every customization produced (the ``validation`` record with its
per-class table and chosen metric, group names); ``EvidenceMixin`` keeps each validation's predictions and confusions
(``<run>/evidence/``, written when the telemetry logs the epoch); ``WorkbenchBase`` is innermost, right above
ultralytics: the recipe, the records the mixins share, stock clipping measured, atomic and portable checkpoints. Each
mixin calls ``super()``, so an outer one sees what the inner ones did. docs/recipe.md prints the table's ranks with
their reasons.

The class is built with ``type()`` and carries its settings as class attributes (the typed recipe among them), which
survive ultralytics' cloudpickle of the trainer class for multi-GPU workers; nothing is registered twice. The doctor's
live checks are one of them (``live_doctor``): the ``doctor_stop`` customization sits below the doctor in the layers, so
the training layer hands them to it here (a class of an importable module, so it pickles by reference).
"""

from __future__ import annotations

from typing import Any

from trainers import customizations as table
from trainers.recipe import Recipe


def base_trainer(family: str) -> type:
    """The Ultralytics trainer class for a model family ('yolo' or 'rtdetr')."""
    if family == "rtdetr":
        from ultralytics.models.rtdetr.train import RTDETRTrainer

        return RTDETRTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer

    return DetectionTrainer


def composed_rows(recipe: Recipe) -> list[table.Customization]:
    """The table rows of the recipe's enabled customizations, in composition order (outermost first)."""
    return [row for row in table.by_rank() if row.key in recipe.customizations]


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
    from trainers.doctor.live import LiveDoctor
    from trainers.training.base import WorkbenchBase
    from trainers.training.evidence_mixin import EvidenceMixin
    from trainers.training.telemetry_mixin import TelemetryMixin

    recipe = recipe if isinstance(recipe, Recipe) else Recipe.from_dict(recipe)
    family = family or recipe.family or "yolo"
    base = base_trainer(family)
    rows = composed_rows(recipe)
    tag = "".join(row.key.title().replace("_", "") for row in rows) or "Stock"
    attrs = {
        "__module__": __name__,
        "__doc__": f"{base.__name__} composed with: {', '.join(r.key for r in rows) or 'nothing'}.",
        "recipe": recipe,
        "family": family,
        "telemetry_path": telemetry_path,
        "run_dir": run_dir,
        "step_stride": int(step_stride),
        "step_offset": int(step_offset),
        "live_doctor": LiveDoctor,
    }
    mixins = [row.mixin for row in rows]
    if recipe.notify is not None:  # alerts: outside the customizations, so it sees each check after theirs
        from trainers.training.notify_mixin import NotifyMixin

        mixins.insert(0, NotifyMixin)
    return type(f"Workbench{tag}{base.__name__}", (TelemetryMixin, EvidenceMixin, *mixins, WorkbenchBase, base), attrs)
