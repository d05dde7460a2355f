"""A YOLO export (Ultralytics or Roboflow layout), unpacked, made self-contained: one ``data.yaml`` at the top of the
folder that holds every split, with paths relative to it and no ``path:`` key.

What exports write, and what becomes of it:

- Roboflow: ``data.yaml`` beside ``train/``, ``valid/``, ``test/`` with ``train: ../train/images`` (ultralytics strips
  the ``../`` when that path does not exist; so do we) and no ``path``; some exports name absolute paths of the
  exporting machine (``/content/datasets/x/train/images``): the longest tail of such a path found in the archive is
  taken.
- Ultralytics: ``path: ../datasets/coco8`` (meant against ultralytics' datasets dir, absent here) and
  ``train: images/train``: the ``path`` is used only when it names a folder inside the archive, else the YAML's folder.
- ``names`` as a list or an ``{id: name}`` mapping are written as they came; ``validation`` is written as ``val``. Other
  keys are dropped: ``download`` is a script ultralytics would run, ``roboflow`` is metadata.
- No ``data.yaml`` but a ``classes.txt`` (or ``obj.names``) and ``images/train``, ``images/val`` folders (or
  ``train/images``, ``valid/images``): :func:`from_class_list` writes the ``data.yaml``.

Every path must stay inside the unpacked archive; the data.yaml is then checked by
:func:`~trainers.datasets.data_yaml.load_dataset` like any other.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.datasets_dir import DATA_FILE
from trainers.datasets.files import label_file_str
from trainers.errors import DatasetError

__all__ = ["find_data_yaml", "from_class_list", "normalise"]

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
CLASS_LISTS = ("classes.txt", "obj.names")
_YAML_NAMES = ("data.yaml", "data.yml")
HEADER = "# Written by 'workbench import' from the export's {source}; paths are relative to this file's folder.\n"


def find_data_yaml(tree: Path) -> Path | None:
    """The export's dataset YAML: a ``data.yaml`` (or any YAML with ``names`` and ``train``/``val``), the
    shallowest first; ``None`` when there is none."""
    found = []
    for p in _files(tree):
        if p.suffix.lower() not in (".yaml", ".yml"):
            continue
        data = _load(p)
        dataset_like = isinstance(data, dict) and bool({"names", "train", "val"} & set(data))
        if p.name.lower() in _YAML_NAMES or dataset_like:
            found.append(p)
    found.sort(key=lambda p: (p.name.lower() not in _YAML_NAMES, len(p.relative_to(tree).parts), str(p)))
    return found[0] if found else None


def normalise(yaml_path: Path, tree: Path) -> Path:
    """Rewrite the export's YAML as ``data.yaml`` at the top of the folder holding its splits; return that folder.

    Raises:
        DatasetError: The YAML does not parse, or a split names a path that is not in the archive.
    """
    data = _load(yaml_path)
    if not isinstance(data, dict):
        load_dataset(yaml_path)  # raises the loader's own message (invalid YAML, not a mapping)
        raise DatasetError(f"{yaml_path}: expected a mapping with keys train, val, names")
    ydir = yaml_path.parent
    root = ydir
    given = data.get("path")
    if isinstance(given, str) and given.strip() and not PurePosixPath(given).is_absolute():
        candidate = (ydir / given).resolve()
        if candidate.is_dir() and _inside(candidate, tree):
            root = candidate
    if "val" not in data and "validation" in data:
        data["val"] = data["validation"]
    splits = {}
    for key in SPLITS:
        value = data.get(key)
        if value not in (None, "", []):
            items = value if isinstance(value, list) else [value]
            splits[key] = [_locate(key, item, root, ydir, tree, yaml_path) for item in items]
    out = {key: data[key] for key in ("names", "nc") if key in data}
    return _write(yaml_path.parent, splits, out, yaml_path.name)


def from_class_list(tree: Path) -> Path | None:
    """A ``data.yaml`` for labels that came with a class list instead (``classes.txt``, ``obj.names``); ``None``
    when there is no class list.

    Raises:
        DatasetError: A class list but no train and val image folders beside it, or an empty class list.
    """
    lists = [p for p in _files(tree) if p.name.lower() in CLASS_LISTS]
    if not lists:
        return None
    names_file = min(lists, key=lambda p: (len(p.relative_to(tree).parts), str(p)))
    names = [line.strip() for line in names_file.read_text(encoding="utf-8-sig", errors="replace").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"{names_file}: the class list is empty; write one class name per line")
    base = names_file.parent
    splits = {}
    for key, folders in SPLIT_FOLDERS.items():
        for folder in folders:
            for candidate in (base / "images" / folder, base / folder / "images"):
                if candidate.is_dir() and key not in splits:
                    splits[key] = [candidate]
    if "train" not in splits or "val" not in splits:
        raise DatasetError(
            f"{names_file}: class names but no {' and '.join(k for k in ('train', 'val') if k not in splits)} image "
            "folder beside it; put images in images/train and images/val (or train/images and valid/images)"
        )
    return _write(base, splits, {"names": names}, names_file.name)


def _write(ydir: Path, splits: dict[str, list[Path]], keep: dict[str, Any], source: str) -> Path:
    """Write data.yaml at the folder holding the YAML's folder, every split and their label folders."""
    entries = [e for es in splits.values() for e in es]
    labels = [Path(label_file_str(os.path.join(e, "x.jpg"))).parent for e in entries if e.is_dir()]
    folder = Path(os.path.commonpath([ydir.resolve(), *entries, *(p for p in labels if p.is_dir())]))
    out: dict[str, Any] = {}
    for key, es in splits.items():
        rel = [e.relative_to(folder).as_posix() for e in es]
        out[key] = rel[0] if len(rel) == 1 else rel
    out.update(keep)
    text = HEADER.format(source=source) + yaml.safe_dump(out, sort_keys=False, allow_unicode=True)
    (folder / DATA_FILE).write_text(text, encoding="utf-8")
    return folder


def _locate(key: str, item: Any, root: Path, ydir: Path, tree: Path, yaml_path: Path) -> Path:
    """Where a split entry of the export's YAML is in the unpacked archive."""
    if not isinstance(item, str) or not item.strip():
        raise DatasetError(f"{yaml_path}: '{key}' entry {item!r} is not a path; use a folder relative to the YAML")
    text = item.strip().replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:/", text):  # written on the exporting machine
        parts = [p for p in PurePosixPath(text).parts if p != "/" and not p.endswith(":")]
        shortest = min(2, len(parts))  # a bare 'images' tail would match any split's folder
        candidates = [root.joinpath(*parts[i:]) for i in range(len(parts) - shortest + 1)]
    else:
        candidates = [root / text, ydir / text]
        if text.startswith("../"):  # ultralytics' fallback for YOLOv5-era and Roboflow YAMLs
            candidates += [root / text[3:], ydir / text[3:]]
    for candidate in candidates:
        if candidate.exists() and _inside(candidate.resolve(), tree):
            return candidate.resolve()
    raise DatasetError(
        f"{yaml_path}: '{key}: {item}' is not in the archive; fix '{key}:' to a folder relative to the YAML "
        "(e.g. train/images)"
    )


def _inside(path: Path, tree: Path) -> bool:
    return path == tree.resolve() or tree.resolve() in path.parents


def _files(tree: Path) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        out += [Path(folder, n) for n in sorted(names) if not n.startswith(".")]
    return out


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
