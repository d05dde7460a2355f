"""Trainer Workbench library: recipes, composed Ultralytics trainers, datasets, telemetry and runs.

Importing this package is cheap: nothing here imports torch or ultralytics at module import time.
The heavy modules (``trainers.training.compose``, ``trainers.customizations``) are imported only by the training
process.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# The folder holding the ``trainers`` and ``app`` packages: child processes get it on PYTHONPATH so that
# ``python -m trainers.cli`` imports this same copy, whatever their working directory.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
