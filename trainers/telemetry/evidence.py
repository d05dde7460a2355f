"""Per-epoch evidence of a run: what the validator saw and predicted, kept from its own pass (docs/telemetry.md).

A run folder's ``evidence/`` holds::

    sample.json          the fixed sample of val images (chosen once per run, rare classes first)
    epoch-0003/          one folder per validation, written whole and renamed into place
        boxes.parquet      ground truth and predicted boxes of the sample images
        confusion.parquet  the confusion matrix counts at confidence >= CONFUSION_CONF, background row and column
                           included (non-zero cells)
        pr.parquet         per-class precision at 101 recall points (IoU 0.5)
        unlabelled.parquet confident predictions (conf >= UNLABELLED_CONF) that overlap no ground-truth box,
                           over every val image: the "likely missing labels" candidates
    final/               the same for the final evaluation of best.pt

A resumed attempt that redoes an epoch replaces its folder. The writer takes numpy arrays; this module imports
neither torch nor ultralytics (the UI reads evidence through :class:`Evidence`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trainers.run_files import EVIDENCE_DIR, write_json_atomic

SAMPLE_SIZE = 16  # default number of sample images (the recipe's evidence.sample)
SAMPLE_FILE = "sample.json"
FINAL = "final"  # folder of the final evaluation's evidence
PRED_MIN_CONF = 0.05  # predictions of sample images kept from this confidence ...
PRED_PER_IMAGE = 100  # ... at most this many per image (highest confidence first)
UNLABELLED_CONF = 0.8  # a prediction this confident that overlaps no label is a missing-label candidate
UNLABELLED_IOU = 0.3  # "overlaps": IoU with any ground-truth box at or above this
UNLABELLED_KEEP = 200  # candidates kept per epoch (most confident first)
CONFUSION_CONF = 0.25  # predictions counted in the confusion matrix from this confidence (ultralytics' default)
PR_POINTS = 101  # recall grid 0, 0.01, ..., 1
TABLES = ("boxes", "confusion", "pr", "unlabelled")
GT, PRED = 0, 1  # boxes.kind

_BOX = [("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32())]  # xyxy, pixels
SCHEMAS = {
    "boxes": pa.schema(
        [("image", pa.int16()), ("kind", pa.uint8()), ("cls", pa.int16()), ("conf", pa.float32()), *_BOX]
    ),
    "confusion": pa.schema([("pred", pa.int16()), ("true", pa.int16()), ("count", pa.int32())]),
    "pr": pa.schema([("cls", pa.int16()), ("recall", pa.float32()), ("precision", pa.float32())]),
    "unlabelled": pa.schema([("file", pa.string()), ("cls", pa.int16()), ("conf", pa.float32()), *_BOX]),
}


# ---- the sample --------------------------------------------------------------------------------------------------
def choose_sample(classes_per_image: Sequence[Sequence[int]], size: int = SAMPLE_SIZE) -> list[int]:
    """Indices of ``size`` images such that every class appears where possible, rare classes first.

    Classes are taken from the rarest (fewest images) up; for each one not yet shown, the image showing it and the
    most other classes not yet shown is added. Images left over are filled in evenly spaced over the split, labelled
    ones first. Deterministic: the same split gives the same sample.
    """
    n = len(classes_per_image)
    size = min(size, n)
    sets = [set(int(c) for c in cs) for cs in classes_per_image]
    images_of: dict[int, list[int]] = {}
    for i, cs in enumerate(sets):
        for c in cs:
            images_of.setdefault(c, []).append(i)
    chosen: list[int] = []
    shown: set[int] = set()
    for c in sorted(images_of, key=lambda c: (len(images_of[c]), c)):
        if len(chosen) >= size:
            break
        if c in shown:
            continue
        best = max(images_of[c], key=lambda i: (len(sets[i] - shown), -i))
        chosen.append(best)
        shown |= sets[best]
    rest = [i for i in range(n) if i not in set(chosen)]
    rest.sort(key=lambda i: not sets[i])  # labelled images first, in split order
    need = size - len(chosen)
    if need > 0 and rest:
        step = len(rest) / need
        chosen += [rest[int(k * step)] for k in range(need)]
    return chosen


def write_sample(run_dir: str | os.PathLike[str], images: list[dict[str, Any]], names: list[str]) -> None:
    """Record the sample: ``images`` as ``{"file", "width", "height"}`` in sample order, and the class names."""
    folder = Path(run_dir) / EVIDENCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / SAMPLE_FILE, {"version": 1, "names": names, "images": images})


def read_sample(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The recorded sample (``{"names", "images"}``), or None when the run has none."""
    try:
        return json.loads((Path(run_dir) / EVIDENCE_DIR / SAMPLE_FILE).read_text())
    except (OSError, ValueError):
        return None


