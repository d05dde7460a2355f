from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from trainers.telemetry.steps.layout import _INF_STEP, _RE_ATTEMPT, _RE_ROLL, _RE_SEG, _RE_TAIL, _np, _open_handle
from trainers.telemetry.steps.pieces import (
    _concat,
    _Pieces,
    _raw_pieces,
)
from trainers.telemetry.steps.records import _LRU, _Attempt, _Stale, _Tail


class StoreFiles:
    """The file side of :class:`StepStore`: which files exist, reading the tails, raw rows and roll-ups."""

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
        self._series_memo: OrderedDict[Any, Any] = OrderedDict()  # whole-run series, grown by later polls (store.py)
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
        self._series_memo.clear()
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
                self._series_memo.clear()  # written again under its number, the chain would read as it did
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
        self, name: str, group: int, columns: Sequence[str], cache: bool = True, keep: bool = True, whole: bool = False
    ) -> dict[str, np.ndarray]:
        """``columns`` of a row group, from the cache or the file (``keep``: its handle kept open). ``whole``: on a
        miss, decode and cache every column not cached yet in one read, as the next queries will want the others (a
        refresh's charts asked for a new segment's columns in 4 reads, each opening the file: 6 ms, now 2.5 ms)."""
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
            if missing and whole and cache:
                missing += [c for c in sorted(h.names) if c not in out and c not in missing and
                            self._cache.get((name, group, c)) is None]  # fmt: skip
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
        return {c: out[c] for c in columns if c in out} if whole else out

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
                # the newest segment is what a live refresh reads, for every chart: all its columns in one read
                d = self._read_cols(name, 0, ["step", *cols], cache, keep=False, whole=seq == max(att.segs))
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
