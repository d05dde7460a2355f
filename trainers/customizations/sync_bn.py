"""SyncBatchNorm: BatchNorm statistics synchronised across GPUs when training on more than one."""

from __future__ import annotations

from trainers.customizations.table import Customization, Settings


class SyncBN(Settings):
    """No settings: a no-op on one device, so the same recipe is safe everywhere."""


class SyncBNMixin:
    """Converts BatchNorm layers to SyncBatchNorm after the model is on its device and before DDP wraps it.

    ``set_model_attributes`` runs at exactly that point of ``_setup_train``. With one device (world size 0 or 1)
    nothing changes.
    """

    def set_model_attributes(self):
        super().set_model_attributes()
        if self.world_size > 1:
            from torch import nn

            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.emit_event("sync_bn", world_size=self.world_size)


ROW = Customization(
    key="sync_bn",
    rank=60,
    why="converts BatchNorm before DDP wraps the model; the freeze mixin (outside) keeps frozen SyncBN in eval",
    title="SyncBatchNorm",
    help="Synchronise BatchNorm statistics across GPUs (no effect on one device).",
    settings=SyncBN,
    mixin=SyncBNMixin,
)
