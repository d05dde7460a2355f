"""Best-by-metric: best.pt (and early stopping) chosen by another validation metric, higher or lower is better."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from trainers.customizations.records import ChosenMetric
from trainers.customizations.table import Customization, RecipeView, Settings
from trainers.errors import Problem
from trainers.metrics import F1, F1_KEY, FITNESS, SELECTABLE, VAL_LOSSES, find_metric, mean_f1

METRIC_NAMES = SELECTABLE  # the catalogue's choices (trainers.metrics: each row's name, key and direction)


def direction(metric: str, mode: str | None) -> str:
    """'max' or 'min': ``mode`` when given, else the catalogue's direction (min for validation losses)."""
    row = find_metric(metric)
    return mode or (row.direction if row is not None else "max")


class BestMetric(Settings):
    metric: str = Field(
        FITNESS.name,
        description="the validation metric that picks best.pt and drives early stopping",
        json_schema_extra={"choices": list(METRIC_NAMES)},
    )
    mode: Literal["max", "min"] | None = Field(
        None, title="Direction", description="max: higher is better, min: lower is better; null = auto",
        json_schema_extra={"none_label": "auto (min for val/* losses, else max)"},
    )  # fmt: skip

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in METRIC_NAMES:
            raise ValueError(f"unknown metric '{v}'; allowed: {', '.join(METRIC_NAMES)}")
        return v

    @property
    def direction(self) -> str:
        """'max' or 'min', with the default resolved."""
        return direction(self.metric, self.mode)


def check(settings: BestMetric, recipe: RecipeView) -> Iterator[Problem]:
    family = recipe.family
    if settings.metric.startswith("val/") and family is not None and settings.metric not in VAL_LOSSES[family]:
        yield Problem(
            "customizations.best_metric.metric",
            f"customizations.best_metric.metric: '{settings.metric}' is not a {family} loss",
            f"allowed losses: {', '.join(VAL_LOSSES[family])}",
        )


def better(score: float, previous_best: float | None) -> float:
    """The best score so far on the higher-is-better scale (``previous_best`` is None before the first epoch)."""
    return score if previous_best is None or score > previous_best else previous_best


class BestMetricMixin:
    """Returns the chosen metric as the fitness, on a higher-is-better scale (losses are negated).

    The guide's recipe compares against ``best_fitness`` *after* ``BaseTrainer.validate()`` has already raised it
    with the stock mAP fitness, so a metric that sits below mAP50-95 (or any loss) never equals ``best_fitness``
    and best.pt is written at the wrong epoch or never. Here the previous best (on our scale) is remembered
    before the parent runs and restored, then compared with the chosen metric. ultralytics writes best.pt when
    ``best_fitness == fitness`` and feeds ``fitness`` to early stopping, so both follow the same number. The chosen
    metric and its value go into the trainer's ``validation`` record (``chosen``) for the telemetry.
    """

    def validate(self):
        previous_best = self.best_fitness
        metrics, fitness = super().validate()
        if metrics is None:
            return metrics, fitness
        settings = self.recipe.customizations.best_metric
        value = self.metric_value(settings.metric, metrics, fitness)
        score = value if settings.direction == "max" else -value
        self.best_fitness = better(score, previous_best)
        self.validation = replace(self.validation, chosen=ChosenMetric(settings.metric, value))
        return metrics, score

    def metric_value(self, name: str, metrics: dict, fitness: float) -> float:
        """The value of recipe metric ``name`` in this epoch's metrics."""
        if name == FITNESS.name:
            return float(fitness)
        if name == F1.name and F1_KEY not in metrics:  # per_class_f1 off: compute it the same way
            return mean_f1(self.validation.per_class)
        row = find_metric(name)
        key = row.key if row is not None else name
        if key not in metrics:
            raise KeyError(
                f"customizations.best_metric.metric: '{name}' is not among this model's validation metrics "
                f"({', '.join(sorted(metrics))})"
            )
        return float(metrics[key])


ROW = Customization(
    key="best_metric",
    rank=10,
    why="outermost customization: it sees the metrics after per_class_f1 added F1 and owns the fitness returned",
    title="Best-model metric",
    help="Choose the validation metric that picks best.pt (and drives early stopping).",
    settings=BestMetric,
    mixin=BestMetricMixin,
    check=check,
)
