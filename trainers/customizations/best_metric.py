"""Customization 3: best.pt (and early stopping) chosen by another metric, higher or lower is better."""

from __future__ import annotations

from trainers.metrics import F1_KEY, mean_f1, per_class_table
from trainers.recipe import METRICS


class BestMetricMixin:
    """Returns the chosen metric as the fitness, on a higher-is-better scale (losses are negated).

    The guide's recipe compares against ``best_fitness`` *after* ``BaseTrainer.validate()`` has already raised it
    with the stock mAP fitness, so a metric that sits below mAP50-95 (or any loss) never equals ``best_fitness``
    and best.pt is written at the wrong epoch or never. Here the previous best (on our scale) is remembered
    before the parent runs and restored, then compared with the chosen metric. ultralytics writes best.pt when
    ``best_fitness == fitness`` and feeds ``fitness`` to early stopping, so both follow the same number.
    """

    def validate(self):
        previous_best = self.best_fitness
        metrics, fitness = super().validate()
        if metrics is None:
            return metrics, fitness
        cfg = self.wb_cfg("best_metric")
        name = cfg["metric"]
        value = self.wb_metric_value(name, metrics, fitness)
        score = value if (cfg.get("mode") or ("min" if name.startswith("val/") else "max")) == "max" else -value
        self.best_fitness = score if previous_best is None or score > previous_best else previous_best
        self.wb_best_metric = {"name": name, "value": value}
        return metrics, score

    def wb_metric_value(self, name: str, metrics: dict, fitness: float) -> float:
        """The value of recipe metric ``name`` in this epoch's metrics."""
        if name == "fitness":
            return float(fitness)
        if name == "f1" and F1_KEY not in metrics:  # per_class_f1 off: compute it the same way
            return mean_f1(per_class_table(self.validator, self.data["names"]))
        key = METRICS.get(name, name)
        if key not in metrics:
            raise KeyError(
                f"customizations.best_metric.metric: '{name}' is not among this model's validation metrics "
                f"({', '.join(sorted(metrics))})"
            )
        return float(metrics[key])
