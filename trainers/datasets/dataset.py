"""A dataset as the workbench knows it: a validated ``data.yaml`` with every path resolved.

Its own module, below both :mod:`~trainers.datasets.data_yaml` (which builds it) and :mod:`~trainers.datasets.files`
(which reads its splits), so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dataset:
    """A validated ``data.yaml`` with every path resolved.

    Attributes:
        yaml_path: Absolute path of the ``data.yaml``.
        root: Resolved absolute dataset root (the YAML's ``path:``).
        names: Class names in id order.
        splits: Split name (``train``, ``val``, optional ``test``) to the absolute image folders or image-list
            ``.txt`` files given for it in the YAML.
    """

    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]

    @property
    def nc(self) -> int:
        """Number of classes."""
        return len(self.names)