# ---- writing an epoch --------------------------------------------------------------------------------------------
def epoch_folder_name(epoch: int | str) -> str:
    return FINAL if epoch == FINAL else f"epoch-{int(epoch):04d}"


def write_epoch(run_dir: str | os.PathLike[str], epoch: int | str, tables: dict[str, dict[str, np.ndarray]]) -> int:
    """Write one validation's tables (column name -> array, see :data:`SCHEMAS`) as ``epoch-NNNN/``; return bytes.

    The folder is written under a temporary name and renamed into place, so a reader sees all of an epoch or none
    of it; an earlier folder of the same epoch (a resumed attempt redoing it) is replaced.
    """
    root = Path(run_dir) / EVIDENCE_DIR
    name = epoch_folder_name(epoch)
    tmp, old, final = root / f".{name}.tmp", root / f".{name}.old", root / name
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
    size = 0
    for table in TABLES:
        schema = SCHEMAS[table]
        columns = tables.get(table) or {}
        data = pa.table(
            {f.name: pa.array(np.asarray(columns[f.name]) if f.name in columns else [], type=f.type) for f in schema},
            schema=schema,
        )
        path = tmp / f"{table}.parquet"
        pq.write_table(data, path, compression="zstd")
        size += path.stat().st_size
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return size


# ---- reading -----------------------------------------------------------------------------------------------------
def evidence_epochs(run_dir: str | os.PathLike[str]) -> list[int | str]:
    """The validations with evidence, in order: epoch numbers, then ``"final"`` if the final evaluation has some."""
    root = Path(run_dir) / EVIDENCE_DIR
    try:
        names = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    epochs: list[int | str] = sorted(int(n.split("-", 1)[1]) for n in names if n.startswith("epoch-"))
    return epochs + ([FINAL] if FINAL in names else [])


@dataclass(frozen=True)
class EpochEvidence:
    """One validation's evidence, read lazily table by table."""

    folder: Path
    epoch: int | str
    nc: int

    def table(self, name: str) -> pa.Table:
        path = self.folder / f"{name}.parquet"
        return pq.read_table(path) if path.exists() else SCHEMAS[name].empty_table()

    @cached_property
    def boxes(self) -> dict[str, np.ndarray]:
        return {k: v.to_numpy() for k, v in zip(SCHEMAS["boxes"].names, self.table("boxes").columns, strict=True)}

    @cached_property
    def confusion(self) -> np.ndarray:
        """The matrix, ``[predicted, true]`` as ultralytics lays it out; row and column ``nc`` are background."""
        t = self.table("confusion")
        m = np.zeros((self.nc + 1, self.nc + 1), dtype=np.int64)
        if t.num_rows:
            np.add.at(m, (t["pred"].to_numpy(), t["true"].to_numpy()), t["count"].to_numpy())
        return m

    def pr_curve(self, cls: int) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision) of class ``cls``; empty when it has no curve at this epoch (not in the val split)."""
        t = self.table("pr")
        mask = t["cls"].to_numpy() == cls
        return t["recall"].to_numpy()[mask], t["precision"].to_numpy()[mask]

    @cached_property
    def unlabelled(self) -> pa.Table:
        return self.table("unlabelled")


class Evidence:
    """A run's evidence: its sample and the validations that have evidence. The one reader (UI, CLI, doctor)."""

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        sample = read_sample(self.run_dir) or {}
        self.names: list[str] = list(sample.get("names") or [])
        self.images: list[dict[str, Any]] = list(sample.get("images") or [])
        self.epochs = evidence_epochs(self.run_dir)

    def __bool__(self) -> bool:
        return bool(self.epochs)

    @property
    def numbered_epochs(self) -> list[int]:
        return [e for e in self.epochs if e != FINAL]  # type: ignore[misc]

    def epoch(self, epoch: int | str) -> EpochEvidence:
        return EpochEvidence(self.run_dir / EVIDENCE_DIR / epoch_folder_name(epoch), epoch, len(self.names))


