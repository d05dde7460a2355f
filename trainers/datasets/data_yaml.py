"""Load a YOLO ``data.yaml``: validate it and resolve every path it names.

This module is imported by the Streamlit UI process, so it must stay light: PyYAML only, never torch or ultralytics.

Path rules (they differ from ultralytics on purpose):

- ultralytics resolves a relative ``path:`` against the current working directory or its global datasets dir, so the
  same YAML trains or fails depending on where the command was started. We resolve it against the YAML's own folder
  first (``path: .`` or ``path: ../data`` next to the YAML), then against the working directory; a missing ``path``
  means the YAML's folder.
- Split entries (``train: images/train``, or a list of them) resolve against that root. Each is a folder of images
  (scanned recursively) or a ``.txt`` file listing images (see :mod:`trainers.datasets.files`).
- :func:`resolved_data_dict` writes every path out absolute, so ultralytics sees exactly what we validated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainers.datasets.dataset import Dataset
from trainers.datasets.files import IMAGE_SUFFIXES, has_images
from trainers.errors import DatasetError

__all__ = ["Dataset", "load_dataset", "resolved_data_dict"]

REQUIRED_SPLITS = ("train", "val")
OPTIONAL_SPLITS = ("test",)


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a ``data.yaml``.

    Checks the YAML itself, the class names, that ``train`` and ``val`` exist, and that every split folder or list
    file exists and holds at least one image. Labels are checked by :func:`trainers.datasets.label_counts.count_labels`.

    Args:
        path: The ``data.yaml`` file, or a folder containing one.

    Returns:
        The dataset with absolute paths.

    Raises:
        DatasetError: One line naming the file (and key) and the fix.
    """
    yaml_path = Path(path).expanduser()
    if yaml_path.is_dir():
        candidates = [yaml_path / n for n in ("data.yaml", "data.yml") if (yaml_path / n).is_file()]
        if not candidates:
            raise DatasetError(f"{yaml_path}: folder has no data.yaml; pass the path of the dataset's YAML file")
        yaml_path = candidates[0]
    if not yaml_path.is_file():
        raise DatasetError(f"{yaml_path}: file not found; pass the path of an existing dataset YAML (data.yaml)")
    yaml_path = yaml_path.resolve()
    data = _read_yaml(yaml_path)
    names = _parse_names(data, yaml_path)
    root = _resolve_root(data.get("path"), yaml_path)
    if "val" not in data and "validation" in data:  # ultralytics renames this key too
        data["val"] = data["validation"]
    splits: dict[str, list[Path]] = {}
    for key in REQUIRED_SPLITS + OPTIONAL_SPLITS:
        value = data.get(key)
        if value in (None, "", []):
            if key in REQUIRED_SPLITS:
                raise DatasetError(
                    f"{yaml_path}: key '{key}' is missing; add '{key}: images/{key}' "
                    f"(a folder or .txt image list, relative to path {root})"
                )
            continue
        splits[key] = _resolve_split(key, value, root, yaml_path)
    ds = Dataset(yaml_path=yaml_path, root=root, names=names, splits=splits)
    for key, entries in splits.items():
        if not any(has_images(entry, root) for entry in entries):
            where = ", ".join(str(e) for e in entries)
            raise DatasetError(
                f"{yaml_path}: split '{key}' has no images in {where}; "
                f"add {'/'.join(sorted(s[1:] for s in IMAGE_SUFFIXES))} files or fix '{key}:'"
            )
    return ds


def resolved_data_dict(ds: Dataset) -> dict:
    """Return a data dict ultralytics accepts, with every path absolute.

    The trainer writes it to a run's ``data.yaml`` and passes that file to ultralytics, so the run no longer depends
    on the working directory.

    Args:
        ds: A dataset from :func:`load_dataset`.

    Returns:
        ``{"path", "train", "val"[, "test"], "names": {id: name}, "nc"}``. A split with one folder or list file is
        written as a string, one with several as a list.
    """
    out: dict[str, Any] = {"path": str(ds.root)}
    for key, entries in ds.splits.items():
        out[key] = str(entries[0]) if len(entries) == 1 else [str(e) for e in entries]
    out["names"] = dict(enumerate(ds.names))
    out["nc"] = ds.nc
    return out


def _read_yaml(yaml_path: Path) -> dict:
    try:
        text = yaml_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{yaml_path}: cannot read the file ({e}); check its permissions and UTF-8 encoding") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DatasetError(
            f"{yaml_path}: invalid YAML{where}: {problem}; fix the syntax (indentation, 'key: value', quotes)"
        ) from e
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DatasetError(
            f"{yaml_path}: expected a mapping with keys path, train, val, names, got {kind}; "
            "write one 'key: value' per line"
        )
    return data


