"""A COCO JSON export, unpacked, converted to the YOLO layout by ultralytics' ``convert_coco``.

Found: ``instances_<split>.json`` (COCO's own naming, e.g. ``annotations/instances_val2017.json`` with ``val2017/``)
and Roboflow's ``<split>/_annotations.coco.json`` beside the split's images. The split is read from the file name,
else from its folder: ``train``, ``val``/``valid``/``validation``, ``test``.

Before conversion each file is checked and rewritten into a private copy, because ``convert_coco`` (8.4.190) trusts
it: it writes each label file at ``labels/<split>/<file_name>.txt`` (so a ``file_name`` with ``..`` or an absolute
path is refused), takes class ``category_id - 1`` (so category ids are renumbered 1..K in id order, making the
classes 0..K-1), and raises a bare ``KeyError`` on an annotation of an unknown image. Roboflow's placeholder category
(the ``supercategory`` of the others, with no annotation of its own) is dropped. ``convert_coco`` skips crowd boxes and
boxes without area, and writes each distinct row once.

The result: ``images/<split>/<file_name>`` (moved, not copied), ``labels/<split>/...`` and a ``data.yaml``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from trainers.datasets.datasets_dir import DATA_FILE
from trainers.datasets.files import IMAGE_SUFFIXES
from trainers.errors import DatasetError

__all__ = ["convert", "find_coco_files"]

_PATTERNS = re.compile(r"^(instances_.*|.*annotations.*|.*\.coco)\.json$", re.IGNORECASE)
_SPLIT_WORDS = (("train", "train"), ("val", "val"), ("test", "test"))  # 'val' also matches valid, validation
HEADER = "# Written by 'workbench import' from the export's COCO JSON (converted by ultralytics' convert_coco).\n"


def find_coco_files(tree: Path) -> list[Path]:
    """The COCO JSON files of an unpacked export (``instances_*.json``, ``*annotations*.json``, ``*.coco.json``)."""
    out = []
    for folder, dirs, names in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        out += [Path(folder, n) for n in sorted(names) if _PATTERNS.match(n) and not n.startswith(".")]
    return out


def convert(tree: Path, files: list[Path], out: Path) -> Path:
    """Convert the COCO files into a YOLO dataset at ``out`` (created); return ``out``.

    Raises:
        DatasetError: A file is not COCO detection JSON, two files claim a split, a split is missing (train and val
            are needed), category ids disagree between files, an annotation names an unknown image or category, an
            image ``file_name`` leaves its folder, or listed images are not in the archive.
    """
    docs = {}
    for f in files:
        split = _split_of(f)
        if split in docs:
            raise DatasetError(f"{f}: a second COCO file for split '{split}' (first: {docs[split][0]}); keep one")
        docs[split] = (f, _read(f))
    missing = [s for s in ("train", "val") if s not in docs]
    if missing:
        found = ", ".join(f"{s}: {f.name}" for s, (f, _) in docs.items())
        raise DatasetError(
            f"{tree}: no COCO file for {' and '.join(missing)} (found {found}); name them instances_train.json and "
            "instances_val.json, or put _annotations.coco.json in train/ and valid/ folders"
        )
    names, new_id = _classes(docs)
    staged = out.parent / f"{out.name}-json"
    staged.mkdir(parents=True)
    for split, (f, doc) in docs.items():
        (staged / f"instances_{split}.json").write_text(json.dumps(_renumbered(f, doc, new_id)), encoding="utf-8")
    from trainers.offline import apply_offline_env

    apply_offline_env()  # before ultralytics is imported: no network probe
    from ultralytics.data.converter import convert_coco

    labels = out.parent / f"{out.name}-labels"
    with _quiet_ultralytics():
        convert_coco(labels_dir=str(staged), save_dir=str(labels), use_segments=False, cls91to80=False)
    for split, (f, doc) in docs.items():
        images = _image_folder(tree, f, split, doc)
        target = out / "images" / split
        for file_name in dict.fromkeys(img["file_name"] for img in doc["images"]):
            dest = target / file_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(images / file_name, dest)
            except OSError as e:  # e.g. one image listed in two splits: moved by the first
                raise DatasetError(
                    f"{f}: cannot take image {file_name!r} ({e.strerror}); list each image once"
                ) from None
        converted = labels / "labels" / split
        if converted.is_dir():  # absent when the split has no annotation at all: every image is background
            (out / "labels").mkdir(exist_ok=True)
            os.replace(converted, out / "labels" / split)
    data = {split: f"images/{split}" for split in docs} | {"names": names}
    (out / DATA_FILE).write_text(HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def _split_of(f: Path) -> str:
    stem = f.name[: -len(".json")].lower()
    for text in (stem.removeprefix("instances_"), f.parent.name.lower()):
        for word, split in _SPLIT_WORDS:
            if word in text:
                return split
    raise DatasetError(
        f"{f}: cannot tell its split from the name; name it instances_train.json, instances_val.json or "
        "instances_test.json"
    )


def _read(f: Path) -> dict[str, Any]:
    try:
        doc = json.loads(f.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{f}: not readable JSON ({e}); export the annotations again") from None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DatasetError(f"{f}: not a COCO detection file; it needs 'images', 'annotations' and 'categories' lists")
    for img in doc["images"]:
        name = img.get("file_name") if isinstance(img, dict) else None
        if not isinstance(name, str) or not name or not isinstance(img.get("id"), int):
            raise DatasetError(f"{f}: image entry {str(img)[:80]!r} needs an integer 'id' and a 'file_name'")
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"[A-Za-z]:", name):
            raise DatasetError(f"{f}: image file_name {name!r} leaves the images folder; use a relative name")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetError(
                f"{f}: image {name!r} is not a {'/'.join(sorted(s[1:] for s in IMAGE_SUFFIXES))} file; convert it"
            )
        if not all(isinstance(img.get(k), (int, float)) and img[k] > 0 for k in ("width", "height")):
            raise DatasetError(f"{f}: image {name!r} needs its 'width' and 'height' in pixels")
    return doc


def _classes(docs: dict[str, tuple[Path, dict]]) -> tuple[list[str], dict[int, int]]:
    """Class names in category-id order and the new 1-based id of each kept category id."""
    categories: dict[int, dict] = {}
    used: set[Any] = set()
    for f, doc in docs.values():
        for cat in doc["categories"]:
            cid = cat.get("id") if isinstance(cat, dict) else None
            if not isinstance(cid, int) or not str(cat.get("name", "")).strip():
                raise DatasetError(f"{f}: category {str(cat)[:80]!r} needs an integer 'id' and a 'name'")
            if cid in categories and categories[cid]["name"] != cat["name"]:
                raise DatasetError(
                    f"{f}: category id {cid} is {cat['name']!r} here but {categories[cid]['name']!r} in another file; "
                    "export all splits with the same categories"
                )
            categories[cid] = cat
        used.update(a.get("category_id") for a in doc["annotations"] if isinstance(a, dict))
    parents = {str(c.get("supercategory")) for c in categories.values()}
    kept = sorted(cid for cid, c in categories.items() if cid in used or str(c["name"]) not in parents)
    if not kept:
        raise DatasetError(f"{next(iter(docs.values()))[0]}: no categories; a COCO file lists its classes there")
    return [str(categories[cid]["name"]) for cid in kept], {cid: i + 1 for i, cid in enumerate(kept)}


def _renumbered(f: Path, doc: dict, new_id: dict[int, int]) -> dict:
    """The document convert_coco reads: categories 1..K, every annotation checked against the images and classes."""
    ids = {img["id"] for img in doc["images"]}
    annotations = []
    for ann in doc["annotations"]:
        if not isinstance(ann, dict) or not isinstance(ann.get("image_id"), int) or ann["image_id"] not in ids:
            raise DatasetError(f"{f}: annotation {str(ann)[:80]!r} names no image of this file (its 'image_id')")
        if ann.get("category_id") not in new_id:
            raise DatasetError(
                f"{f}: annotation {ann.get('id')} has category_id {ann.get('category_id')!r}, not listed"
            )
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise DatasetError(f"{f}: annotation {ann.get('id')} needs a 'bbox' [x, y, width, height] in pixels")
        annotations.append({**ann, "category_id": new_id[ann["category_id"]]})
    categories = [{"id": i, "name": str(i)} for i in sorted(new_id.values())]
    return {"images": doc["images"], "annotations": annotations, "categories": categories}


def _image_folder(tree: Path, f: Path, split: str, doc: dict) -> Path:
    """The folder the file's image names are relative to: beside it (Roboflow), or a split folder (COCO)."""
    names = [img["file_name"] for img in doc["images"]]
    raw = f.name[: -len(".json")].removeprefix("instances_")
    candidates = [f.parent, tree / raw, f.parent.parent / raw, tree / "images" / raw, tree / "images" / split]
    candidates += [tree / split, tree / "images", f.parent.parent, tree]
    candidates += [p for p in tree.iterdir() if p.is_dir()]  # the one top folder unzip_file may have kept
    best, found = f.parent, -1
    for folder in dict.fromkeys(candidates):
        n = sum((folder / name).is_file() for name in names)
        if n == len(names):
            return folder
        if n > found:
            best, found = folder, n
    absent = [n for n in names if not (best / n).is_file()]
    raise DatasetError(
        f"{f}: {len(absent)} of {len(names)} images it lists are not in the archive (first: {absent[0]}, looked in "
        f"{best}); export the images with the annotations"
    )


@contextlib.contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """convert_coco's own progress bar would interleave with ours; its warnings still show."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
