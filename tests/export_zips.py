"""Dataset exports as users bring them, built from the committed demo dataset (assets/demo): a Roboflow YOLO zip, an
Ultralytics zip, COCO JSON zips (Roboflow's and COCO's own layout), and the label counts each one holds, counted here
from the files themselves, independently of the workbench's counting.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"
NAMES = ["circle", "square", "triangle", "cross"]
SPLITS = {"train": "train", "val": "valid"}  # workbench split -> Roboflow folder


def demo_images(split: str) -> list[Path]:
    return sorted((DEMO / "images" / split).glob("*.jpg"))


def demo_rows(image: Path) -> list[list[float]]:
    """The label rows of a demo image (none for a background image)."""
    label = DEMO / "labels" / image.parent.name / f"{image.stem}.txt"
    if not label.is_file():
        return []
    return [[float(v) for v in line.split()] for line in label.read_text().splitlines() if line.strip()]


def yolo_counts() -> dict[str, dict[str, int]]:
    """Boxes per class name per split, counted from the demo's label files."""
    return {
        split: dict(Counter(NAMES[int(r[0])] for im in demo_images(split) for r in demo_rows(im)))
        for split in ("train", "val")
    }


def roboflow_zip(
    path: Path, names_as_mapping: bool = False, extra: dict[str, bytes] | None = None, yaml_text: str | None = None
) -> Path:
    """Roboflow's YOLO export: data.yaml with '../train/images' paths and no 'path', files at the zip's top."""
    names = "{" + ", ".join(f"{i}: {n}" for i, n in enumerate(NAMES)) + "}" if names_as_mapping else str(NAMES)
    yaml_text = yaml_text or (
        f"train: ../train/images\nval: ../valid/images\n\nnc: {len(NAMES)}\nnames: {names}\n\n"
        "roboflow:\n  workspace: demo\n  project: shapes\n  version: 2\n"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.yaml", yaml_text)
        z.writestr("README.roboflow.txt", "Exported from roboflow.com\n")
        for split, folder in SPLITS.items():
            for im in demo_images(split):
                z.write(im, f"{folder}/images/{im.name}")
                label = DEMO / "labels" / split / f"{im.stem}.txt"
                if label.is_file():
                    z.write(label, f"{folder}/labels/{im.stem}.txt")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def demo_zip(path: Path, top: str = "demo", extra: dict[str, bytes] | None = None) -> Path:
    """The demo folder zipped as committed (Ultralytics layout, one top folder; label caches are not committed)."""
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(DEMO.rglob("*")):
            if f.is_file() and f.suffix != ".cache":
                z.write(f, f"{top}/{f.relative_to(DEMO).as_posix()}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def coco_document(split: str, category_ids: list[int], placeholder: bool) -> dict:
    """The demo split as COCO JSON: pixel boxes [x, y, w, h]; background images listed without annotations."""
    images, annotations = [], []
    for image_id, im in enumerate(demo_images(split), start=1):
        w, h = Image.open(im).size
        images.append({"id": image_id, "file_name": im.name, "width": w, "height": h})
        for cls, cx, cy, bw, bh in demo_rows(im):
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            annotations.append(
                {
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[int(cls)],
                    "bbox": box, "area": box[2] * box[3], "iscrowd": 0, "segmentation": [],
                }
            )  # fmt: skip
    categories = [{"id": cid, "name": n, "supercategory": "shapes"} for cid, n in zip(category_ids, NAMES, strict=True)]
    if placeholder:  # Roboflow lists the dataset itself as category 0, the others' supercategory
        categories.insert(0, {"id": 0, "name": "shapes", "supercategory": "none"})
    return {"info": {}, "images": images, "annotations": annotations, "categories": categories}


def coco_counts(doc: dict) -> dict[str, int]:
    """Boxes per class name in a COCO document, as convert_coco keeps them (no crowd, width and height > 0)."""
    names = {c["id"]: c["name"] for c in doc["categories"]}
    kept = [a for a in doc["annotations"] if not a.get("iscrowd") and a["bbox"][2] > 0 and a["bbox"][3] > 0]
    return dict(Counter(names[a["category_id"]] for a in kept))


def coco_zip(
    path: Path, style: str = "roboflow", edit: Callable[[str, dict], None] | None = None
) -> tuple[Path, dict[str, dict]]:
    """A COCO JSON export and its documents per split.

    ``roboflow``: ``train/_annotations.coco.json`` beside the images, category 0 a placeholder, classes 1..4.
    ``coco``: one top folder, ``annotations/instances_train2017.json`` and ``train2017/`` image folders, category ids
    that are not contiguous (3, 7, 11, 20), as in COCO's own 91-id list.
    ``edit(split, document)`` may change a document before it is written.
    """
    docs = {}
    with zipfile.ZipFile(path, "w") as z:
        for split, folder in SPLITS.items():
            if style == "roboflow":
                doc = coco_document(split, [1, 2, 3, 4], placeholder=True)
                name, prefix = f"{folder}/_annotations.coco.json", f"{folder}/"
            else:
                doc = coco_document(split, [3, 7, 11, 20], placeholder=False)
                name, prefix = f"shapes/annotations/instances_{split}2017.json", f"shapes/{split}2017/"
            if edit is not None:
                edit(split, doc)
            z.writestr(name, json.dumps(doc))
            for im in demo_images(split):
                z.write(im, prefix + im.name)
            docs[split] = doc
    return path, docs
