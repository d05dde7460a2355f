"""Per-class F1: precision/recall/F1/AP50/AP every epoch for every class, and the mean F1 in results.csv."""

from __future__ import annotations

from trainers.customizations.table import Customization, Settings
from trainers.metrics import F1_KEY, mean_f1


class PerClassF1(Settings):
    """No settings: turning the block on is the whole choice."""


class PerClassF1Mixin:
    """Adds ``metrics/F1(B)`` (mean over validation classes, zeros included) to the epoch metrics.

    Metrics added inside ``validate()`` land in results.csv and in the checkpoint's ``train_metrics``.
    The per-class table is the trainer's ``validation`` record's (read once per validation by the base mixin, which
    the telemetry writes too); it is logged to the console.
    """

    def validate(self):
        metrics, fitness = super().validate()
        if metrics is None:
            return metrics, fitness
        from ultralytics.utils import LOGGER

        table = self.validation.per_class
        metrics[F1_KEY] = mean_f1(table)
        LOGGER.info(
            f"F1 mean {metrics[F1_KEY]:.3f} | "
            + ", ".join(f"{r['name']} {r['f1']:.3f}" + ("" if r["present"] else " (not in val)") for r in table)
        )
        return metrics, fitness


ROW = Customization(
    key="per_class_f1",
    rank=20,
    why="adds mean F1 to the metrics inside validate(), so results.csv and best_metric (outside it) see it",
    title="Per-class F1",
    help="Per-class precision, recall, F1 and AP every epoch, for every class (zeros included).",
    settings=PerClassF1,
    mixin=PerClassF1Mixin,
)