def _parse_names(data: dict, yaml_path: Path) -> list[str]:
    raw = data.get("names")
    if raw is None:
        raise DatasetError(
            f"{yaml_path}: key 'names' is missing; add the class names, e.g. 'names: [cat, dog]' or "
            "'names: {0: cat, 1: dog}'"
        )
    if isinstance(raw, dict):
        ids: list[int] = []
        for key in raw:
            try:
                ids.append(int(key))
            except (TypeError, ValueError):
                raise DatasetError(
                    f"{yaml_path}: 'names' key {key!r} is not a class id; use integer ids 0..n-1, e.g. '0: cat'"
                ) from None
        if sorted(ids) != list(range(len(ids))):
            missing = sorted(set(range(max(ids, default=-1) + 1)) - set(ids))
            detail = f"missing {', '.join(map(str, missing[:5]))}" if missing else f"got {sorted(ids)[:5]}"
            raise DatasetError(
                f"{yaml_path}: 'names' ids must be contiguous from 0 ({detail}); renumber them 0..{len(ids) - 1}"
            )
        by_id = {int(k): v for k, v in raw.items()}
        values = [by_id[i] for i in range(len(by_id))]
    elif isinstance(raw, (list, tuple)):
        values = list(raw)
    else:
        raise DatasetError(
            f"{yaml_path}: 'names' must be a list or an {{id: name}} mapping, got {type(raw).__name__}; "
            "e.g. 'names: [cat, dog]'"
        )
    if not values:
        raise DatasetError(f"{yaml_path}: 'names' is empty; list at least one class name")
    for i, v in enumerate(values):
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or str(v).strip() == "":
            raise DatasetError(f"{yaml_path}: 'names' entry for class {i} is {v!r}; every class needs a text name")
    names = [str(v) for v in values]
    if data.get("nc") is not None:
        nc = data["nc"]
        if isinstance(nc, bool) or not isinstance(nc, (int, float, str)) or not _is_int_like(nc):
            raise DatasetError(f"{yaml_path}: 'nc: {nc}' must be an integer; set it to {len(names)} or remove it")
        if int(float(nc)) != len(names):
            raise DatasetError(
                f"{yaml_path}: 'nc: {nc}' does not match the {len(names)} entries in 'names'; "
                f"set 'nc: {len(names)}' or remove it"
            )
    return names


def _is_int_like(value: Any) -> bool:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return False
    return f.is_integer()


def _resolve_root(value: Any, yaml_path: Path) -> Path:
    base = yaml_path.parent
    if value in (None, ""):
        return base
    if not isinstance(value, str):
        raise DatasetError(f"{yaml_path}: 'path: {value}' must be a folder path; write it as text, e.g. 'path: .'")
    p = Path(value).expanduser()
    if p.is_absolute():
        if not p.is_dir():
            raise DatasetError(f"{yaml_path}: 'path: {value}' does not exist; point 'path:' at the dataset folder")
        return p.resolve()
    next_to_yaml = base / p
    if next_to_yaml.is_dir():
        return next_to_yaml.resolve()
    # Accepted for YAMLs written for ultralytics' working-directory rule; the YAML's folder wins when both exist.
    from_cwd = Path.cwd() / p
    if from_cwd.is_dir():
        return from_cwd.resolve()
    raise DatasetError(
        f"{yaml_path}: 'path: {value}' not found next to the YAML ({next_to_yaml}) nor in the working directory "
        f"({from_cwd}); set 'path:' relative to the YAML's folder, or absolute"
    )


def _resolve_split(key: str, value: Any, root: Path, yaml_path: Path) -> list[Path]:
    raw = value if isinstance(value, list) else [value]
    entries: list[Path] = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise DatasetError(
                f"{yaml_path}: '{key}' entry {item!r} is not a path; use a folder or .txt list relative to {root}"
            )
        p = Path(item).expanduser()
        full = p if p.is_absolute() else root / p
        if not full.exists() and item.startswith("../"):  # ultralytics' fallback for YOLOv5-era YAMLs
            alt = root / item[3:]
            full = alt if alt.exists() else full
        if not full.exists():
            raise DatasetError(
                f"{yaml_path}: '{key}: {item}' not found (looked for {full.resolve()}); fix '{key}:' "
                f"(relative to path {root}) or create the folder"
            )
        entries.append(full.resolve())
    return entries
