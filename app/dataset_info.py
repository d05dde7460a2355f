"""Datasets as the UI shows them: class names and label counts per split, or the one-line error (no Streamlit)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.errors import WorkbenchError


@dataclass(frozen=True)
class DatasetInfo:
    """A checked dataset: class names, label counts per split and what each split leaves out, or the one-line error.

    ``notes`` are the human lines of :func:`trainers.datasets.summary.dataset_notes` per split: label files without an
    image (skipped in training) and images without a label file (background).
    """

    path: str
    names: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)  # split -> trainers.datasets.label_counts.ClassCounts
    notes: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def nc(self) -> int:
        return len(self.names)


def inspect_dataset(path: str | os.PathLike[str], splits: Sequence[str] = ("train", "val")) -> DatasetInfo:
    """Load a data.yaml and count its labels (cached by path and modification time of the YAML).

    Never raises for bad input: the :class:`~trainers.errors.DatasetError` message is returned in ``error``.
    """
    p = Path(path).expanduser()
    try:
        mtime = p.stat().st_mtime_ns if p.is_file() else (p / "data.yaml").stat().st_mtime_ns
    except OSError:
        mtime = None
    return _inspect(str(p), tuple(splits), mtime)


@functools.lru_cache(maxsize=32)
def _inspect(path: str, splits: tuple[str, ...], _mtime: int | None) -> DatasetInfo:
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.summary import dataset_notes, summarize_split

    try:
        ds = load_dataset(path)
        summaries = {s: summarize_split(ds, s) for s in splits if s in ds.splits}
    except WorkbenchError as e:
        return DatasetInfo(path=path, error=str(e))
    except OSError as e:  # unreadable files the loader did not anticipate
        return DatasetInfo(path=path, error=f"{path}: {e}")
    return DatasetInfo(
        path=str(ds.yaml_path),
        names=list(ds.names),
        counts={s: summary.counts for s, summary in summaries.items()},
        notes={s: dataset_notes(summary) for s, summary in summaries.items()},
    )
