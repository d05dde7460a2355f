"""Customization 6: SyncBatchNorm when training on more than one GPU."""

from __future__ import annotations

from torch import nn


class SyncBNMixin:
    """Converts BatchNorm layers to SyncBatchNorm after the model is on its device and before DDP wraps it.

    ``set_model_attributes`` runs at exactly that point of ``_setup_train``. With one device (world size 0 or 1)
    nothing changes, so the same recipe is safe everywhere.
    """

    def set_model_attributes(self):
        super().set_model_attributes()
        if self.world_size > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.wb_event("sync_bn", world_size=self.world_size)
