from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
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
