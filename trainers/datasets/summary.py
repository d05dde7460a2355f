"""What a split really trains on, and what it leaves out: the dataset summary of ``workbench counts`` and the UI.

ultralytics lists a split's images and maps each one to its label file. So a label file without an image is skipped
without a word, and a user wonders why their label files hold more boxes than the counts show. An image without a
label file trains as background. :func:`summarize_split` returns the per-class counts (what ultralytics' label cache
holds for the same files) together with both lists; :func:`dataset_notes` turns them into the lines the CLI prints
and the New run / Class weights pages show.

Where the counts still differ from ultralytics' cache (measured on 8.4.190): it removes exact duplicate rows of a
label file ("N duplicate labels removed"), which we count; it drops the boxes of images it finds corrupt
(:func:`trainers.datasets.corrupt_images.find_corrupt_images` lists those); and it also trains on
avif/dng/heic/heif/jp2/mpo
images, which the workbench does not list (their label files show up here as label files without an image).

This module is imported by the Streamlit UI process, so it must stay light: numpy only, never torch or ultralytics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trainers.datasets.dataset import Dataset
from trainers.datasets.files import image_file_strs, label_file_str, orphan_label_files, read_label_files
from trainers.datasets.label_counts import ClassCounts, count_label_contents
from trainers.errors import DatasetError

__all__ = ["SplitSummary", "dataset_notes", "summarize_split"]

FIRST = 10  # paths listed in to_dict() for the images without a label file (the count is exact)


@dataclass(frozen=True)
class SplitSummary:
    """The label counts of a split, with the label files it skips and the images it trains as background.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        root: The dataset root, to show paths relative to it.
        counts: Per-class counts over the images of the split (what ultralytics trains on).
        images_without_labels: Images with no label file (background), sorted.
        orphan_labels: Label files no image maps to (ultralytics never reads them), sorted.
        orphan_instances: Boxes per class in those files (files that do not parse are not counted).
        orphan_malformed: Orphan label files whose rows do not parse (listed in ``orphan_labels`` too).
    """

    split: str
    root: Path
    counts: ClassCounts
    images_without_labels: list[str]
    orphan_labels: list[str]
    orphan_instances: list[int]
    orphan_malformed: list[str]

    @property
    def n_empty_labels(self) -> int:
        """Images whose label file exists but holds no box (background too)."""
        return self.counts.n_background - len(self.images_without_labels)

    def to_dict(self, first: int = FIRST) -> dict:
        """Return a JSON-ready dict: every orphan path, and the count plus the first paths of the backgrounds."""
        return {
            "split": self.split,
            "counts": self.counts.to_dict(),
            "orphan_labels": list(self.orphan_labels),
            "orphan_instances": list(self.orphan_instances),
            "orphan_malformed": list(self.orphan_malformed),
            "images_without_labels": {
                "count": len(self.images_without_labels),
                "first": self.images_without_labels[:first],
            },
            "n_empty_labels": self.n_empty_labels,
        }


def summarize_split(ds: Dataset, split: str = "train", *, require_labels: bool = False) -> SplitSummary:
    """Count a split's labels and find its orphan label files and its images without a label file.

    Reads each label file once (the counts and the background list come from the same read). The orphan search adds
    one directory scan of the labels folder: 0.85 s against 0.74 s for
    :func:`~trainers.datasets.label_counts.count_labels`
    alone on 100k label files (``benchmarks/bench_counts.py``, 2 shared cores, page cache warm), and ~0.13 s more
    when label files without a listed image are found (one scan of their image folder to be sure).

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.
        require_labels: Raise when the split's images hold no box at all.

    Returns:
        The summary.

    Raises:
        DatasetError: As :func:`~trainers.datasets.label_counts.count_labels` (a bad row in a label file an image maps
        to).
            Orphan label files never raise: ultralytics does not read them, so they cannot break a run.
    """
    images = image_file_strs(ds, split)
    labels = [label_file_str(p) for p in images]
    contents = read_label_files(labels)
    counts = count_label_contents(ds, split, labels, contents, require_labels=require_labels)
    missing = [images[i] for i, c in enumerate(contents) if c is None]
    orphans = orphan_label_files(ds, split, labels)
    instances, malformed = _count_orphans(ds, split, orphans)
    return SplitSummary(
        split=split,
        root=ds.root,
        counts=counts,
        images_without_labels=missing,
        orphan_labels=orphans,
        orphan_instances=instances,
        orphan_malformed=malformed,
    )


def _count_orphans(ds: Dataset, split: str, orphans: list[str]) -> tuple[list[int], list[str]]:
    if not orphans:
        return [0] * ds.nc, []
    contents = read_label_files(orphans)
    try:
        return count_label_contents(ds, split, orphans, contents).instances, []
    except DatasetError:  # some orphan does not parse: count file by file, keeping those that do
        pass
    total, malformed = [0] * ds.nc, []
    for path, content in zip(orphans, contents, strict=True):
        try:
            one = count_label_contents(ds, split, [path], [content]).instances
        except DatasetError:
            malformed.append(path)
            continue
        total = [a + b for a, b in zip(total, one, strict=True)]
    return total, malformed


def dataset_notes(summary: SplitSummary, first: int = 3) -> list[str]:
    """Human lines about what the split skips or trains as background; empty when there is nothing to say.

    The CLI prints them under the counts table; the New run dataset summary and the Class weights caption show them.

    Args:
        summary: From :func:`summarize_split`.
        first: How many file names each line shows before "and N more".

    Returns:
        Lines such as ``2 label files without an image (skipped in training, 5 boxes): labels/train/a.txt, ...``.
    """
    notes = []
    orphans = summary.orphan_labels
    if orphans:
        boxes = sum(summary.orphan_instances)
        bad = len(summary.orphan_malformed)
        unparsed = f"; {bad} {'does' if bad == 1 else 'do'} not parse as labels" if bad else ""
        notes.append(
            f"{_plural(len(orphans), 'label file')} without an image (skipped in training, "
            f"{_plural(boxes, 'box', 'boxes')}{unparsed}): {_names(orphans, summary.root, first)}"
        )
        names = summary.counts.names
        only = [names[c] for c, n in enumerate(summary.orphan_instances) if n and not summary.counts.instances[c]]
        if only:
            listed = ", ".join(f"'{n}'" for n in only)
            has = "class {} has" if len(only) == 1 else "classes {} have"
            notes.append(f"{has.format(listed)} boxes only in label files without an image (none to train on)")
    missing = summary.images_without_labels
    if missing:
        notes.append(
            f"{_plural(len(missing), 'image')} without a label file (background): "
            f"{_names(missing, summary.root, first)}"
        )
    return notes


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _names(paths: list[str], root: Path, first: int) -> str:
    base = os.fspath(root) + os.sep
    shown = ", ".join(p[len(base) :] if p.startswith(base) else p for p in paths[:first])
    return shown + (f" and {len(paths) - first} more" if len(paths) > first else "")
