from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from trainers.telemetry.steps.layout import _np


# ---- reader ----------------------------------------------------------------------------------------------------------
@dataclass
class Series:
    """One column over a step range, in buckets (one row per bucket, step order).

    ``level`` is the bucket size of the data read (1 = raw rows), ``width`` the steps per returned bucket. ``min`` and
    ``max`` are over finite values (NaN when a bucket has none) and occur at steps ``x_min``/``x_max``; ``mean`` is
    the finite mean and ``last`` the last row's value (draw both at ``hi``); ``n`` rows, ``nonfinite`` of them
    NaN/inf. Fields not asked for are None.
    """

    column: str
    level: int
    width: int
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    x_min: np.ndarray | None = None
    x_max: np.ndarray | None = None
    mean: np.ndarray | None = None
    last: np.ndarray | None = None
    nonfinite: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lo)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` for min-max drawing: each bucket's min and max at their steps, in order, each point once.

        A bucket with no finite value gives one NaN point (a gap in plotly).
        """
        if self.min is None or self.max is None:
            raise ValueError("points() needs min and max")
        first_min = self.x_min <= self.x_max
        xa = np.where(first_min, self.x_min, self.x_max)
        ya = np.where(first_min, self.min, self.max)
        xb = np.where(first_min, self.x_max, self.x_min)
        yb = np.where(first_min, self.max, self.min)
        x = np.stack([xa, xb], axis=1).ravel()
        y = np.stack([ya, yb], axis=1).ravel()
        keep = np.ones(len(x), bool)
        keep[1::2] = (xb != xa) & ~np.isnan(yb)
        nan = np.isnan(ya)
        x[0::2] = np.where(nan, self.lo, xa)
        return x[keep], y[keep]


@dataclass
class Summary:
    """Aggregate of one column over a step range: ``count`` rows, ``nonfinite`` of them NaN/inf; ``min``/``max``/
    ``mean`` over finite values (NaN if none) with the steps of the extremes; ``last`` value; ``lo``/``hi`` steps."""

    column: str
    count: int
    nonfinite: int
    min: float
    max: float
    mean: float
    last: float
    x_min: int | None
    x_max: int | None
    lo: int | None
    hi: int | None

    @property
    def finite(self) -> int:
        return self.count - self.nonfinite


class _Grow:
    """Append-only numpy column with amortized O(1) appends."""

    __slots__ = ("buf", "n")

    def __init__(self, dtype: np.dtype, capacity: int = 1024):
        self.buf = np.empty(capacity, dtype)
        self.n = 0

    def append(self, v: np.ndarray) -> None:
        m = self.n + len(v)
        if m > len(self.buf):
            new = np.empty(max(m, 2 * len(self.buf)), self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n : m] = v
        self.n = m

    def view(self) -> np.ndarray:
        return self.buf[: self.n]


class _Tail:
    """What a reader holds of one tail file: its record batches (views of the bytes read) and, converted to numpy
    when first asked for, the columns queries need (``step`` always)."""

    __slots__ = ("name", "offset", "schema", "batches", "n", "cols", "done")

    def __init__(self, name: str):
        self.name, self.offset, self.schema, self.batches, self.n = name, 0, None, [], 0
        self.cols: dict[str, _Grow] = {}
        self.done: dict[str, int] = {}  # column -> batches converted

    def add(self, batches: list[pa.RecordBatch]) -> None:
        if len(batches) > 1:  # a poll brings ~200 small flushes an epoch: one batch, so a column is one slice later
            batches = pa.Table.from_batches(batches, self.schema).combine_chunks().to_batches()
        self.batches += batches
        self.n += sum(b.num_rows for b in batches)
        self.column("step")

    def has(self, c: str) -> bool:
        return self.schema is not None and self.schema.get_field_index(c) >= 0

    def column(self, c: str) -> np.ndarray:
        g = self.cols.get(c)
        if g is None:
            f = self.schema.field(c)
            g = self.cols[c] = _Grow(np.dtype(f.type.to_pandas_dtype()))
            self.done[c] = 0
        k = self.done[c]
        if k < len(self.batches):
            i = self.schema.get_field_index(c)
            new = [b.column(i) for b in self.batches[k:]]
            g.append(_np(pa.concat_arrays(new) if len(new) > 1 else new[0]))
            self.done[c] = len(self.batches)
        return g.view()

    @property
    def lo(self) -> int:
        return int(self.cols["step"].buf[0])

    @property
    def hi(self) -> int:
        return int(self.cols["step"].buf[self.n - 1])


class _Attempt:
    def __init__(self, num: int):
        self.num = num
        self.meta: dict | None = None
        self.segs: dict[int, tuple[int, int, str]] = {}
        self.rolls: dict[str, tuple[int, int, int]] = {}  # name -> (tier, lo, hi)
        self.tails: dict[int, _Tail] = {}

    @property
    def first_step(self) -> int:
        return int(self.meta["first_step"])

    @property
    def columns(self) -> dict[str, np.dtype]:
        return {n: np.dtype(d) for n, d in self.meta["columns"]}


class _LRU:
    def __init__(self, max_bytes: int):
        self.max = max_bytes
        self.bytes = 0
        self.d: OrderedDict[Any, np.ndarray] = OrderedDict()

    def get(self, key):
        v = self.d.get(key)
        if v is not None:
            self.d.move_to_end(key)
        return v

    def put(self, key, v: np.ndarray) -> None:
        if key in self.d:
            return
        self.d[key] = v
        self.bytes += v.nbytes
        while self.bytes > self.max and len(self.d) > 1:
            _, old = self.d.popitem(last=False)
            self.bytes -= old.nbytes

    def drop(self, name: str) -> None:
        for k in [k for k in self.d if k[0] == name]:
            self.bytes -= self.d.pop(k).nbytes


class _Stale(Exception):
    """A file listed by the last scan is gone (compacted or merged): rescan and retry."""
