"""Columnar per-step telemetry for long runs: a write-ahead tail, compacted segments and multi-resolution roll-ups.

One optimizer step is one row. The training process (rank 0) appends rows with :class:`StepWriter`; the UI, the CLI
and the "training doctor" read them with :class:`StepStore`, also while they are being written. Torch-free: pyarrow
and numpy only (and it never imports pandas, which pyarrow's ``to_numpy``/``pa.array`` would do). Non-step events stay
in ``telemetry.jsonl`` (docs/telemetry.md). The on-disk layout, the formats and the measured figures are in
``docs/step-store.md``; the benchmark is ``benchmarks/bench_step_store.py``.

Design, TSDB-style: a write-ahead log, immutable compacted blocks, pre-aggregated roll-ups.

- **Columns.** ``step`` (int64, global optimizer step, 1-based, strictly increasing within an attempt), ``epoch``
  (int32, 1-based), ``t`` (float64 unix seconds), then the value columns the writer is given (name -> dtype), e.g.
  ``lr/<group>`` float64, ``grad_norm`` and ``grad_norm/<group>`` float32, ``clipped`` bool, ``max_norm`` float32
  (NaN = clipping off), ``loss/<name>`` float32. NaN and inf are stored as they are.
- **Tail (WAL).** ``append`` serializes its rows as one uncompressed Arrow IPC record batch and writes it with one
  ``os.write`` to an Arrow IPC *stream* file (``tail-*.arrows``, ``O_APPEND``): ~65 us for 32 rows x 22 columns, no
  compression, no fsync, no lock, no per-row numpy work. Readers parse complete messages only
  (``pyarrow.ipc.read_message`` raises on a truncated one, which is left for the next poll) and keep the byte offset.
- **Compaction.** When the tail holds ``rows_per_segment`` rows (8,192) the writer starts a new tail and a background
  thread writes the old rows as a segment (``seg-*``) and their roll-ups, each file atomically (temp file +
  ``os.replace``), then deletes the old tail. A segment's name carries the sequence number of the tail it replaces,
  so readers never see a row twice or miss one during the switch.
- **Segment format: Parquet** (zstd 3, BYTE_STREAM_SPLIT for floats, DELTA_BINARY_PACKED for steps, dictionary/RLE
  for small ints, no statistics). Measured on noisy float32 data (300 x 7,000 steps): 38.3 B/step for raw segments vs
  43.5 for Arrow IPC files with zstd (IPC has no byte-stream split, so the exponent bytes compress worse), and reads
  as fast. ``fmt="arrow"`` is kept as an option; readers read both. 65,536 instead of 8,192 rows per segment saved
  only 1.5 %, so 8,192 (a reader holds at most that many tail rows).
- **Roll-ups.** Levels of 16, 256, 4,096 and 65,536 steps: powers of 16 cost 1/15 extra rows over the finest level,
  and any range has between ``max_points/2`` and 16x that many buckets at the level chosen, which are then merged
  down exactly. Bucket ``b`` of level ``L`` covers global steps ``[b*L + 1, (b+1)*L]``. Per bucket: ``n`` (rows),
  ``lo``/``hi`` (first and last step present) and per value column ``min``/``max`` (finite values only; NaN when
  none), ``xmin``/``xmax`` (where they occur, as offsets in the bucket: a spike is drawn at its exact step), ``mean``
  (of the finite values), ``last`` (the last row's value, as stored) and ``nf`` (non-finite count, float columns).
  They are computed at compaction, vectorized over the 8,192 rows in the background thread; the open bucket of each
  level stays in memory and is also written *partial* (its state as of the file's last step; a later file's row for
  a bucket wins). Readers add the raw rows after the roll-ups (the tail), so a live run is always current.
- **Roll-up files.** The finest level goes to one file per compaction (``roll-A-0-*``), merged LSM-style 16 at a time
  into the next tier (``roll-A-1-*``, ...), so a zoomed query opens few files. The coarse levels (1/15 of the rows)
  of an attempt live in one file (``roll-A-c-*``) rewritten at each compaction (~20 ms at 2.1M steps, background),
  so a whole-run query reads one file whatever the run length.
- **Attempts and supersede.** Each training process is one attempt (1, 2, ...) with its own files and a
  ``first_step`` S: the global steps of the epochs that finished before it. Attempt ``k``'s rows are kept up to
  ``cutoff_k = min(S_j for later attempts j)``; at level ``L`` attempt ``k`` owns buckets ``[S_k // L, cutoff_k // L)``.
  A new attempt seeds the bucket holding step ``S + 1`` at every level from the surviving raw rows of earlier
  attempts (read back at start), so its roll-ups are self-consistent and later attempts win for their step range,
  even when a first_step is below an earlier one's.
- **Crash safety.** Files are only ever created whole (temp + rename) or appended (the tail). A crash loses at most
  the rows not yet appended. Readers ignore temp files; the next writer removes them and compacts a crashed
  attempt's tail (and rolls up its rows after its last roll-up file) on its behalf.
- **Reads.** ``StepStore.poll()`` is a ``stat`` of the folder and of each tail when nothing changed. ``series`` reads
  the coarsest level with at least ``max_points/2`` buckets over the range plus the tail and merges them into at most
  ``max_points/2`` aligned buckets (two points each, min and max); bucket edges cut by the range are filled from finer
  levels, so results are exact for the range. A reader holds its tails plus caches within ``cache_mb`` (16 MB), never
  all raw rows.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

FORMAT_VERSION = 1
LEVELS = (16, 256, 4096, 65536)
ROWS_PER_SEGMENT = 8192
MERGE_FANOUT = 16  # finest-level roll-up files of one tier merged into one of the next
ROLL_ROWS_PER_GROUP = 16384  # at most this many rows per row group of a roll-up file
ZSTD_LEVEL = 3
KEY_COLUMNS = {"step": np.dtype("int64"), "epoch": np.dtype("int32"), "t": np.dtype("float64")}
SEP = "|"  # roll-up column names: "<column>|<stat>"
STATS = ("min", "max", "mean", "last", "count")

_BIG = np.iinfo(np.int64).max
_INF_STEP = 1 << 62
_ALLOWED = {np.dtype(d) for d in ("float32", "float64", "bool", "uint8", "int8", "int16", "int32", "int64")}
_RE_ATTEMPT = re.compile(r"^attempt-(\d{4,})\.json$")
_RE_TAIL = re.compile(r"^tail-(\d{4,})-(\d{6,})\.arrows$")
_RE_SEG = re.compile(r"^seg-(\d{4,})-(\d{6,})-(\d{12,})-(\d{12,})\.(parquet|arrow)$")
_RE_ROLL = re.compile(r"^roll-(\d{4,})-(\d+|c)-(\d{12,})-(\d{12,})\.(parquet|arrow)$")


def _fault(point: str) -> None:
    """Crash-point seam for tests (they make it raise at ``seg``, ``roll``, ``coarse``, ``merge``); a no-op."""


# ---- names -----------------------------------------------------------------------------------------------------------
def _attempt_name(a: int) -> str:
    return f"attempt-{a:04d}.json"


def _tail_name(a: int, seq: int) -> str:
    return f"tail-{a:04d}-{seq:06d}.arrows"


def _seg_name(a: int, seq: int, lo: int, hi: int, ext: str) -> str:
    return f"seg-{a:04d}-{seq:06d}-{lo:012d}-{hi:012d}.{ext}"


def _roll_name(a: int, tier: int | str, lo: int, hi: int, ext: str) -> str:
    """``tier``: 0, 1, ... for files of the finest level (LSM tiers), ``c`` for the coarse-level file."""
    return f"roll-{a:04d}-{tier}-{lo:012d}-{hi:012d}.{ext}"


def _np(col) -> np.ndarray:
    """A pyarrow (Chunked)Array without nulls as numpy (read-only for numbers, zero copy).

    pyarrow's ``to_numpy`` imports pandas on first use (0.25 s and 60 MB in a fresh reader process), so the
    buffers are viewed directly.
    """
    if isinstance(col, pa.ChunkedArray):
        chunks = col.chunks
        if len(chunks) == 1:
            return _np(chunks[0])
        if not chunks:
            return np.zeros(0, np.dtype(col.type.to_pandas_dtype()))
        return np.concatenate([_np(c) for c in chunks])
    n, off = len(col), col.offset
    if col.null_count:
        return col.to_numpy(zero_copy_only=False)
    buf = col.buffers()[1]
    if pa.types.is_boolean(col.type):
        if not n:
            return np.zeros(0, bool)
        bits = np.frombuffer(buf, np.uint8, count=(off + n + 7) // 8)
        return np.unpackbits(bits, count=off + n, bitorder="little")[off:].view(bool)
    dt = np.dtype(col.type.to_pandas_dtype())
    if buf is None or not n:
        return np.zeros(0, dt)
    return np.frombuffer(buf, dt, count=n, offset=off * dt.itemsize)


def _pa(v: np.ndarray) -> pa.Array:
    """A 1-d numpy array (numbers or bool) as a pyarrow Array, zero copy for numbers (``pa.array`` imports pandas)."""
    v = np.ascontiguousarray(v)
    if v.dtype == bool:
        return pa.Array.from_buffers(pa.bool_(), len(v), [None, pa.py_buffer(np.packbits(v, bitorder="little"))])
    return pa.Array.from_buffers(pa.from_numpy_dtype(v.dtype), len(v), [None, pa.py_buffer(v)])


def _table(columns: Mapping[str, np.ndarray]) -> pa.Table:
    return pa.Table.from_arrays([_pa(v) for v in columns.values()], names=list(columns))


def _is_float(dt: np.dtype) -> bool:
    return dt.kind == "f"


def _mean_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype("float64") if dt in (np.dtype("float64"), np.dtype("int64")) else np.dtype("float32")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---- file formats ----------------------------------------------------------------------------------------------------
class _Parquet:
    ext = "parquet"

    @staticmethod
    def write(path: Path, table: pa.Table, meta: Mapping[str, Any], groups=None) -> None:
        """``groups``: ``[(start, end), ...]`` row ranges, one row group each (default: one)."""
        dict_cols, enc = [], {}
        for f in table.schema:
            if pa.types.is_floating(f.type):
                enc[f.name] = "BYTE_STREAM_SPLIT"
            elif f.name in ("step", "bucket", "lo", "hi"):
                enc[f.name] = "DELTA_BINARY_PACKED"
            else:
                dict_cols.append(f.name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with pq.ParquetWriter(
            tmp,
            table.schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=dict_cols,
            column_encoding=enc,
            write_statistics=False,
            store_schema=False,
        ) as w:
            for g0, g1 in groups or [(0, len(table))]:
                w.write_table(table.slice(g0, g1 - g0), row_group_size=max(g1 - g0, 1))
            w.add_key_value_metadata({"stepstore": json.dumps(meta)})
        os.replace(tmp, path)

    class Handle:
        def __init__(self, path: Path):
            self.file = pq.ParquetFile(path, memory_map=True)
            md = self.file.metadata
            self.meta = json.loads(md.metadata[b"stepstore"]) if md.metadata and b"stepstore" in md.metadata else {}
            self.names = set(self.file.schema_arrow.names)
            self.num_groups = md.num_row_groups

        def read(self, group: int, columns: Sequence[str]) -> pa.Table:
            return self.file.read_row_group(group, columns=list(columns), use_threads=False)

        def read_all(self) -> pa.Table:
            return self.file.read(use_threads=False)

        def close(self) -> None:
            self.file.close()


class _Arrow:
    ext = "arrow"

    @staticmethod
    def write(path: Path, table: pa.Table, meta: Mapping[str, Any], groups=None) -> None:
        schema = table.schema.with_metadata({"stepstore": json.dumps(meta)})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        opts = ipc.IpcWriteOptions(compression=pa.Codec("zstd", ZSTD_LEVEL))
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, schema, options=opts) as w:
            table = table.combine_chunks()
            for g0, g1 in groups or [(0, len(table))]:
                w.write_batch(table.slice(g0, g1 - g0).to_batches()[0])
        os.replace(tmp, path)

    class Handle:
        def __init__(self, path: Path):
            self.source = pa.memory_map(str(path))
            r = ipc.open_file(self.source)
            md = r.schema.metadata or {}
            self.meta = json.loads(md[b"stepstore"]) if b"stepstore" in md else {}
            self.schema = r.schema
            self.names = set(r.schema.names)
            self.num_groups = r.num_record_batches

        def read(self, group: int, columns: Sequence[str]) -> pa.Table:
            idx = [self.schema.get_field_index(c) for c in columns]
            r = ipc.open_file(self.source, options=ipc.IpcReadOptions(included_fields=idx, use_threads=False))
            return pa.Table.from_batches([r.get_batch(group)]).select(list(columns))

        def read_all(self) -> pa.Table:
            return ipc.open_file(self.source).read_all().replace_schema_metadata(None)

        def close(self) -> None:
            self.source.close()


_FORMATS = {"parquet": _Parquet, "arrow": _Arrow}


def _open_handle(path: Path):
    return _FORMATS[path.suffix[1:]].Handle(path)


# ---- pieces: aggregates over consecutive step ranges -------------------------------------------------------------
_FLOAT_KEYS = ("min", "max", "sum", "last")


class _Pieces:
    """Aggregates over disjoint step ranges, sorted by ``lo``, for the columns ``names``.

    ``s[key]`` is a 2-d array (one row per column, one column per piece). Keys: ``min``/``xmin`` and ``max``/``xmax``
    (finite extremes, float64, and their steps), ``sum``/``nfin`` (finite sum and count), ``nf`` (non-finite count),
    ``last`` (the last row's value). A raw row is a piece with ``lo == hi``, a roll-up bucket is a piece, and
    :func:`_reduce` merges runs of pieces, every column at once.
    """

    __slots__ = ("lo", "hi", "n", "names", "s")

    def __init__(self, lo, hi, n, names: Sequence[str], s: dict[str, np.ndarray]):
        self.lo, self.hi, self.n, self.names, self.s = lo, hi, n, list(names), s

    def __len__(self) -> int:
        return len(self.lo)

    def col(self, c: str) -> dict[str, np.ndarray]:
        i = self.names.index(c)
        return {k: v[i] for k, v in self.s.items()}

    def take(self, idx) -> _Pieces:
        return _Pieces(self.lo[idx], self.hi[idx], self.n[idx], self.names, {k: v[:, idx] for k, v in self.s.items()})


def _nbytes(p: _Pieces) -> int:
    return p.lo.nbytes * 3 + sum(v.nbytes for v in p.s.values())


def _keys(stats: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for s in stats:
        out += {"min": ["min", "xmin"], "max": ["max", "xmax"], "mean": ["sum", "nfin"], "last": ["last"],
                "count": ["nfin", "nf"]}[s]  # fmt: skip
    return tuple(dict.fromkeys(out))


def _empty_pieces(cols: Sequence[str], keys: Sequence[str]) -> _Pieces:
    z = np.zeros(0, np.int64)
    return _Pieces(z, z, z, cols, {k: np.zeros((len(cols), 0), np.float64 if k in _FLOAT_KEYS else np.int64)
                                   for k in keys})  # fmt: skip


def _raw_pieces(
    step: np.ndarray, values: Mapping[str, np.ndarray], cols: Sequence[str], keys: Sequence[str]
) -> _Pieces:
    step = np.asarray(step, np.int64)
    m = len(step)
    V = np.empty((len(cols), m))
    for i, c in enumerate(cols):
        v = values.get(c)
        V[i] = np.nan if v is None else v  # a column an attempt does not have reads NaN
    fin = np.isfinite(V)
    allfin = bool(fin.all())
    xs = np.broadcast_to(step, V.shape)
    s: dict[str, np.ndarray] = {}
    for k in keys:
        if k in ("min", "max"):
            s[k] = V if allfin else np.where(fin, V, np.nan)
        elif k in ("xmin", "xmax"):
            s[k] = xs
        elif k == "sum":
            s[k] = V if allfin else np.where(fin, V, 0.0)
        elif k == "nfin":
            s[k] = fin.astype(np.int64)
        elif k == "nf":
            s[k] = (~fin).astype(np.int64)
        elif k == "last":
            s[k] = V
    return _Pieces(step, step, np.ones(m, np.int64), cols, s)


def _concat(parts: Sequence[_Pieces], cols: Sequence[str], keys: Sequence[str], sort: bool = True) -> _Pieces:
    """Pieces of several parts (same columns); sorted by ``lo`` unless ``sort`` is False."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_pieces(cols, keys)
    if len(parts) == 1:
        return parts[0]
    lo = np.concatenate([p.lo for p in parts])
    out = _Pieces(
        lo,
        np.concatenate([p.hi for p in parts]),
        np.concatenate([p.n for p in parts]),
        cols,
        {k: np.concatenate([p.s[k] for p in parts], axis=1) for k in keys},
    )
    if sort and np.any(lo[1:] < lo[:-1]):
        out = out.take(np.argsort(lo, kind="stable"))
    return out


def _reduce(p: _Pieces, gid: np.ndarray) -> _Pieces:
    """Merge runs of equal ``gid`` (non-decreasing, pieces sorted by ``lo``) into one piece each."""
    m = len(p)
    if m == 0:
        return p
    brk = np.flatnonzero(gid[1:] != gid[:-1]) + 1
    if len(brk) == m - 1:
        return p
    starts = np.concatenate(([0], brk))
    ends = np.append(brk, m)
    sizes = ends - starts
    lo = p.lo[starts]
    s = p.s
    r: dict[str, np.ndarray] = {}
    for val, x, ufunc in (("min", "xmin", np.fmin), ("max", "xmax", np.fmax)):
        if val in s:
            best = ufunc.reduceat(s[val], starts, axis=1)
            cand = np.where(s[val] == np.repeat(best, sizes, axis=1), s[x], _BIG)
            where = np.minimum.reduceat(cand, starts, axis=1)
            r[val], r[x] = best, np.where(where == _BIG, lo, where)
    for k in ("sum", "nfin", "nf"):
        if k in s:
            r[k] = np.add.reduceat(s[k], starts, axis=1)
    if "last" in s:
        r["last"] = s["last"][:, ends - 1]
    return _Pieces(lo, np.maximum.reduceat(p.hi, starts), np.add.reduceat(p.n, starts), p.names, r)


def _rollup_schema(columns: Mapping[str, np.dtype]) -> pa.Schema:
    fields = [("level", pa.int32()), ("bucket", pa.int64()), ("n", pa.int32()), ("lo", pa.int64()), ("hi", pa.int64())]
    for c, dt in columns.items():
        if c == "step":
            continue
        at = pa.from_numpy_dtype(dt)
        fields += [(f"{c}{SEP}min", at), (f"{c}{SEP}max", at), (f"{c}{SEP}mean", pa.from_numpy_dtype(_mean_dtype(dt)))]
        fields += [(f"{c}{SEP}last", at)]
        if _is_float(dt):
            fields.append((f"{c}{SEP}nf", pa.int32()))
        fields += [(f"{c}{SEP}xmin", pa.int32()), (f"{c}{SEP}xmax", pa.int32())]
    return pa.schema(fields)


def _pieces_to_arrays(p: _Pieces, level: int, columns: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    bucket = (p.lo - 1) // level
    start = bucket * level + 1
    arrays: dict[str, np.ndarray] = {
        "level": np.full(len(p), level, np.int32), "bucket": bucket, "n": p.n.astype(np.int32), "lo": p.lo, "hi": p.hi,
    }  # fmt: skip
    s = p.s
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(s["nfin"] > 0, s["sum"] / np.maximum(s["nfin"], 1), np.nan)
    for i, c in enumerate(p.names):
        dt = columns[c]
        arrays[f"{c}{SEP}min"] = s["min"][i].astype(dt)
        arrays[f"{c}{SEP}max"] = s["max"][i].astype(dt)
        arrays[f"{c}{SEP}mean"] = mean[i].astype(_mean_dtype(dt))
        arrays[f"{c}{SEP}last"] = s["last"][i].astype(dt)
        if _is_float(dt):
            arrays[f"{c}{SEP}nf"] = s["nf"][i].astype(np.int32)
        arrays[f"{c}{SEP}xmin"] = (s["xmin"][i] - start).astype(np.int32)
        arrays[f"{c}{SEP}xmax"] = (s["xmax"][i] - start).astype(np.int32)
    return arrays


def _roll_groups(level: np.ndarray, bucket: np.ndarray) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """Row groups of a roll-up table sorted by (level, bucket), and its index.

    The finest level's rows get row groups of their own (at most ``ROLL_ROWS_PER_GROUP`` rows), the coarser levels
    (1/15 of that in all) share the others, so a whole-run query at a coarse level never decodes fine rows. Index:
    ``[level, first bucket, last bucket, row group, first row, end row]`` per run of one level in one row group.
    """
    n = len(level)
    split = int(np.searchsorted(level, level[0], "right")) if n else 0
    bounds = []
    for lo, hi in ((0, split), (split, n)):
        bounds += [(s, min(s + ROLL_ROWS_PER_GROUP, hi)) for s in range(lo, hi, ROLL_ROWS_PER_GROUP)]
    index = []
    for g, (g0, g1) in enumerate(bounds):
        lv = level[g0:g1]
        brk = np.flatnonzero(lv[1:] != lv[:-1]) + 1
        for s_, e_ in zip(np.concatenate(([0], brk)), np.append(brk, len(lv)), strict=True):
            index.append([int(lv[s_]), int(bucket[g0 + s_]), int(bucket[g0 + e_ - 1]), g, int(s_), int(e_)])
    return bounds, index


def _table_pieces(
    t: Mapping[str, np.ndarray], level: int, cols: Sequence[str], keys: Sequence[str], names: set[str]
) -> _Pieces:
    """Roll-up rows (numpy columns, one level) back into pieces; ``names``: the columns the file has."""
    lo, hi, n = t["lo"], t["hi"], t["n"].astype(np.int64)
    m = len(lo)
    start = t["bucket"] * level + 1
    have = [f"{c}{SEP}min" in names for c in cols]
    nf = nfin = None
    if {"sum", "nfin", "nf"} & set(keys):
        nf = np.zeros((len(cols), m), np.int64)
        for i, c in enumerate(cols):
            if not have[i]:
                nf[i] = n  # a column this attempt does not have reads NaN
            elif f"{c}{SEP}nf" in t:
                nf[i] = t[f"{c}{SEP}nf"]
        nfin = n - nf
    s: dict[str, np.ndarray] = {}
    for k in keys:
        if k in ("min", "max", "last"):
            a = np.full((len(cols), m), np.nan)
            for i, c in enumerate(cols):
                if have[i]:
                    a[i] = t[f"{c}{SEP}{k}"]
            s[k] = a
        elif k in ("xmin", "xmax"):
            a = np.broadcast_to(lo, (len(cols), m)).copy()
            for i, c in enumerate(cols):
                if have[i]:
                    a[i] = start + t[f"{c}{SEP}{k}"]
            s[k] = a
        elif k == "sum":
            a = np.zeros((len(cols), m))
            for i, c in enumerate(cols):
                if have[i]:
                    a[i] = t[f"{c}{SEP}mean"]
            s[k] = np.where(nfin > 0, a * nfin, 0.0)
        elif k == "nfin":
            s[k] = nfin
        elif k == "nf":
            s[k] = nf
    return _Pieces(lo, hi, n, cols, s)


def _stat_columns(cols: Sequence[str], keys: Sequence[str], present: set[str]) -> list[str]:
    need = ["bucket", "n", "lo", "hi"]
    for c in cols:
        names = []
        for k in keys:
            names += {"min": ["min"], "max": ["max"], "xmin": ["xmin"], "xmax": ["xmax"], "last": ["last"],
                      "sum": ["mean", "nf"], "nfin": ["nf"], "nf": ["nf"]}[k]  # fmt: skip
        for s in dict.fromkeys(names):
            name = f"{c}{SEP}{s}"
            if name in present:
                need.append(name)
    return list(dict.fromkeys(need))


class _Rollup:
    """The writer's roll-up state: the open (last) bucket of every level, as a one-piece ``_Pieces``."""

    def __init__(self, levels: Sequence[int], columns: Mapping[str, np.dtype]):
        self.levels = tuple(levels)
        self.columns = dict(columns)
        self.value_cols = [c for c in columns if c != "step"]
        self.keys = _keys(STATS)
        self.schema = _rollup_schema(columns)
        self.open: dict[int, _Pieces | None] = {L: None for L in self.levels}

    def pieces(self, rows: Mapping[str, np.ndarray]) -> _Pieces:
        return _raw_pieces(rows["step"], rows, self.value_cols, self.keys)

    def seed(self, raw: _Pieces, upto: int) -> None:
        """Open buckets from raw rows ``<= upto`` (the surviving rows of earlier attempts, or this attempt's)."""
        for L in self.levels:
            p = raw.take(raw.lo > (upto // L) * L) if len(raw) else raw
            self.open[L] = _reduce(p, np.zeros(len(p), np.int64)) if len(p) else None

    def advance(self, new: _Pieces) -> tuple[dict[int, _Pieces], dict[int, _Pieces | None]]:
        """Roll-up rows to write for new raw rows (open buckets merged in) and the next open state."""
        out: dict[int, _Pieces] = {}
        state: dict[int, _Pieces | None] = {}
        cur = new
        for L in self.levels:
            fresh = _reduce(cur, (cur.lo - 1) // L) if len(cur) else cur
            op = self.open[L]
            merged = fresh
            if op is not None and len(fresh) and (op.lo[0] - 1) // L == (fresh.lo[0] - 1) // L:
                both = _concat([op, fresh], self.value_cols, self.keys)
                merged = _reduce(both, (both.lo - 1) // L)
            out[L] = merged
            state[L] = merged.take(slice(len(merged) - 1, None)) if len(merged) else op
            cur = fresh
        return out, state

    def arrays(self, out: Mapping[int, _Pieces]) -> dict[str, np.ndarray] | None:
        """Roll-up rows of every level in ``out`` as numpy columns, sorted by (level, bucket)."""
        parts = [_pieces_to_arrays(out[L], L, self.columns) for L in self.levels if L in out and len(out[L])]
        if not parts:
            return None
        return {f.name: np.concatenate([p[f.name] for p in parts]) for f in self.schema}

    def table(self, arrays: Mapping[str, np.ndarray]):
        """The table of roll-up rows sorted by (level, bucket), with its row groups and index (:func:`_roll_groups`)."""
        t = pa.Table.from_arrays([_pa(arrays[f.name]) for f in self.schema], schema=self.schema)
        return t, _roll_groups(arrays["level"], arrays["bucket"])


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


class StepStore:
    """Reader of ``<run>/steps/``: incremental polling, min-max series, summaries, raw rows.

    Args:
        folder: the ``steps`` folder (it may not exist yet).
        cache_mb: memory budget for caches: decoded column chunks (LRU) and assembled roll-up buckets (half of it).
            The rest a reader holds is its tails (at most ``rows_per_segment`` rows each).
        max_attempt: only look at attempts up to this number (the writer uses it to read earlier attempts).
    """

    def __init__(self, folder: str | os.PathLike, cache_mb: float = 16, max_attempt: int | None = None):
        self.folder = Path(folder)
        self._max_attempt = max_attempt
        self._att: dict[int, _Attempt] = {}
        self._names: set[str] = set()
        self._dir_mtime: int | None = None
        self._cache = _LRU(int(cache_mb * 1e6))
        self._handles: dict[str, Any] = {}
        self._memo: dict[Any, Any] = {}
        self._chain: list[tuple[_Attempt, int, int]] = []
        self._roll_memo: OrderedDict[Any, _Pieces] = OrderedDict()
        self._group_memo: OrderedDict[Any, _Pieces] = OrderedDict()
        self.generation = 0
        self.poll()

    # ---- polling ------------------------------------------------------------------------------------------------
    def poll(self) -> bool:
        """Read what is new since the last poll; True when anything changed. Only stat calls when nothing did."""
        changed = False
        try:
            st = os.stat(self.folder)
        except FileNotFoundError:
            if self._names:
                self._reset()
                changed = True
            return self._changed(changed)
        mt = st.st_mtime_ns
        if mt != self._dir_mtime or time.time_ns() - mt < 1_500_000_000:
            changed |= self._scan()
            self._dir_mtime = mt
        for _ in range(5):
            try:
                for att in self._att.values():
                    if att.meta is None:
                        continue
                    for tail in att.tails.values():
                        changed |= self._read_tail(tail)
                break
            except _Stale:
                changed |= self._scan()
        return self._changed(changed)

    def _changed(self, changed: bool) -> bool:
        if changed:
            self.generation += 1
            self._memo.clear()
            self._chain = self._make_chain()
        return changed

    def _reset(self) -> None:
        for h in self._handles.values():
            h.close()
        self._att.clear()
        self._names.clear()
        self._handles.clear()
        self._cache = _LRU(self._cache.max)

    def _scan(self) -> bool:
        try:
            names = set(os.listdir(self.folder))
        except FileNotFoundError:
            names = set()
        added, removed = names - self._names, self._names - names
        if not added and not removed:
            return False
        for name in removed:
            self._forget(name)
        ok = set()
        for name in sorted(added):
            if self._register(name):
                ok.add(name)
            else:
                self._dir_mtime = None  # force a rescan at the next poll
        self._names = (self._names - removed) | ok
        return bool(ok or removed)

    def _get_att(self, num: int) -> _Attempt | None:
        if self._max_attempt is not None and num > self._max_attempt:
            return None
        att = self._att.get(num)
        if att is None:
            att = self._att[num] = _Attempt(num)
        return att

    def _register(self, name: str) -> bool:
        if m := _RE_ATTEMPT.match(name):
            att = self._get_att(int(m[1]))
            if att is None:
                return True
            try:
                meta = json.loads((self.folder / name).read_text())
                meta["first_step"] = int(meta["first_step"])
                [(str(n), np.dtype(d)) for n, d in meta["columns"]]
            except (OSError, ValueError, KeyError, TypeError):
                return False  # retried at the next scan
            att.meta = meta
        elif m := _RE_TAIL.match(name):
            att = self._get_att(int(m[1]))
            if att is not None:
                att.tails[int(m[2])] = _Tail(name)
        elif m := _RE_SEG.match(name):
            att = self._get_att(int(m[1]))
            if att is not None:
                att.segs[int(m[2])] = (int(m[3]), int(m[4]), name)
        elif m := _RE_ROLL.match(name):
            att = self._get_att(int(m[1]))
            if att is not None:
                att.rolls[name] = (m[2] if m[2] == "c" else int(m[2]), int(m[3]), int(m[4]))
        return True

    def _forget(self, name: str) -> None:
        for att in self._att.values():
            if m := _RE_TAIL.match(name):
                if int(m[1]) == att.num:
                    att.tails.pop(int(m[2]), None)
            elif m := _RE_SEG.match(name):
                if int(m[1]) == att.num and att.segs.get(int(m[2]), (0, 0, ""))[2] == name:
                    att.segs.pop(int(m[2]))
            elif _RE_ROLL.match(name):
                att.rolls.pop(name, None)
            elif (m := _RE_ATTEMPT.match(name)) and int(m[1]) == att.num:
                att.meta = None
        h = self._handles.pop(name, None)
        if h is not None:
            h.close()
        self._cache.drop(name)

    def _read_tail(self, tail: _Tail) -> bool:
        path = self.folder / tail.name
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise _Stale from None
        if size <= tail.offset:
            return False
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise _Stale from None
        try:
            data = os.pread(fd, size - tail.offset, tail.offset)
        finally:
            os.close(fd)
        reader = pa.BufferReader(pa.py_buffer(data))
        pos = 0
        batches = []
        while pos < len(data):
            try:
                msg = ipc.read_message(reader)
            except (pa.ArrowInvalid, OSError, EOFError, ValueError):
                break  # incomplete message: left for the next poll
            if msg is None:
                break
            if msg.type == "schema":
                tail.schema = ipc.read_schema(msg)
            elif msg.type == "record batch" and tail.schema is not None:
                rb = ipc.read_record_batch(msg, tail.schema)
                if rb.num_rows:
                    batches.append(rb)
            pos = reader.tell()
        tail.offset += pos
        if batches:
            tail.add(batches)
        return bool(batches)

    # ---- attempts and supersede -----------------------------------------------------------------------------
    def _make_chain(self) -> list[tuple[_Attempt, int, int]]:
        """(attempt, first_step, cutoff) for attempts with a meta, in attempt order."""
        atts = [a for a in sorted(self._att.values(), key=lambda a: a.num) if a.meta is not None]
        out, cut = [], _INF_STEP
        for a in reversed(atts):
            out.append((a, a.first_step, cut))
            cut = min(cut, a.first_step)
        return out[::-1]

    def _cov(self, att: _Attempt, fine: bool) -> int:
        """Last step rolled up in this attempt's files of the finest level (``fine``) or of the coarse levels."""
        return max([att.first_step] + [hi for (kind, _, hi) in att.rolls.values() if (kind != "c") == fine])

    def _last_raw(self, att: _Attempt) -> int:
        his = [hi for (_, hi, _) in att.segs.values()]
        his += [t.hi for s, t in att.tails.items() if t.n and s not in att.segs]
        return max(his, default=0)

    # ---- raw rows ----------------------------------------------------------------------------------------------
    def _handle(self, name: str):
        h = self._handles.get(name)
        if h is None:
            try:
                h = _open_handle(self.folder / name)
            except FileNotFoundError:
                raise _Stale from None
            self._handles[name] = h
        return h

    def _read_cols(
        self, name: str, group: int, columns: Sequence[str], cache: bool = True, keep: bool = True
    ) -> dict[str, np.ndarray]:
        out, missing = {}, []
        for c in columns:
            v = self._cache.get((name, group, c)) if cache else None
            if v is None:
                missing.append(c)
            else:
                out[c] = v
        if missing:
            if keep:
                h = self._handle(name)
            else:
                try:
                    h = _open_handle(self.folder / name)
                except FileNotFoundError:
                    raise _Stale from None
            missing = [c for c in missing if c in h.names]
            try:
                t = h.read(group, missing) if missing else None
            except (FileNotFoundError, OSError) as e:
                if not (self.folder / name).exists():
                    raise _Stale from e
                raise
            finally:
                if not keep:
                    h.close()
            if missing:
                for c in missing:
                    v = _np(t.column(c))
                    out[c] = v
                    if cache:
                        self._cache.put((name, group, c), v)
        return out

    def _raw(self, att: _Attempt, a: int, b: int, cols: Sequence[str], cache: bool = True) -> dict[str, np.ndarray]:
        """Raw rows of one attempt with ``a <= step <= b``: ``step`` plus those of ``cols`` it has."""
        have = att.columns
        cols = [c for c in cols if c in have and c != "step"]
        parts: list[dict[str, np.ndarray]] = []
        for seq in sorted(set(att.segs) | set(att.tails)):
            if seq in att.segs:
                lo, hi, name = att.segs[seq]
                if hi < a or lo > b:
                    continue
                d = self._read_cols(name, 0, ["step", *cols], cache, keep=False)
            else:
                t = att.tails[seq]
                if not t.n or t.hi < a or t.lo > b:
                    continue
                d = {c: t.column(c) for c in ["step", *cols] if t.has(c)}
            s = d["step"]
            i, j = np.searchsorted(s, a, "left"), np.searchsorted(s, b, "right")
            if j > i:
                parts.append({c: v[i:j] for c, v in d.items()})
        if not parts:
            return {c: np.zeros(0, have[c]) for c in ["step", *cols]}
        if len(parts) == 1:
            return parts[0]
        return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}

    def _raw_view_pieces(self, a: int, b: int, cols: Sequence[str], keys: Sequence[str]) -> _Pieces:
        parts = []
        for att, s, cut in self._chain:
            lo, hi = max(a, s + 1), min(b, cut)
            if lo <= hi:
                r = self._raw(att, lo, hi, cols)
                parts.append(_raw_pieces(r["step"], r, cols, keys))
        return _concat(parts, cols, keys)

    # ---- roll-up rows -------------------------------------------------------------------------------------------
    def _roll_rows(self, att: _Attempt, L: int, b0: int, b1: int, cols, keys) -> tuple[_Pieces, Any]:
        """Roll-up buckets ``b0..b1`` of level ``L`` of one attempt (of a bucket in several files the latest wins),
        and a key that stays the same while they do.

        The buckets from ``b0`` on are assembled once per set of files and kept (a few entries), so a live refresh
        only adds the tail to them.
        """
        fine = L == self.levels[0]
        files = tuple(sorted((hi, str(kind), name) for name, (kind, lo, hi) in att.rolls.items()
                             if (kind != "c") == fine and (hi - 1) // L >= b0))  # fmt: skip
        key = (att.num, L, b0, tuple(cols), tuple(keys), files)
        p = self._roll_memo.get(key)
        if p is None:
            p = self._roll_assemble(L, b0, files, cols, keys)
            self._roll_memo[key] = p
            while len(self._roll_memo) > 1 and sum(map(_nbytes, self._roll_memo.values())) > self._cache.max // 2:
                self._roll_memo.popitem(last=False)
        else:
            self._roll_memo.move_to_end(key)
        if len(p) and (p.lo[-1] - 1) // L > b1:
            p = p.take(slice(0, int(np.searchsorted((p.lo - 1) // L, b1, "right"))))
        return p, (key, len(p))

    def _roll_assemble(self, L: int, b0: int, files, cols, keys) -> _Pieces:
        parts, rank = [], []
        for r, (_, _, name) in enumerate(files):
            h = self._handle(name)
            need = None
            for level, _, g1, rg, r0, r1 in h.meta.get("index", []):
                if level != L or g1 < b0:
                    continue
                need = need or _stat_columns(cols, keys, h.names)
                d = self._read_cols(name, rg, need)
                d = {c: v[r0:r1] for c, v in d.items()}
                parts.append(_table_pieces(d, L, cols, keys, h.names))
                rank.append(np.full(r1 - r0, r))
        if not parts:
            return _empty_pieces(cols, keys)
        p = _concat(parts, cols, keys, sort=False)
        bucket = (p.lo - 1) // L
        rk = np.concatenate(rank)
        if len(parts) > 1 or np.any(bucket[1:] <= bucket[:-1]):
            order = np.lexsort((rk, bucket))
            bs = bucket[order]
            last = np.ones(len(bs), bool)
            last[:-1] = bs[1:] != bs[:-1]
            p, bucket = p.take(order[last]), bs[last]
        if len(p) and bucket[0] < b0:
            p = p.take(bucket >= b0)
        return p

    def _level_parts(self, L: int, a: int, b: int, cols, keys) -> list[tuple[_Pieces, Any]]:
        """Buckets of level ``L`` overlapping ``[a, b]`` in step order, as parts ``(pieces, key)``: per attempt its
        roll-up rows (``key`` stays the same while they do) and the buckets of its raw rows after them (``None``)."""
        parts: list[tuple[_Pieces, Any]] = []
        for att, s, cut in self._chain:
            blo = max((a - 1) // L, s // L)
            bhi = min((b - 1) // L, cut // L - 1)
            if blo > bhi:
                continue
            roll, key = self._roll_rows(att, L, blo, bhi, cols, keys)
            rlo, rhi = max(self._cov(att, L == self.levels[0]) + 1, blo * L + 1, s + 1), min(cut, (bhi + 1) * L)
            r = self._raw(att, rlo, rhi, cols) if rlo <= rhi else None
            if r is None or not len(r["step"]):
                parts.append((roll, key))
                continue
            raw = _raw_pieces(r["step"], r, cols, keys)
            raw = _reduce(raw, (raw.lo - 1) // L)
            if len(roll) and (roll.lo[-1] - 1) // L == (raw.lo[0] - 1) // L:
                # the partial bucket of the last roll-up file continues in the tail: merge just that one
                n = len(roll)
                both = _concat([roll.take(slice(n - 1, None)), raw.take(slice(0, 1))], cols, keys)
                parts += [(roll.take(slice(0, n - 1)), (key, n - 1)), (_reduce(both, np.zeros(2, np.int64)), None),
                          (raw.take(slice(1, None)), None)]  # fmt: skip
            else:
                parts += [(roll, key), (raw, None)]
        return [x for x in parts if len(x[0])]

    def _level_pieces(self, L: int, a: int, b: int, cols, keys) -> _Pieces:
        return _concat([p for p, _ in self._level_parts(L, a, b, cols, keys)], cols, keys)

    def _grouped(self, parts: list[tuple[_Pieces, Any]], width: int, cols, keys) -> _Pieces:
        """Parts merged into buckets of ``width`` steps; a roll-up part's result is kept while its key is the same,
        so a live refresh only merges the tail."""
        out = []
        for p, key in parts:
            if key is None:
                out.append(_reduce(p, (p.lo - 1) // width))
                continue
            k = (key, width)
            r = self._group_memo.get(k)
            if r is None:
                r = self._group_memo[k] = _reduce(p, (p.lo - 1) // width)
                while len(self._group_memo) > 8:
                    self._group_memo.popitem(last=False)
            out.append(r)
        q = _concat(out, cols, keys)
        return _reduce(q, (q.lo - 1) // width)  # groups that span two parts

    def _pieces(self, level_i: int, a: int, b: int, cols, keys) -> _Pieces:
        """Pieces exactly covering the rows in ``[a, b]``: buckets of ``levels[level_i]`` (0 = raw), finer at edges."""
        if a > b:
            return _empty_pieces(cols, keys)
        if level_i == 0:
            return self._raw_view_pieces(a, b, cols, keys)
        L = self.levels[level_i - 1]
        p = self._level_pieces(L, a, b, cols, keys)
        if not len(p):
            return p
        bucket = (p.lo - 1) // L
        ba, bb = (a - 1) // L, (b - 1) // L
        if ba == bb:
            if p.lo[0] < a or p.hi.max() > b:
                return self._pieces(level_i - 1, a, b, cols, keys)
            return p
        keep = np.ones(len(p), bool)
        extra = []
        first = bucket == ba
        if first.any() and p.lo[first].min() < a:
            keep &= ~first
            extra.append(self._pieces(level_i - 1, a, (ba + 1) * L, cols, keys))
        lastb = bucket == bb
        if lastb.any() and p.hi[lastb].max() > b:
            keep &= ~lastb
            extra.append(self._pieces(level_i - 1, bb * L + 1, b, cols, keys))
        if not extra:
            return p
        return _concat([p.take(keep), *extra], cols, keys)

    def _query(self, fn, *args):
        for attempt in range(5):
            try:
                return fn(*args)
            except _Stale:
                self._scan()
                self._chain = self._make_chain()
                self._memo.clear()
                if attempt == 4:
                    raise

    # ---- public API ------------------------------------------------------------------------------------------
    @property
    def levels(self) -> tuple[int, ...]:
        for att, _, _ in self._chain:
            return tuple(int(x) for x in att.meta.get("levels", LEVELS))
        return LEVELS

    def _dtypes(self) -> dict[str, np.dtype]:
        out: dict[str, np.dtype] = {}
        for att, _, _ in self._chain:
            for c, d in att.columns.items():
                out.setdefault(c, d)
        return out

    @property
    def columns(self) -> list[str]:
        """All columns (``step``, ``epoch``, ``t``, then the value columns), across attempts."""
        out: dict[str, None] = {}
        for att, _, _ in self._chain:
            out.update(dict.fromkeys(att.columns))
        return list(out)

    @property
    def attempts(self) -> list[dict[str, int]]:
        """``{"attempt", "first_step", "cutoff", "last_step"}`` per attempt (``cutoff`` None for the last)."""
        return [
            {"attempt": a.num, "first_step": s, "cutoff": None if c == _INF_STEP else c, "last_step": self._last_raw(a)}
            for a, s, c in self._chain
        ]

    def _first_last(self) -> tuple[int, int]:
        """First and last step after supersede, from file names and tails (no reads, except the step column of a
        segment cut by a later attempt's first_step). ``(0, 0)`` when empty."""
        if "first_last" not in self._memo:
            self._memo["first_last"] = self._query(self._first_last_now)
        return self._memo["first_last"]

    def _first_last_now(self) -> tuple[int, int]:
        first, last = None, 0
        for att, _, cut in self._chain:
            spans = [(lo, hi, seq) for seq, (lo, hi, _) in att.segs.items()]
            spans += [(t.lo, t.hi, seq) for seq, t in att.tails.items() if t.n and seq not in att.segs]
            spans = [x for x in spans if x[0] <= cut]
            if not spans:
                continue
            first = min(first if first is not None else _INF_STEP, min(x[0] for x in spans))
            lo, hi, _ = max(spans, key=lambda x: x[2])
            if hi > cut:
                st = self._raw(att, lo, cut, [])["step"]
                hi = int(st[-1]) if len(st) else lo
            last = max(last, hi)
        return (first or 0), last

    def _count(self) -> int:
        if "count" not in self._memo:
            p = self._query(self._pieces, len(self.levels), 1, _INF_STEP, [], ())
            self._memo["count"] = int(p.n.sum())
        return self._memo["count"]

    @property
    def n_steps(self) -> int:
        """Rows (optimizer steps logged) after supersede."""
        return self._count()

    @property
    def first_step(self) -> int:
        """First step logged (0 when empty)."""
        return self._first_last()[0]

    @property
    def last_step(self) -> int:
        """Last step logged (0 when empty)."""
        return self._first_last()[1]

    def _range(self, step_range) -> tuple[int, int]:
        first, last = self._first_last()
        if not last:
            return 1, 0
        a, b = (first, last) if step_range is None else step_range
        a = first if a is None else max(int(a), first)
        b = last if b is None else min(int(b), last)
        return a, b

    def series(
        self,
        columns: Sequence[str] | str,
        max_points: int = 4000,
        step_range: tuple[int | None, int | None] | None = None,
        stats: Sequence[str] = ("min", "max"),
    ) -> dict[str, Series]:
        """Min-max series of ``columns`` over ``step_range`` (inclusive; default the whole run).

        Reads the coarsest roll-up level with at least ``max_points/2`` buckets over the range (raw rows for short
        ranges) and merges them into at most ``max_points/2`` aligned buckets, so ``Series.points()`` has at most
        ``max_points`` points and always holds the range's global min and max. ``stats``: any of ``min``, ``max``,
        ``mean``, ``last``, ``count`` (only those are read).
        """
        cols = [columns] if isinstance(columns, str) else list(columns)
        keys = _keys(stats)
        a, b = self._range(step_range)
        G = max(max_points // 2, 1)
        if a > b:
            return {c: self._series(c, 1, 1, _empty_pieces([c], keys), keys) for c in cols}
        span = b - a + 1
        li = 0
        for i, L in enumerate(self.levels, 1):
            if span // L >= G:
                li = i
        L = self.levels[li - 1] if li else 1
        k = max(1, math.ceil(span / (L * G)))
        while (b - 1) // (k * L) - (a - 1) // (k * L) + 1 > G:
            k += 1
        width = k * L
        r, width = self._query(self._series_pieces, li, a, b, cols, keys, width, max_points)
        return {c: self._series(c, L, width, r, keys) for c in cols}

    def _series_pieces(self, li, a, b, cols, keys, width, max_points) -> tuple[_Pieces, int]:
        """Buckets of ``width`` steps over ``[a, b]`` (raw rows as they are when they fit), and the width used."""
        if li:
            parts = self._level_parts(self.levels[li - 1], a, b, cols, keys)
            if parts and parts[0][0].lo[0] >= a and max(p.hi.max() for p, _ in parts) <= b:
                return self._grouped(parts, width, cols, keys), width  # no bucket cut by the range: cached path
        p = self._pieces(li, a, b, cols, keys)
        if li == 0 and len(p) <= max_points:
            return p, 1
        return _reduce(p, (p.lo - 1) // width), width

    @staticmethod
    def _series(c: str, L: int, width: int, r: _Pieces, keys) -> Series:
        d = r.col(c)
        mean = None
        if "sum" in d:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(d["nfin"] > 0, d["sum"] / np.maximum(d["nfin"], 1), np.nan)
        return Series(
            column=c, level=L, width=width, lo=r.lo, hi=r.hi, n=r.n,
            min=d.get("min"), max=d.get("max"), x_min=d.get("xmin"), x_max=d.get("xmax"),
            mean=mean, last=d.get("last"), nonfinite=d.get("nf"),
        )  # fmt: skip

    def summary(self, column: str, step_range: tuple[int | None, int | None] | None = None) -> Summary:
        """min/max/mean/count/non-finite/last of ``column`` over a range: from roll-ups, raw rows at unaligned edges.

        E.g. the share of clipped steps is ``summary("clipped").mean``; any non-finite loss: ``.nonfinite > 0``.
        """
        keys = _keys(STATS)
        a, b = self._range(step_range)
        li = 0
        for i, L in enumerate(self.levels, 1):
            if b - a + 1 >= L:
                li = i
        p = self._query(self._pieces, li, a, b, [column], keys) if a <= b else _empty_pieces([column], keys)
        if not len(p):
            return Summary(column, 0, 0, math.nan, math.nan, math.nan, math.nan, None, None, None, None)
        r = _reduce(p, np.zeros(len(p), np.int64))
        d = r.col(column)
        nfin, nf = int(d["nfin"][0]), int(d["nf"][0])
        return Summary(
            column=column, count=nfin + nf, nonfinite=nf, min=float(d["min"][0]), max=float(d["max"][0]),
            mean=float(d["sum"][0] / nfin) if nfin else math.nan, last=float(d["last"][0]),
            x_min=int(d["xmin"][0]) if nfin else None, x_max=int(d["xmax"][0]) if nfin else None,
            lo=int(r.lo[0]), hi=int(r.hi[0]),
        )  # fmt: skip

    def to_table(self, step_range: tuple[int | None, int | None] | None = None, columns=None) -> pa.Table:
        """Raw rows with supersede applied, in step order (columns missing in an attempt are null)."""
        a, b = self._range(step_range)
        return self._query(self._to_table, a, b, columns)

    def _to_table(self, a: int, b: int, columns) -> pa.Table:
        tables = []
        for att, s, cut in self._chain:
            lo, hi = max(a, s + 1), min(b, cut)
            if lo > hi:
                continue
            have = att.columns
            cols = [c for c in (columns or have) if c in have and c != "step"]
            r = self._raw(att, lo, hi, cols, cache=False)
            n = len(r["step"])
            if n:
                for c in columns or self.columns:  # a float column this attempt does not have reads NaN
                    if c not in r and self._dtypes().get(c, np.dtype("f8")).kind == "f":
                        r[c] = np.full(n, np.nan, self._dtypes().get(c, np.dtype("f8")))
                tables.append(_table({c: r[c] for c in ["step", *[c for c in (columns or self.columns)
                                                                    if c in r and c != "step"]]}))  # fmt: skip
        if not tables:
            names = ["step", *[c for c in (columns or self.columns) if c != "step"]]
            return _table({c: np.zeros(0, np.int64 if c == "step" else np.float64) for c in names})
        return pa.concat_tables(tables, promote_options="default")

    def tail(self, n: int = 1, columns=None) -> pa.Table:
        """The last ``n`` raw rows (for live numbers)."""
        first, last = self._first_last()
        if not last or n <= 0:
            return self.to_table((1, 0), columns)
        width = n
        while True:
            t = self.to_table((max(first, last - width + 1), last), columns)
            if t.num_rows >= n or last - width + 1 <= first:
                return t.slice(max(t.num_rows - n, 0))
            width *= 4

    def last_step_of_epoch(self, epoch: int) -> int:
        """Largest step whose epoch is ``<= epoch`` (0 if none): where a resume after ``epoch`` epochs starts."""
        a, b = self._first_last()
        if not b:
            return 0
        best = 0
        for li in range(len(self.levels), -1, -1):
            p = self._query(self._pieces, li, a, b, ["epoch"], ("max", "xmax"))
            over = np.flatnonzero(p.col("epoch")["max"] > epoch)
            if not len(over):
                return max(best, int(p.hi.max()) if len(p) else 0)
            i = int(over[0])
            if i > 0:
                best = max(best, int(p.hi[i - 1]))
            if li == 0:
                return best
            a, b = int(p.lo[i]), int(p.hi[i])
        return best

    def close(self) -> None:
        for h in self._handles.values():
            h.close()
        self._handles.clear()

    def __enter__(self) -> StepStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ResumeInfo:
    attempt: int  # the number the next writer must use
    last_step: int  # last step logged (after supersede)
    first_step: int  # where the next attempt starts: last step of ``epochs_done`` epochs, or ``last_step``


def resume_info(folder: str | os.PathLike, epochs_done: int | None = None) -> ResumeInfo:
    """Next attempt number and the surviving steps of a ``steps`` folder (an absent folder: attempt 1, step 0)."""
    folder = Path(folder)
    nums = []
    if folder.is_dir():
        nums = [int(m[1]) for n in os.listdir(folder) if (m := _RE_ATTEMPT.match(n))]
    with StepStore(folder, cache_mb=8) as s:
        last = s.last_step
        first = last if epochs_done is None else s.last_step_of_epoch(epochs_done)
    return ResumeInfo(attempt=max(nums, default=0) + 1, last_step=last, first_step=first)


# ---- writer ----------------------------------------------------------------------------------------------------------
class StepWriter:
    """Appends per-step rows of one attempt to ``<run>/steps/`` (rank 0 only; one writer per folder at a time).

    Args:
        folder: the ``steps`` folder (created).
        attempt: 1 for the first process, then one more per resume (:func:`resume_info`).
        first_step: global steps of the epochs that finished before this attempt (0 at first start); rows of earlier
            attempts after it are superseded.
        columns: value columns, name -> dtype (float32/float64/bool/uint8/ints); ``step``, ``epoch``, ``t`` are
            implicit. Names must not contain ``|``. Across attempts the float columns may differ (a column an
            attempt does not have reads NaN there; a resumed attempt keeps the earlier attempts' columns), the others
            must be the same (ValueError).
        rows_per_segment: rows per compacted segment.
        fmt: ``parquet`` (default) or ``arrow`` (Arrow IPC file, zstd) for segments and roll-ups.
        background: compact in a background thread (False: inline, for tests).
        levels: roll-up bucket sizes (only for a new folder; later attempts reuse the folder's).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        attempt: int,
        first_step: int,
        columns: Mapping[str, Any],
        *,
        rows_per_segment: int = ROWS_PER_SEGMENT,
        fmt: str = "parquet",
        background: bool = True,
        levels: Sequence[int] = LEVELS,
    ):
        self.folder = Path(folder)
        self.attempt, self.first_step = int(attempt), int(first_step)
        if self.attempt < 1 or self.first_step < 0:
            raise ValueError("attempt must be >= 1 and first_step >= 0")
        if fmt not in _FORMATS:
            raise ValueError(f"fmt must be one of {sorted(_FORMATS)}")
        self._fmt = _FORMATS[fmt]
        cols: dict[str, np.dtype] = dict(KEY_COLUMNS)
        for name, dt in columns.items():
            dt = np.dtype(dt)
            if name in KEY_COLUMNS:
                if dt != KEY_COLUMNS[name]:
                    raise ValueError(f"{name} is {KEY_COLUMNS[name]}")
                continue
            if SEP in name or not name:
                raise ValueError(f"bad column name {name!r}")
            if dt not in _ALLOWED:
                raise ValueError(f"{name}: unsupported dtype {dt}")
            cols[name] = dt
        self.columns = cols
        self.rows_per_segment = max(int(rows_per_segment), 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = self._existing_metas()
        if existing and max(existing) >= self.attempt:
            raise ValueError(f"attempt {self.attempt} is not after the existing attempts {sorted(existing)}")
        self.levels = tuple(int(x) for x in (existing[min(existing)].get("levels", LEVELS) if existing else levels))
        for num in sorted(existing):  # a resumed attempt keeps the columns of earlier ones (seeding needs them)
            old = {n: np.dtype(d) for n, d in existing[num].get("columns", [])}
            for name, dt in old.items():
                if name not in cols:
                    if dt.kind != "f":
                        raise ValueError(f"column {name!r} ({dt}) of attempt {num} is missing")
                    cols[name] = dt
            for name, dt in cols.items():
                if name not in old and dt.kind != "f":
                    raise ValueError(f"column {name!r} ({dt}) is new: only float columns can be added on resume")
        self._cleanup()
        self._schema = pa.schema([(n, pa.from_numpy_dtype(d)) for n, d in cols.items()])
        self._value_items = list(cols.items())[1:]
        self._types = [f.type for f in self._schema]
        self._rollup = _Rollup(self.levels, cols)
        self._rolls: dict[int, list[tuple[int, int, str]]] = {}  # tier -> [(lo, hi, name)] of the finest level
        self._coarse: dict[int, dict[str, np.ndarray]] = {}  # attempt -> its coarse roll-up rows
        self.errors: list[BaseException] = []
        self._recover_and_seed()
        meta = {
            "format": FORMAT_VERSION, "attempt": self.attempt, "first_step": self.first_step,
            "columns": [[n, d.name] for n, d in cols.items()],
            "levels": list(self.levels), "rows_per_segment": self.rows_per_segment, "segment_format": fmt,
            "created": time.time(), "pid": os.getpid(),
        }  # fmt: skip
        _write_atomic(self.folder / _attempt_name(self.attempt), json.dumps(meta).encode())
        self._seq = 0
        self._bufs = self._new_bufs()
        self._tail_rows = 0
        self._last = self.first_step
        self._fd: int | None = None
        self._open_tail()
        self._background = background
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._pending: list[tuple[int, dict[str, np.ndarray]]] = []
        self._closed = False

    # ---- setup ----------------------------------------------------------------------------------------------
    def _existing_metas(self) -> dict[int, dict]:
        out = {}
        for n in os.listdir(self.folder):
            if m := _RE_ATTEMPT.match(n):
                try:
                    out[int(m[1])] = json.loads((self.folder / n).read_text())
                except (OSError, ValueError):
                    pass
        return out

    def _cleanup(self) -> None:
        """Remove leftover temp files and files of attempts >= ours that never wrote a meta (a crashed start)."""
        for n in os.listdir(self.folder):
            m = _RE_TAIL.match(n) or _RE_SEG.match(n) or _RE_ROLL.match(n)
            if n.endswith(".tmp") or (m and int(m[1]) >= self.attempt):
                try:
                    os.unlink(self.folder / n)
                except FileNotFoundError:
                    pass

    def _recover_and_seed(self) -> None:
        store = StepStore(self.folder, cache_mb=16, max_attempt=self.attempt - 1)
        for att, _, _ in list(store._chain):
            if att.tails or self._last_raw_beyond(store, att):
                self._recover(att.num)
        store.close()
        store = StepStore(self.folder, cache_mb=16, max_attempt=self.attempt - 1)
        top = max(self.levels)
        raw = store._raw_view_pieces((self.first_step // top) * top + 1, self.first_step, self._rollup.value_cols,
                                     self._rollup.keys)  # fmt: skip
        store.close()
        self._rollup.seed(raw, self.first_step)
        out = {L: p for L, p in self._rollup.open.items() if p is not None}
        if out:
            lo = int(min(p.lo[0] for p in out.values()))
            self._write_roll(self.attempt, lo, self.first_step, out, self._rollup)

    def _cov_both(self, store: StepStore, att: _Attempt) -> int:
        covs = [store._cov(att, True)] + ([store._cov(att, False)] if len(self.levels) > 1 else [])
        return min(covs)

    def _last_raw_beyond(self, store: StepStore, att: _Attempt) -> bool:
        return store._last_raw(att) > self._cov_both(store, att)

    def _recover(self, num: int) -> None:
        """Compact a crashed attempt's tails (and roll up its rows after its last roll-up file) on its behalf."""
        store = StepStore(self.folder, cache_mb=16, max_attempt=num)
        att = store._att[num]
        if att.meta is None:
            store.close()
            return
        cols = att.columns
        rollup = _Rollup(self.levels, cols)
        cov, last = self._cov_both(store, att), store._last_raw(att)
        ext = self._fmt.ext
        for seq, tail in sorted(att.tails.items()):
            if seq not in att.segs and tail.n:
                t = pa.Table.from_arrays([_pa(tail.column(c)) for c in cols], schema=self._schema_of(cols))
                self._fmt.write(self.folder / _seg_name(num, seq, tail.lo, tail.hi, ext), t, {"attempt": num})
        if last > cov:
            top = max(self.levels)
            seed = store._raw_view_pieces((cov // top) * top + 1, cov, rollup.value_cols, rollup.keys)
            rollup.seed(seed, cov)
            r = store._raw(att, cov + 1, last, list(cols))
            out, _ = rollup.advance(rollup.pieces(r))
            self._write_roll(num, int(r["step"][0]), last, out, rollup, track=False)
        for tail in att.tails.values():
            try:
                os.unlink(self.folder / tail.name)
            except FileNotFoundError:
                pass
        store.close()

    @staticmethod
    def _schema_of(cols: Mapping[str, np.dtype]) -> pa.Schema:
        return pa.schema([(n, pa.from_numpy_dtype(d)) for n, d in cols.items()])

    def _open_tail(self) -> None:
        path = self.folder / _tail_name(self.attempt, self._seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._write(self._schema.serialize())

    def _write(self, buf) -> None:
        mv = memoryview(buf)
        while len(mv):
            k = os.write(self._fd, mv)
            mv = mv[k:]

    # ---- appending --------------------------------------------------------------------------------------------
    def append(self, rows: Mapping[str, Any]) -> None:
        """Append rows: ``step`` and ``epoch`` plus value columns as equal-length arrays (missing floats -> NaN,
        missing ``t`` -> now). Steps must increase and be > ``first_step``. Readers see the rows when it returns."""
        if self._closed:
            raise RuntimeError("writer is closed")
        step = np.asarray(rows["step"], np.int64).reshape(-1)
        n = len(step)
        if not n:
            return
        if step[0] <= self._last or (n > 1 and not bool(np.all(step[1:] > step[:-1]))):
            raise ValueError(f"steps must increase and be > {self._last}")
        values = [step]
        for name, dt in self._value_items:
            v = rows.get(name)
            if v is None:
                if name == "t":
                    v = np.full(n, time.time())
                elif dt.kind == "f":
                    v = np.full(n, np.nan, dt)
                else:
                    raise KeyError(f"missing column {name!r}")
            else:
                v = np.asarray(v, dt).reshape(-1)
                if len(v) != n:
                    raise ValueError(f"{name}: {len(v)} values for {n} steps")
            values.append(v)
        arrays = []
        for t, v in zip(self._types, values, strict=True):
            data = pa.py_buffer(np.packbits(v, bitorder="little") if v.dtype == bool else np.ascontiguousarray(v))
            arrays.append(pa.Array.from_buffers(t, n, [None, data]))
        rb = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        try:
            self._write(rb.serialize())
        except OSError:
            # A partial message would make the rest of this tail unreadable: start a new one, these rows are lost.
            self._rotate()
            raise
        for buf, v in zip(self._bufs, values, strict=True):
            buf.append(v)
        self._tail_rows += n
        self._last = int(step[-1])
        if self._tail_rows >= self.rows_per_segment:
            self._rotate()

    def _new_bufs(self) -> list[_Grow]:
        return [_Grow(d, self.rows_per_segment + 64) for d in self.columns.values()]

    def _rotate(self, final: bool = False) -> None:
        os.close(self._fd)
        self._fd = None
        bufs, seq, n = self._bufs, self._seq, self._tail_rows
        self._bufs, self._tail_rows = self._new_bufs(), 0
        self._seq += 1
        if n:
            job = (seq, {c: b.view() for c, b in zip(self.columns, bufs, strict=True)})
            if self._background:
                if self._thread is None:
                    self._queue = queue.Queue()
                    self._thread = threading.Thread(target=self._worker, name="step-store-compact", daemon=True)
                    self._thread.start()
                self._queue.put(job)
            else:
                self._pending.append(job)
                self._drain()
        elif final:
            try:
                os.unlink(self.folder / _tail_name(self.attempt, seq))
            except FileNotFoundError:
                pass
        if not final:
            self._open_tail()

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._pending.append(job)
                self._drain()
            finally:
                self._queue.task_done()

    def _drain(self) -> None:
        while self._pending:
            seq, rows = self._pending[0]
            try:
                self._compact(seq, rows)
            except Exception as e:  # disk full, ...: the rows stay in the tail file; retried with the next one
                self.errors.append(e)
                warnings.warn(f"step store: compaction of tail {seq} failed: {e!r}", RuntimeWarning, stacklevel=2)
                return
            self._pending.pop(0)

    def _compact(self, seq: int, rows: dict[str, np.ndarray]) -> None:
        step = rows["step"]
        lo, hi = int(step[0]), int(step[-1])
        table = pa.Table.from_arrays([_pa(rows[c]) for c in self.columns], schema=self._schema)
        self._fmt.write(self.folder / _seg_name(self.attempt, seq, lo, hi, self._fmt.ext), table,
                        {"attempt": self.attempt, "seq": seq})  # fmt: skip
        _fault("seg")
        out, state = self._rollup.advance(self._rollup.pieces(rows))
        self._write_roll(self.attempt, lo, hi, out, self._rollup)
        self._rollup.open = state
        _fault("roll")
        try:
            os.unlink(self.folder / _tail_name(self.attempt, seq))
        except FileNotFoundError:
            pass
        self._merge_tiers()

    def _write_roll(self, num, lo, hi, out, rollup: _Rollup, track: bool = True) -> None:
        """Roll-up rows as of step ``hi``: the finest level to a new tier-0 file, the coarse levels into the
        attempt's coarse file (rewritten whole: it holds 1/15 of the rows of the finest level, and a whole-run
        query then reads one file, whatever the run length)."""
        fine_level = self.levels[0]
        fine = rollup.arrays({fine_level: out[fine_level]} if fine_level in out else {})
        if fine is not None:
            table, (bounds, index) = rollup.table(fine)
            flo = min(lo, int(fine["lo"][0]))
            name = _roll_name(num, 0, flo, hi, self._fmt.ext)
            self._fmt.write(self.folder / name, table, {"attempt": num, "tier": 0, "index": index}, bounds)
            if track:
                self._rolls.setdefault(0, []).append((flo, hi, name))
        coarse = rollup.arrays({L: p for L, p in out.items() if L != fine_level})
        if coarse is not None:
            self._write_coarse(num, hi, coarse, rollup)

    def _write_coarse(self, num: int, hi: int, new: dict[str, np.ndarray], rollup: _Rollup) -> None:
        olds = [n for n in os.listdir(self.folder) if (m := _RE_ROLL.match(n)) and int(m[1]) == num and m[2] == "c"]
        prev = self._coarse.get(num)
        if prev is None and olds:  # a crashed attempt's, being recovered: its latest coarse file
            latest = max(olds, key=lambda n: int(_RE_ROLL.match(n)[4]))
            h = _open_handle(self.folder / latest)
            t = h.read_all()
            h.close()
            prev = {c: _np(t.column(c)) for c in t.column_names}
        if prev is not None:
            both = {c: np.concatenate([prev[c], new[c]]) for c in new}
            rank = np.concatenate([np.zeros(len(prev["level"])), np.ones(len(new["level"]))])
            order = np.lexsort((rank, both["bucket"], both["level"]))
            lv, bk = both["level"][order], both["bucket"][order]
            last = np.ones(len(order), bool)  # of a bucket in both, the new row wins
            last[:-1] = (lv[1:] != lv[:-1]) | (bk[1:] != bk[:-1])
            new = {c: v[order[last]] for c, v in both.items()}
        table, (bounds, index) = rollup.table(new)
        name = _roll_name(num, "c", int(new["lo"].min()), hi, self._fmt.ext)
        self._fmt.write(self.folder / name, table, {"attempt": num, "tier": "c", "index": index}, bounds)
        _fault("coarse")
        self._coarse[num] = new
        for old in olds:
            if old != name:
                try:
                    os.unlink(self.folder / old)
                except FileNotFoundError:
                    pass

    def _merge_tiers(self) -> None:
        """LSM-style: every ``MERGE_FANOUT`` roll-up files of a tier become one file of the next tier."""
        tier = 0
        while len(self._rolls.get(tier, [])) >= MERGE_FANOUT:
            files = self._rolls[tier]
            tables, rank = [], []
            for r, (_, _, name) in enumerate(files):
                h = _open_handle(self.folder / name)
                t = h.read_all()
                h.close()
                tables.append(t)
                rank.append(np.full(len(t), r))
            t = pa.concat_tables(tables)
            level, bucket = _np(t.column("level")), _np(t.column("bucket"))
            order = np.lexsort((np.concatenate(rank), bucket, level))
            lv, bk = level[order], bucket[order]
            last = np.ones(len(order), bool)  # of a bucket in several files, the later file's row wins
            last[:-1] = (lv[1:] != lv[:-1]) | (bk[1:] != bk[:-1])
            keep = order[last]
            t = t.take(_pa(keep))
            lo, hi = min(f[0] for f in files), max(f[1] for f in files)
            name = _roll_name(self.attempt, tier + 1, lo, hi, self._fmt.ext)
            bounds, index = _roll_groups(level[keep], bucket[keep])
            self._fmt.write(self.folder / name, t, {"attempt": self.attempt, "tier": tier + 1, "index": index}, bounds)
            _fault("merge")
            for _, _, old in files:
                try:
                    os.unlink(self.folder / old)
                except FileNotFoundError:
                    pass
            self._rolls[tier] = []
            self._rolls.setdefault(tier + 1, []).append((lo, hi, name))
            tier += 1

    # ---- finishing ------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until queued compactions are written (appended rows are readable already)."""
        if self._queue is not None:
            self._queue.join()
        elif self._pending:
            self._drain()

    def compact(self) -> None:
        """Compact the current tail now (close does it too)."""
        if self._tail_rows:
            self._rotate()
        self.flush()

    def close(self) -> None:
        """Compact what is left, wait for the background thread, remove the empty tail. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rotate(final=True)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        elif self._pending:
            self._drain()

    def __enter__(self) -> StepWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
