"""A small dataset with one of each label problem planted, beside clean images, for the dataset page's tests.

Each planted file is named after its problem (``images/train/dup.jpg`` holds a duplicate box), and :data:`PLANTED`
maps the name to the :class:`~trainers.datasets.gallery.Problem` the scan must find and a piece of the words it must
show. Images are 96 x 64 JPEGs with coloured rectangles where their boxes are.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from trainers.datasets.gallery import Problem

NAMES = ["cat", "dog", "bird"]
W, H = 96, 64
CLEAN = 12  # clean images, clean-00 .. clean-11
BOX = "0.500000 0.500000 0.400000 0.400000"
# name -> (problem, words the scan shows, label file text or None for no label file)
PLANTED: dict[str, tuple[Problem, str, str | None]] = {
    "orphan": (Problem.ORPHAN, "label file without an image (1 box)", f"1 {BOX}\n"),
    "cut": (Problem.CORRUPT, "JPEG without its end marker", f"0 {BOX}\n"),
    "text": (Problem.CORRUPT, "not a JPEG, PNG, BMP, WEBP or TIFF image", f"0 {BOX}\n"),
    "short": (Problem.MALFORMED, "line 2: expected 5 values", f"0 {BOX}\n0 0.5 0.5 0.2\n"),
    # 3 with 3 classes: the usual slip of 1-based ids
    "badid": (Problem.CLASS_ID, "line 1: class id 3 is out of range (0-2)", f"3 {BOX}\n1 {BOX}\n5 {BOX}\n"),
    "outside": (Problem.OUTSIDE, "line 1: box outside the image", "2 1.500000 0.500000 0.200000 0.200000\n"),
    "empty": (Problem.EMPTY, "empty label file", ""),
    "tiny": (Problem.TINY, "1 box under 2 px", f"0 {BOX}\n1 0.500000 0.500000 0.010000 0.300000\n"),
    "dup": (Problem.DUPLICATE, "1 duplicate box", f"2 {BOX}\n2 {BOX}\n0 0.250000 0.250000 0.200000 0.200000\n"),
}


def _jpeg(rows: list[list[float]]) -> bytes:
    im = Image.new("RGB", (W, H), (70, 80, 90))
    draw = ImageDraw.Draw(im)
    for c, x, y, w, h in rows:
        colour = [(230, 60, 60), (60, 200, 60), (60, 90, 230)][int(c) % 3]
        x0, y0 = (x - w / 2) * W, (y - h / 2) * H
        draw.rectangle([x0, y0, max(x0, (x + w / 2) * W - 1), max(y0, (y + h / 2) * H - 1)], fill=colour)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def _rows(text: str | None) -> list[list[float]]:
    rows = [[float(v) for v in line.split()] for line in (text or "").splitlines() if line.strip()]
    return [r for r in rows if len(r) == 5 and r[0] < len(NAMES)]


def make_problem_dataset(root: Path) -> Path:
    """Write the dataset under ``root`` (train: the clean images and the planted ones; val: 3 clean images) and
    return its data.yaml."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for split, n in (("train", CLEAN), ("val", 3)):
        for i in range(n):
            text = f"{i % 3} {BOX}\n{(i + 1) % 3} 0.200000 0.250000 0.200000 0.300000\n"
            (root / "images" / split / f"clean-{i:02d}.jpg").write_bytes(_jpeg(_rows(text)))
            (root / "labels" / split / f"clean-{i:02d}.txt").write_text(text)
    for name, (_, _, text) in PLANTED.items():
        if text is not None:
            (root / "labels" / "train" / f"{name}.txt").write_text(text)
        if name == "orphan":
            continue
        jpeg = _jpeg(_rows(text))
        if name == "cut":
            jpeg = jpeg[: len(jpeg) * 2 // 3]
        elif name == "text":
            jpeg = b"this is not an image\n"
        (root / "images" / "train" / f"{name}.jpg").write_bytes(jpeg)
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    return data
