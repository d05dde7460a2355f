"""Customization 1: per-class precision/recall/F1/AP every epoch, every class, and mean F1 in results.csv."""

from __future__ import annotations

from ultralytics.utils import LOGGER

from trainers.metrics import F1_KEY, mean_f1, per_class_table


class PerClassF1Mixin:
    """Adds ``metrics/F1(B)`` (mean over validation classes, zeros included) to the epoch metrics.

    Metrics added inside ``validate()`` land in results.csv and in the checkpoint's ``train_metrics``.
    The per-class table is kept on ``self.wb_per_class`` for telemetry and logged to the console.
    """

    def validate(self):
        metrics, fitness = super().validate()
        if metrics is None:
            return metrics, fitness
        table = per_class_table(self.validator, self.data["names"])
        metrics[F1_KEY] = mean_f1(table)
        self.wb_per_class = table
        LOGGER.info(
            f"F1 mean {metrics[F1_KEY]:.3f} | "
            + ", ".join(f"{r['name']} {r['f1']:.3f}" + ("" if r["present"] else " (not in val)") for r in table)
        )
        return metrics, fitness
