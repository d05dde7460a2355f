"""Gradient clipping with a threshold of your choice. Off, the trainer clips as stock ultralytics does: the total
norm at a fixed 10 (``trainers.train_args.STOCK_MAX_NORM``)."""

from __future__ import annotations

from pydantic import Field

from trainers.customizations.table import Customization, Settings
from trainers.train_args import STOCK_MAX_NORM

# The default threshold, a guess: a safety net against blow-ups. YOLO's pre-clip norms are in the hundreds or thousands
# (ultralytics scales the loss by the batch size; the demo's are 68-189 at batch 16), so the stock 10 clips every step
# and a threshold near the norms clips most of them: the doctor flags both (training.clip_saturation). This one is
# 10x or more above the norms of batches up to ~64 on such data, where the doctor reads it as a deliberate net.
DEFAULT_MAX_NORM = 1e4


class GradClip(Settings):
    max_norm: float = Field(
        DEFAULT_MAX_NORM, ge=0, title="Max gradient norm",
        description="clip the total gradient norm to this before each step; 0 = no clipping. Default 10000, a guess: "
        "a safety net far above YOLO's norms (hundreds to thousands, growing with the batch); to clip the largest "
        "steps, set it near the norms the Gradient norm chart shows (the doctor suggests a value)",
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
    help=f"Clip the total gradient norm at a threshold of your choice (0: no clipping). Off: stock (clips at "
    f"{STOCK_MAX_NORM:g}).",
    settings=GradClip,
    mixin=GradClipMixin,
)
