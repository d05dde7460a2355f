"""Evidence folders written directly (no training) through :mod:`trainers.telemetry.evidence`'s own writer, for the
tests of the dashboard's evidence tabs and the Compare page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from trainers.telemetry.evidence import PR_POINTS, write_epoch, write_sample


def names_of(nc: int) -> list[str]:
    return [f"class_{i:02d}" for i in range(nc)]


def diagonal(nc: int, boxes: int = 10) -> np.ndarray:
    """A ``[pred, true]`` matrix (background last) where every class's ``boxes`` are all found right."""
    m = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    m[np.arange(nc), np.arange(nc)] = boxes
    return m


def taken_for(matrix: np.ndarray, true: int, pred: int, boxes: int) -> np.ndarray:
    """``matrix`` with ``boxes`` of class ``true`` moved from right to predicted as ``pred`` (the column sum stays)."""
    m = matrix.copy()
    m[true, true] -= boxes
    m[pred, true] += boxes
    return m


def confusion_columns(matrix: np.ndarray) -> dict[str, np.ndarray]:
    pred, true = np.nonzero(matrix)
    return {"pred": pred, "true": true, "count": matrix[pred, true]}


def pr_columns(precision: Mapping[int, float]) -> dict[str, np.ndarray]:
    """Flat curves: class -> its precision at every recall point (AP50 = that precision)."""
    recall = np.linspace(0, 1, PR_POINTS)
    classes = sorted(precision)
    return {
        "cls": np.repeat(classes, PR_POINTS),
        "recall": np.tile(recall, len(classes)),
        "precision": np.concatenate([np.full(PR_POINTS, precision[c]) for c in classes]) if classes else np.zeros(0),
    }


def sample_images(folder: Path, n: int = 2, size: tuple[int, int] = (64, 48)) -> list[dict]:
    """``n`` small image files (a grey picture each) as the sample's ``{"file", "width", "height"}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"img_{i}.jpg"
        Image.new("RGB", size, (60 + 40 * i, 90, 120)).save(path)
        out.append({"file": str(path), "width": size[0], "height": size[1]})
    return out


def box_columns(rows: Sequence[tuple[int, int, int, float, float, float, float, float]]) -> dict[str, np.ndarray]:
    """Rows ``(image, kind, cls, conf, x1, y1, x2, y2)`` as the boxes table's columns."""
    a = np.asarray(rows, dtype=np.float32).reshape(-1, 8)
    return {k: a[:, i] for i, k in enumerate(("image", "kind", "cls", "conf", "x1", "y1", "x2", "y2"))}


def write_evidence(
    run_dir: Path,
    names: Sequence[str],
    matrices: Mapping[int | str, np.ndarray],
    precision: Mapping[int | str, Mapping[int, float]] | None = None,
    images: Sequence[dict] = (),
    boxes: Mapping[int | str, Sequence[tuple]] | None = None,
) -> None:
    """A run's evidence: the sample (``images``, ``names``) and, per epoch, its matrix, PR curves and sample boxes."""
    write_sample(run_dir, list(images), list(names))
    for epoch, matrix in matrices.items():
        write_epoch(run_dir, epoch, {
            "confusion": confusion_columns(matrix),
            "pr": pr_columns((precision or {}).get(epoch, {})),
            "boxes": box_columns((boxes or {}).get(epoch, [])),
        })  # fmt: skip
