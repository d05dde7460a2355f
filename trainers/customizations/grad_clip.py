"""Gradient clipping with a threshold of your choice (stock ultralytics clips the total norm at a fixed 10.0)."""

from __future__ import annotations

from pydantic import Field

from trainers.customizations.table import Customization, Settings

STOCK_MAX_NORM = 10.0  # ultralytics 8.4 hard-codes this in BaseTrainer.optimizer_step


class GradClip(Settings):
    max_norm: float = Field(
        STOCK_MAX_NORM, ge=0, title="Max gradient norm",
        description="clip the total gradient norm to this before each step; 0 = no clipping",
    )  # fmt: skip


class GradClipMixin:
    """Supplies the threshold that the base mixin's measured ``optimizer_step`` clips the total gradient norm to."""

    def clip_threshold(self) -> float:
        return self.recipe.customizations.grad_clip.max_norm


ROW = Customization(
    key="grad_clip",
    rank=70,
    why="only supplies a threshold to the base mixin's measured optimizer step; nothing depends on it",
    title="Gradient clipping",
    help="Clip the total gradient norm before each optimizer step (0 disables clipping).",
    settings=GradClip,
    mixin=GradClipMixin,
)