def class_box_counts(confusion: np.ndarray) -> np.ndarray:
    """Ground-truth boxes per class: the matrix's column sums, background column left out."""
    return confusion[:, :-1].sum(axis=0)


def top_confusions(confusion: np.ndarray, names: Sequence[str], limit: int = 20) -> list[dict[str, Any]]:
    """The class pairs most often confused: true class A predicted as B (A != B, background left out), by the share
    of A's boxes, largest first: ``{"true", "pred", "count", "share"}``."""
    nc = len(names)
    counts = class_box_counts(confusion)
    off = confusion[:nc, :nc].astype(float).T  # [true, pred]
    np.fill_diagonal(off, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(counts[:, None] > 0, off / counts[:, None], 0.0)
    order = np.argsort(-share, axis=None, kind="stable")[:limit]
    out = []
    for flat in order:
        a, b = divmod(int(flat), nc)
        if off[a, b] <= 0:
            break
        out.append({"true": names[a], "pred": names[b], "count": int(off[a, b]), "share": float(share[a, b])})
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (n, 4) and ``b`` (m, 4): an (n, m) array."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


# What each box of a sample image is at a confidence threshold (:func:`box_verdicts`).
FOUND, MISSED = "found", "missed"  # ground truth
CORRECT, WRONG_CLASS, BACKGROUND = "correct", "wrong class", "background"  # predictions at or above the threshold


def box_verdicts(boxes: dict[str, np.ndarray], image: int, conf: float, iou_min: float = 0.5) -> dict[int, str]:
    """``{row: verdict}`` for the boxes of one sample image at confidence ``conf`` (row: index into ``boxes``).

    Predictions at or above ``conf`` are matched greedily, most confident first, to an unmatched ground-truth box of
    the same class with IoU >= ``iou_min`` (:data:`CORRECT`); one that matches none is :data:`WRONG_CLASS` when it
    overlaps a box of another class that much, else :data:`BACKGROUND`. Ground-truth boxes are :data:`FOUND` or
    :data:`MISSED`. Predictions below ``conf`` get no verdict. The one matching rule of the tiles' counts
    (:func:`image_errors`) and the opened image's box list.
    """
    on = boxes["image"] == image
    xyxy = np.stack([boxes[k] for k in ("x1", "y1", "x2", "y2")], axis=1)
    gt_rows = np.flatnonzero(on & (boxes["kind"] == GT))
    pred_rows = np.flatnonzero(on & (boxes["kind"] == PRED) & (boxes["conf"] >= conf))
    pred_rows = pred_rows[np.argsort(-boxes["conf"][pred_rows], kind="stable")]
    g_cls, p_cls = boxes["cls"][gt_rows], boxes["cls"][pred_rows]
    overlaps = iou(xyxy[pred_rows], xyxy[gt_rows])
    taken = np.zeros(len(gt_rows), dtype=bool)
    verdicts: dict[int, str] = {}
    for i, row in enumerate(pred_rows):
        near = overlaps[i] >= iou_min if len(gt_rows) else np.zeros(0, dtype=bool)
        ok = (~taken) & (g_cls == p_cls[i]) & near
        if ok.any():
            taken[int(np.argmax(np.where(ok, overlaps[i], -1)))] = True
            verdicts[int(row)] = CORRECT
        else:
            verdicts[int(row)] = WRONG_CLASS if (near & (g_cls != p_cls[i])).any() else BACKGROUND
    verdicts.update({int(row): FOUND if hit else MISSED for row, hit in zip(gt_rows, taken, strict=True)})
    return verdicts


def image_errors(boxes: dict[str, np.ndarray], image: int, conf: float, iou_min: float = 0.5) -> tuple[int, int]:
    """(missed ground-truth boxes, false predicted boxes) of one sample image at confidence ``conf``
    (:func:`box_verdicts`)."""
    verdicts = list(box_verdicts(boxes, image, conf, iou_min).values())
    return verdicts.count(MISSED), verdicts.count(WRONG_CLASS) + verdicts.count(BACKGROUND)
