"""Gradient clipping with a threshold of your choice. Off, the trainer clips as stock ultralytics does: the total
norm at a fixed 10 (``trainers.train_args.STOCK_MAX_NORM``)."""

from __future__ import annotations

from pydantic import Field

from trainers.customizations.table import Customization, Settings
from trainers.train_args import STOCK_MAX_NORM


class GradClip(Settings):
    max_norm: float = Field(
        STOCK_MAX_NORM, ge=0, title="Max gradient norm",
        description="clip the total gradient norm to this before each step; 0 = no clipping",
    )  # fmt: skip


class GradClipMixin:
    """Owns the clipping threshold: the base mixin's measured ``optimizer_step`` clips the total gradient norm to
    :meth:`clip_threshold`, which is ultralytics' stock 10 unless this mixin is composed in."""

    def clip_threshold(self) -> float:
        return self.recipe.customizations.grad_clip.max_norm


ROW = Customization(
    key="grad_clip",
    rank=70,
    why="only supplies a threshold to the base mixin's measured optimizer step; nothing depends on it",
    title="Gradient clipping",
    help="Clip the total gradient norm at a threshold of your choice (0: no clipping). Off: stock (clips at 10).",
    settings=GradClip,
    mixin=GradClipMixin,
)
