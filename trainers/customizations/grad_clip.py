"""Customization 7: configurable gradient clipping (0 disables; stock ultralytics clips at 10.0)."""

from __future__ import annotations


class GradClipMixin:
    """Sets the threshold that the base mixin's measured ``optimizer_step`` clips the total gradient norm to."""

    def wb_max_norm(self) -> float:
        return float(self.wb_cfg("grad_clip").get("max_norm", 10.0))
