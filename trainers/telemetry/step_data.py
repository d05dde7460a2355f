"""A run's per-step series as charts and the doctor read them, whatever stores them.

Two sources behind one small interface (:class:`StepData`):

- :class:`StoreSteps`: the columnar step store ``<run>/steps/`` (:mod:`trainers.telemetry.steps`) that the training
  process writes since the store exists. Reads are O(points drawn): roll-ups of the whole run, never all rows.
- :class:`MemorySteps`: ``step`` events in ``telemetry.jsonl``, as logs written before the store did (and the test
  fixtures) carry them; folded into numpy columns in memory, downsampled on read.

Columns are named as in :mod:`trainers.telemetry.step_summary`: ``step``, ``epoch``, ``grad_norm``,
``grad_norm/<group>``, ``lr/<group>``, ``loss/<name>``, ``clipped`` (0/1), ``max_norm`` (NaN: clipping off).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_POINTS = 4000  # per trace; 2 points (min and max) per bucket

Points = tuple[np.ndarray, np.ndarray]


class StepData:
    """The interface: ``n_steps``, ``columns``, ``groups``, ``series``, ``share``, ``first_step_of_epoch``."""

    @property
    def n_steps(self) -> int:
        raise NotImplementedError

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    @property
    def groups(self) -> list[str]:
        """Parameter-group names seen in the ``lr/<group>`` columns, in column order."""
        return [c[3:] for c in self.columns if c.startswith("lr/")]

    def series(self, columns: Sequence[str], max_points: int = MAX_POINTS) -> dict[str, Points]:
        """``(step, value)`` points of each column for min-max drawing: at most ``max_points`` per column, and every
        spike (each bucket's max and min) kept. Columns the run does not have are left out."""
        raise NotImplementedError

    def mean(self, column: str) -> float | None:
        """Mean of a column over every standing step (``clipped``: the share of clipped steps); None when empty."""
        raise NotImplementedError

    def first_step_of_epoch(self, epoch: int) -> int | None:
        """The global step that opened ``epoch`` (for markers on step charts), None if unknown."""
        raise NotImplementedError


# ---- the step store ----------------------------------------------------------------------------------------------
class StoreSteps(StepData):
    """:class:`StepData` over a :class:`~trainers.telemetry.steps.StepStore` (shared by the UI's sessions: locked)."""

    def __init__(self, store: Any):
        self.store = store
        self._lock = threading.Lock()
        self._means: dict[str, float | None] = {}  # until the next poll that reads new steps

    def poll(self) -> bool:
        with self._lock:
            changed = bool(self.store.poll())
            if changed:
                self._means.clear()
            return changed

    @property
    def n_steps(self) -> int:
        with self._lock:
            return int(self.store.n_steps)

    @property
    def columns(self) -> list[str]:
        with self._lock:
            return list(self.store.columns)

    def series(self, columns: Sequence[str], max_points: int = MAX_POINTS) -> dict[str, Points]:
        with self._lock:
            have = [c for c in columns if c in self.store.columns]
            if not have or not self.store.n_steps:
                return {}
            return {c: s.points() for c, s in self.store.series(have, max_points=max_points).items()}

    def mean(self, column: str) -> float | None:
        """As :meth:`StepData.mean`; kept until a poll reads new steps (a refresh asks it for the header and the
        gradient-norm chart's title)."""
        with self._lock:
            if column not in self._means:
                if column not in self.store.columns or not self.store.n_steps:
                    return None
                value = self.store.summary(column).mean
                self._means[column] = float(value) if np.isfinite(value) else None
            return self._means[column]

    def first_step_of_epoch(self, epoch: int) -> int | None:
        with self._lock:
            if not self.store.n_steps:
                return None
            if epoch <= 1:
                return int(self.store.first_step)
            before = self.store.last_step_of_epoch(epoch - 1)
        return int(before) + 1 if before else None


# ---- step events held in memory (logs from before the store) ----------------------------------------------------
class MemorySteps(StepData):
    """Step columns folded from ``step`` events; resumed attempts drop the steps of the epochs they redo."""

    def __init__(self) -> None:
        self.n = 0
        self._chunks: dict[str, list[np.ndarray]] = {}

    @property
    def n_steps(self) -> int:
        return self.n

    @property
    def columns(self) -> list[str]:
        return list(self._chunks)

    def column(self, name: str) -> np.ndarray:
        chunks = self._chunks.get(name)
        if not chunks:
            return np.full(self.n, np.nan)
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0]

    def append(self, n: int, values: Mapping[str, np.ndarray]) -> None:
        """Append ``n`` rows; a column new to the log is back-filled with NaN, a missing one gets NaN."""
        for name in values:
            if name not in self._chunks:
                self._chunks[name] = [np.full(self.n, np.nan)] if self.n else []
        for name, chunks in self._chunks.items():
            chunks.append(values[name] if name in values else np.full(n, np.nan))
        self.n += n

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is true (a resume superseding an interrupted epoch's steps)."""
        for name in list(self._chunks):
            self._chunks[name] = [self.column(name)[mask]]
        self.n = int(mask.sum())

    def copy(self) -> MemorySteps:
        new = MemorySteps()
        new.n = self.n
        new._chunks = {name: [self.column(name).copy()] for name in self._chunks}
        return new

    def series(self, columns: Sequence[str], max_points: int = MAX_POINTS) -> dict[str, Points]:
        if not self.n:
            return {}
        steps = self.column("step")
        return {c: minmax_downsample(steps, self.column(c), max_points) for c in columns if c in self._chunks}

    def mean(self, column: str) -> float | None:
        if not self.n or column not in self._chunks:
            return None
        values = self.column(column)
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else None

    def first_step_of_epoch(self, epoch: int) -> int | None:
        if not self.n:
            return None
        hits = np.flatnonzero(self.column("epoch") >= epoch)
        return int(self.column("step")[hits[0]]) if hits.size else None


def minmax_downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> Points:
    """Keep at most ``max_points`` points, never losing a spike.

    The series is cut into ``max_points // 2`` buckets of consecutive points; each keeps its minimum and its maximum
    (in their original order), so the drawn envelope is exact and the global extremes are always drawn. NaN (null)
    values are never chosen over a number; a bucket of NaNs keeps one NaN, which plotly draws as a gap.
    """
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    n = y.size
    if n <= max_points:
        return x, y
    buckets = max(max_points // 2, 2)
    size = -(-n // buckets)  # ceil: the last bucket may be shorter (padded with values never chosen)
    pad = size * buckets - n
    nan = np.isnan(y)
    has_nan = bool(nan.any())

    def blocks(values: np.ndarray, fill: float) -> np.ndarray:
        if has_nan:
            values = np.where(nan, fill, values)
        if pad:
            values = np.concatenate([values, np.full(pad, fill)])
        return values.reshape(buckets, size)

    lo = blocks(y, np.inf).argmin(axis=1)
    hi = blocks(y, -np.inf).argmax(axis=1)
    pairs = np.sort(np.stack([lo, hi], axis=1), axis=1) + (np.arange(buckets) * size)[:, None]
    idx = pairs.ravel()  # already in order: buckets are consecutive and each pair is sorted
    keep = np.ones(idx.size, dtype=bool)
    keep[1:] = idx[1:] != idx[:-1]  # a bucket whose min and max are the same point keeps it once
    idx = idx[keep & (idx < n)]
    return x[idx], y[idx]
