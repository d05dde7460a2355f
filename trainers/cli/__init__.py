"""The ``workbench`` command line: :mod:`~trainers.cli.commands` parses and dispatches, :mod:`~trainers.cli.reports`
holds the commands that read runs and datasets, :mod:`~trainers.cli.cluster` what ``--cluster`` changes.
``python -m trainers.cli`` runs it (the launcher spawns training that way).

Importing this package is cheap: the commands import what they need when they run.
"""

from __future__ import annotations

from trainers.cli.commands import main

__all__ = ["main"]
