from __future__ import annotations

from typing import Any

import numpy as np

from trainers.telemetry.steps.pieces import (
    _concat,
    _empty_pieces,
    _nbytes,
    _Pieces,
    _raw_pieces,
    _reduce,
    _stat_columns,
    _table_pieces,
)
from trainers.telemetry.steps.records import _Attempt


class LevelReads:
    """Reading the roll-up levels of :class:`StepStore` (a mixin over its files: handles, raw rows, caches)."""

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
