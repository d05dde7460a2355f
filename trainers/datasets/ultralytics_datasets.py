"""Datasets that ultralytics names and ships a YAML for (``data: coco8.yaml``), found without importing ultralytics.

ultralytics keeps these YAMLs in its package (``ultralytics/cfg/datasets/coco8.yaml``): each names the dataset's
folder with a relative ``path:`` (``coco8``) that ultralytics looks up in its datasets folder, and how to get it
(``download:`` a URL of a zip, or a Python script for the large ones). The workbench treats such a name like an
official checkpoint name (:mod:`trainers.runs.model_zoo`): the dataset is used when its folder is in the datasets
folder, else downloaded only when allowed. Once the folder is there it gets a ``data.yaml`` of its own
(:func:`write_data_yaml`), so it reads like any other dataset folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from trainers.errors import DatasetError

YAML_SUFFIXES = (".yaml", ".yml")


def packaged_yaml(name: str) -> Path | None:
    """ultralytics' own YAML for ``name``, or None when ``name`` is not a bare dataset name that ultralytics ships.

    Only a file name with no folder part counts (``coco8.yaml``, not ``./coco8.yaml`` or ``data/coco8.yaml``), so
    a path the user typed is never mistaken for one.
    """
    if not name or Path(name).name != name or Path(name).suffix.lower() not in YAML_SUFFIXES:
        return None
    spec = importlib.util.find_spec("ultralytics")  # finds the package without importing it (no torch)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "datasets" / name
    return path if path.is_file() else None


def read_packaged(name: str) -> dict[str, Any]:
    """The parsed YAML of an ultralytics dataset name (raises DatasetError when it is not one)."""
    path = packaged_yaml(name)
    if path is None:
        raise DatasetError(f"data: {name} is not a dataset that ultralytics names")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DatasetError(f"data: ultralytics' {path} is not a YAML mapping")
    return data


def dataset_folder(name: str, datasets_dir: Path) -> Path:
    """Where the dataset ``name`` lives: its ``path:`` under ``datasets_dir``, as ultralytics resolves it."""
    root = read_packaged(name).get("path") or Path(name).stem
    p = Path(str(root)).expanduser()
    return p if p.is_absolute() else Path(datasets_dir) / p


def download_url(name: str) -> str | None:
    """The URL of the dataset's archive, or None when ultralytics gets it with a script (coco.yaml, VOC.yaml)."""
    value = read_packaged(name).get("download")
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return None


def write_data_yaml(name: str, folder: Path) -> Path:
    """Give the dataset folder a ``data.yaml`` (ultralytics' YAML without ``path`` and ``download``), once.

    Without ``path:`` the splits resolve against the YAML's own folder (:mod:`trainers.datasets.data_yaml`), so the
    folder reads like any other dataset. An existing ``data.yaml`` is kept: it may be the user's.
    """
    target = Path(folder) / "data.yaml"
    if target.is_file():
        return target
    data = {k: v for k, v in read_packaged(name).items() if k not in ("path", "download")}
    header = f"# Written by the workbench from ultralytics' {name} (its 'path' and 'download' keys left out).\n"
    try:
        target.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"data: cannot write {target} ({e.strerror or type(e).__name__})") from None
    return target
