"""The datasets folder: where ``workbench import`` puts datasets, one folder per name with its ``data.yaml``.

``--datasets-dir D`` > ``$WORKBENCH_DATASETS_DIR`` > ``./datasets`` (``workbench ui --datasets-dir`` passes it to the UI
through the environment, as it does the runs root). New run and Class weights list the datasets in it by name.

This module is imported by the Streamlit UI process, so it must stay light: the standard library only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from trainers.errors import DatasetError
from trainers.run_files import chosen_folder

__all__ = [
    "DATASETS_DIR_ENV",
    "DATA_FILE",
    "dataset_yaml",
    "datasets_root",
    "default_dataset_name",
    "list_datasets",
    "validate_dataset_name",
]

DATASETS_DIR_ENV = "WORKBENCH_DATASETS_DIR"
DEFAULT_DATASETS_DIR = "datasets"
DATA_FILE = "data.yaml"  # every imported dataset has one at its top, written by the import
# The run-name rule: a name is a folder name, so no separators, no hidden or option-like names.
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
NAME_RULE = "1-100 letters, digits, '-', '_' or '.', not starting with '.' or '-'"


def datasets_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the datasets folder: ``--datasets-dir`` > ``$WORKBENCH_DATASETS_DIR`` > ``./datasets``, absolute.

    The folder need not exist yet (the first import creates it).

    Args:
        cli_value: The ``--datasets-dir`` value, if given.

    Raises:
        DatasetError: The path exists and is not a folder.
    """
    root, source = chosen_folder(cli_value, "--datasets-dir", DATASETS_DIR_ENV, DEFAULT_DATASETS_DIR)
    source = source or "datasets folder"
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{source} {root} is not a folder; pass a folder for datasets with --datasets-dir")
    return root


def validate_dataset_name(name: str, what: str = "--name") -> str:
    """Return ``name`` if it is a safe dataset folder name (the run-name rule), else raise :class:`DatasetError`."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name[0] in ".-":
        raise DatasetError(f"{what} {name!r} is not allowed: use {NAME_RULE}")
    return name


def default_dataset_name(source: str | os.PathLike[str]) -> str:
    """A dataset name from an archive or folder name: ``My export.v2i.yolov8.zip`` -> ``My-export.v2i.yolov8``."""
    p = Path(source)
    stem = p.stem if p.suffix.lower() == ".zip" else p.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).lstrip(".-")[:100].rstrip(".-")
    return name or "dataset"


def dataset_yaml(root: str | os.PathLike[str], name: str) -> Path:
    """The ``data.yaml`` of dataset ``name`` in the datasets folder ``root`` (it may not exist)."""
    return Path(root) / validate_dataset_name(name, "dataset") / DATA_FILE


def list_datasets(root: str | os.PathLike[str]) -> list[str]:
    """The names of the datasets in ``root``, sorted: its folders with a ``data.yaml`` (an import in progress is a
    hidden folder and is not listed)."""
    try:
        entries = list(os.scandir(root))
    except OSError:  # not created yet, or unreadable: nothing imported there
        return []
    return sorted(
        e.name
        for e in entries
        if not e.name.startswith(".") and e.is_dir() and os.path.isfile(os.path.join(e.path, DATA_FILE))
    )
