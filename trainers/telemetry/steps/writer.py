from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trainers.telemetry.steps.compaction import Compaction
from trainers.telemetry.steps.layout import (
    _ALLOWED,
    _FORMATS,
    _RE_ATTEMPT,
    _RE_ROLL,
    _RE_SEG,
    _RE_TAIL,
    FORMAT_VERSION,
    KEY_COLUMNS,
    LEVELS,
    ROWS_PER_SEGMENT,
    SEP,
    _attempt_name,
    _pa,
    _seg_name,
    _tail_name,
    _write_atomic,
)
from trainers.telemetry.steps.pieces import _Rollup
from trainers.telemetry.steps.records import _Attempt, _Grow
from trainers.telemetry.steps.store import StepStore


# ---- writer ----------------------------------------------------------------------------------------------------------
class StepWriter(Compaction):
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
