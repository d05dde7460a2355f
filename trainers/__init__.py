"""Trainer Workbench library: recipes, composed Ultralytics trainers, datasets, telemetry and runs.

Importing this package is cheap: nothing here imports torch or ultralytics at module import time.
The heavy modules (``trainers.training.compose``, ``trainers.customizations``) are imported only by the training
process.
"""

from __future__ import annotations

__version__ = "0.1.0"
