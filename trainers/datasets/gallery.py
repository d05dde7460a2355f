"""A split as the dataset page shows it: every image with its boxes, size and label problems, problems first.

:func:`scan_split` lists a split's images (:mod:`~trainers.datasets.files`), reads every label file at once and parses
the rows with numpy (:mod:`~trainers.datasets.label_rows`), reads each image's size from its header
(:mod:`~trainers.datasets.image_headers`) and finds the label files no image maps to. No image is decoded: on 10,000
small images the scan takes ~0.5 s on 2 shared cores (``benchmarks/bench_dataset_page.py``); thumbnails are made only
for the images shown (:mod:`~trainers.datasets.thumbnails`).

The problems, in the order the page lists them (:class:`Problem`): label files without an image, corrupt images,
label files that do not parse, class ids out of range, boxes outside the image, empty label files, boxes under 2 px and
duplicate boxes. Each image's problems are named in words (``line 3: class id 7 is out of range (0-3)``), with what
ultralytics does about it. The first five make ultralytics drop the image (or, for an orphan, never read the file).

This module is imported by the Streamlit UI process, so it must stay light: numpy only, never torch or ultralytics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from trainers.datasets.dataset import Dataset
from trainers.datasets.files import image_file_strs, label_file_str, orphan_label_files, read_label_files
from trainers.datasets.image_headers import scan_headers
from trainers.datasets.label_rows import LabelRows, parse_label_rows

__all__ = ["MIN_BOX_PX", "Issue", "Problem", "SplitScan", "scan_split"]

MIN_BOX_PX = 2.0  # a box narrower or lower than this, in pixels of its image, teaches nothing and is usually a slip


class Problem(str, Enum):
    """A kind of label problem, most serious first (the order the page lists images in); its word is stable."""

    label: str
    dropped: bool

    def __new__(cls, value: str, label: str, dropped: bool) -> Problem:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.dropped = dropped
        return member

    ORPHAN = ("orphan_label", "label file without an image", True)  # ultralytics never reads it
    CORRUPT = ("corrupt_image", "corrupt image", True)
    MALFORMED = ("malformed_label", "label file that does not parse", True)
    CLASS_ID = ("class_id", "class id out of range", True)
    OUTSIDE = ("outside", "box outside the image", True)
    EMPTY = ("empty_label", "empty label file", False)  # trained as background: fine if meant, a slip if not
    TINY = ("tiny_box", f"box under {MIN_BOX_PX:g} px", False)
    DUPLICATE = ("duplicate_box", "duplicate box", False)  # ultralytics removes exact duplicates

    @property
    def rank(self) -> int:
        return list(Problem).index(self)


@dataclass(frozen=True)
class Issue:
    """One problem of one image (or orphan label file), named in words for the page."""

    problem: Problem
    text: str


@dataclass(frozen=True)
class SplitScan:
    """A split's images (then its orphan label files) with their boxes, sizes and problems.

    Items are the split's images in path order, then its orphan label files; item ``i`` has the label file
    ``labels[i]`` and the rows of ``rows`` whose ``file`` is ``i``.

    Attributes:
        split: The split name.
        root: The dataset root (paths are shown relative to it).
        names: Class names in id order.
        items: Image paths, then orphan label file paths.
        n_images: How many of ``items`` are images.
        labels: The label file of each item (an orphan is its own).
        has_label: Whether each item's label file exists.
        width: Image width per item in pixels (-1: unknown, or an orphan).
        height: As ``width``.
        rows: Every label row (of the files that parse).
        issues: Item index -> its problems, worst first (only the items with one).
        order: Item indices, those with problems first (worst problem first, then by path), then the rest by path.
        trained: Per row, whether ultralytics trains on it: a valid class id in an image it does not drop.
    """

    split: str
    root: str
    names: list[str]
    items: list[str]
    n_images: int
    labels: list[str]
    has_label: np.ndarray
    width: np.ndarray
    height: np.ndarray
    rows: LabelRows
    issues: dict[int, list[Issue]]
    order: np.ndarray
    trained: np.ndarray = field(repr=False)

    @property
    def nc(self) -> int:
        return len(self.names)

    def relative(self, path: str) -> str:
        """``path`` relative to the dataset root when under it."""
        base = self.root + os.sep
        return path[len(base) :] if path.startswith(base) else path

    def counts(self) -> tuple[list[int], list[int]]:
        """Boxes per class and images per class, over the rows ultralytics trains on (not those of dropped images)."""
        cls = self.rows.cls[self.trained].astype(np.int64)
        instances = np.bincount(cls, minlength=self.nc)
        pairs = np.unique(self.rows.file[self.trained] * max(self.nc, 1) + cls)
        images = np.bincount(pairs % max(self.nc, 1), minlength=self.nc)
        return instances.tolist(), images.tolist()

    def box_pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class id, width and height in pixels of every trained box whose image size is known."""
        keep = self.trained & (self.width[self.rows.file] > 0)
        f = self.rows.file[keep]
        return (
            self.rows.cls[keep].astype(np.int64),
            self.rows.box[keep, 2] * self.width[f],
            self.rows.box[keep, 3] * self.height[f],
        )

    def image_sizes(self) -> dict[tuple[int, int], int]:
        """``(width, height)`` -> number of images of that size (images whose header was read), most common first."""
        w, h = self.width[: self.n_images], self.height[: self.n_images]
        known = w > 0
        sizes, counts = np.unique(np.stack([w[known], h[known]], 1), axis=0, return_counts=True)
        return {(int(a), int(b)): int(n) for (a, b), n in sorted(zip(sizes, counts, strict=True), key=lambda x: -x[1])}

    def shown(self, cls: int | None = None, problems_only: bool = False) -> np.ndarray:
        """Item indices in page order, keeping those with a box of class ``cls`` and/or with a problem."""
        order = self.order
        if cls is not None:
            has = np.zeros(len(self.items), dtype=bool)
            has[self.rows.file[self.rows.cls == cls]] = True
            order = order[has[order]]
        if problems_only:
            flagged = np.zeros(len(self.items), dtype=bool)
            flagged[list(self.issues)] = True
            order = order[flagged[order]]
        return order

    def item_rows(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Class ids as written (float) and ``(n, 4)`` normalised boxes of one item's rows."""
        lo, hi = np.searchsorted(self.rows.file, [item, item + 1])
        return self.rows.cls[lo:hi], self.rows.box[lo:hi]

    def valid_class(self, cls: np.ndarray) -> np.ndarray:
        """Per class id as written: whether it names a class (an integer in ``0..nc-1``)."""
        return (cls >= 0) & (cls < self.nc) & (cls % 1 == 0)


def scan_split(ds: Dataset, split: str = "train") -> SplitScan:
    """Scan one split: boxes, image sizes and problems of every image, and its orphan label files.

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.

    Returns:
        The scan, problems first in :attr:`SplitScan.order`.

    Raises:
        DatasetError: The split is not defined or has no images, or a label file cannot be read.
    """
    images = image_file_strs(ds, split)
    labels = [label_file_str(p) for p in images]
    orphans = orphan_label_files(ds, split, labels)
    items, all_labels = images + orphans, labels + orphans
    contents = read_label_files(all_labels)
    rows = parse_label_rows(contents)
    headers = scan_headers(images)
    n, nc = len(images), ds.nc
    width = np.concatenate([headers.width, np.full(len(orphans), -1, np.int32)])
    height = np.concatenate([headers.height, np.full(len(orphans), -1, np.int32)])

    issues: dict[int, list[Issue]] = {}

    def add(item: int, problem: Problem, text: str) -> None:
        issues.setdefault(item, []).append(Issue(problem, text))

    per_file = np.bincount(rows.file, minlength=len(items))
    for i in range(n, len(items)):
        boxes = int(per_file[i])
        text = f"label file without an image ({boxes} box{'es' * (boxes != 1)}): ultralytics never reads it"
        add(i, Problem.ORPHAN, text)
    for i, text in headers.problems.items():
        add(i, Problem.CORRUPT, text)
    for i, text in rows.malformed.items():
        if i < n:
            add(i, Problem.MALFORMED, f"label file does not parse: {text}; ultralytics drops this image")
    cls = rows.cls
    bad_id = ~((cls >= 0) & (cls < nc) & (cls % 1 == 0))  # SplitScan.valid_class, before the scan exists
    for r in _first_row_per_image(rows, bad_id, n):
        text = f"line {rows.line[r]}: class id {cls[r]:g} is out of range (0-{nc - 1}): ultralytics drops this image"
        add(int(rows.file[r]), Problem.CLASS_ID, text)
    for r in _first_row_per_image(rows, rows.outside, n):
        text = f"line {rows.line[r]}: box outside the image (coordinates beyond 0-1): ultralytics drops this image"
        add(int(rows.file[r]), Problem.OUTSIDE, text)
    has_label = np.array([c is not None for c in contents], dtype=bool)
    for i in np.flatnonzero(has_label[:n] & (per_file[:n] == 0)).tolist():
        if i not in rows.malformed:
            add(i, Problem.EMPTY, "empty label file: trained as background (no boxes)")

    dropped = np.zeros(len(items), dtype=bool)
    dropped[n:] = True
    for i, found in issues.items():
        dropped[i] |= any(issue.problem.dropped for issue in found)
    trained = ~dropped[rows.file] & ~bad_id
    f = rows.file
    px_w, px_h = rows.box[:, 2] * width[f], rows.box[:, 3] * height[f]
    tiny = trained & (width[f] > 0) & ((px_w < MIN_BOX_PX) | (px_h < MIN_BOX_PX))
    for i, k in _count_per_item(rows, tiny):
        add(i, Problem.TINY, f"{k} box{'es' * (k > 1)} under {MIN_BOX_PX:g} px")
    for i, k in _count_per_item(rows, trained & _duplicates(rows)):
        add(i, Problem.DUPLICATE, f"{k} duplicate box{'es' * (k > 1)} (same class and coordinates): ultralytics "
            "keeps one")  # fmt: skip

    for found in issues.values():
        found.sort(key=lambda issue: issue.problem.rank)
    rank = np.full(len(items), len(Problem), dtype=np.int64)
    for i, found in issues.items():
        rank[i] = found[0].problem.rank
    order = np.lexsort((np.arange(len(items)), rank))
    return SplitScan(
        split=split, root=os.fspath(ds.root), names=list(ds.names), items=items, n_images=n, labels=all_labels,
        has_label=has_label, width=width, height=height, rows=rows, issues=issues, order=order, trained=trained,
    )  # fmt: skip


def _first_row_per_image(rows: LabelRows, mask: np.ndarray, n: int) -> list[int]:
    """The first flagged row of each image (rows are in file order; an orphan's rows are not an image's problem)."""
    flagged = np.flatnonzero(mask & (rows.file < n))
    if not flagged.size:
        return []
    files = rows.file[flagged]
    return flagged[np.concatenate(([True], files[1:] != files[:-1]))].tolist()


def _count_per_item(rows: LabelRows, mask: np.ndarray) -> list[tuple[int, int]]:
    files, counts = np.unique(rows.file[mask], return_counts=True)
    return list(zip(files.tolist(), counts.tolist(), strict=True))


def _duplicates(rows: LabelRows) -> np.ndarray:
    """Per row: an exact copy (class and coordinates) of an earlier row of the same file."""
    if not rows.file.size:
        return np.zeros(0, dtype=bool)
    keys = (rows.box[:, 3], rows.box[:, 2], rows.box[:, 1], rows.box[:, 0], rows.cls, rows.file)
    order = np.lexsort(keys)
    table = np.column_stack([rows.file, rows.cls, rows.box])[order]
    same = np.concatenate(([False], (table[1:] == table[:-1]).all(1)))
    out = np.zeros(rows.file.size, dtype=bool)
    out[order] = same
    return out
