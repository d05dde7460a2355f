from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trainers.telemetry.steps.files import StoreFiles
from trainers.telemetry.steps.layout import _INF_STEP, _RE_ATTEMPT, LEVELS, ROWS_PER_SEGMENT, STATS, _table
from trainers.telemetry.steps.levels import LevelReads
from trainers.telemetry.steps.pieces import _concat, _empty_pieces, _keys, _Pieces, _reduce
from trainers.telemetry.steps.records import Series, Summary

GROW_RAW_ROWS = 4 * ROWS_PER_SEGMENT  # whole-run aggregates grow by raw rows up to this many new rows, else re-read


class StepStore(LevelReads, StoreFiles):
    """Reader of ``<run>/steps/``: incremental polling, min-max series, summaries, raw rows.

    Args:
        folder: the ``steps`` folder (it may not exist yet).
        cache_mb: memory budget for caches: decoded column chunks (LRU) and assembled roll-up buckets (half of it).
            The rest a reader holds is its tails (at most ``rows_per_segment`` rows each).
        max_attempt: only look at attempts up to this number (the writer uses it to read earlier attempts).
    """

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
            self._memo["count"] = int(self._whole_run([], ()).n.sum())
        return self._memo["count"]

    def _whole_run(self, cols: list[str], keys: tuple[str, ...]) -> _Pieces:
        """One piece over every standing step, for ``cols``: grown from the one an earlier call built while no step
        was superseded since, by the raw rows after it (a live refresh's few thousand, from the tail it polled and
        the segment compacted meanwhile), instead of descending every roll-up level at the run's end again."""
        first, last = self._first_last()
        memo_key = ("whole", tuple(cols), keys)
        state = (self._supersede_key(), first)
        kept = self._series_memo.get(memo_key)
        if kept is not None and kept[0] == state and kept[1] <= last and last - kept[1] <= GROW_RAW_ROWS:
            done, whole = kept[1], kept[2]
            if done < last:
                new = self._query(self._raw_view_pieces, done + 1, last, cols, keys)
                both = _concat([whole, new], cols, keys)
                whole = _reduce(both, np.zeros(len(both), np.int64))
        else:
            p = self._query(self._pieces, len(self.levels), 1, _INF_STEP, cols, keys) if last else None
            whole = _reduce(p, np.zeros(len(p), np.int64)) if p is not None and len(p) else _empty_pieces(cols, keys)
        self._remember(memo_key, (state, last, whole))
        return whole

    def _remember(self, key: Any, entry: Any) -> None:
        """Keep a whole-run answer (a few, the most recently used)."""
        self._series_memo[key] = entry
        self._series_memo.move_to_end(key)
        while len(self._series_memo) > 8:
            self._series_memo.popitem(last=False)

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
        if step_range is None and li:
            return self._grown_series(li, a, b, cols, keys, width, max_points)
        r, width = self._query(self._series_pieces, li, a, b, cols, keys, width, max_points)
        return {c: self._series(c, L, width, r, keys) for c in cols}

    def _grown_series(self, li, a, b, cols, keys, width, max_points) -> dict[str, Series]:
        """The whole run's series, from the one an earlier call returned when the buckets are the same (same width,
        same first step, no step superseded since): only the buckets from its last one on are read again, so a live
        refresh reads the new steps, not the run (steps only append while the attempts' chain stays the same)."""
        L = self.levels[li - 1]
        memo_key = (tuple(cols), tuple(keys), max_points)
        state = (self._supersede_key(), a, li, width)
        kept = self._series_memo.get(memo_key)
        if kept is not None and kept[0] == state and kept[1] <= b:
            done, old = kept[1], kept[2]
            if done == b:
                self._series_memo.move_to_end(memo_key)
                return old
            j = (done - 1) // width  # the last bucket it returned may have been partial: read again from its start
            a2 = max(a, j * width + 1)
            if b - a2 < GROW_RAW_ROWS:  # a live refresh's new steps: their raw rows, not the level's rewritten file
                p = self._query(self._raw_view_pieces, a2, b, cols, keys)
                r = _reduce(p, (p.lo - 1) // width)
            else:
                r, _ = self._query(self._series_pieces, li, a2, b, cols, keys, width, max_points)
            new = {c: self._series(c, L, width, r, keys) for c in cols}
            out = {c: _spliced(old[c], new[c], j, width) for c in cols}
        else:
            r, width2 = self._query(self._series_pieces, li, a, b, cols, keys, width, max_points)
            out = {c: self._series(c, L, width2, r, keys) for c in cols}
        self._remember(memo_key, (state, b, out))
        return out

    def _supersede_key(self) -> tuple[tuple[int, int, int], ...]:
        return tuple((att.num, s, c) for att, s, c in self._chain)

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
        if step_range is None:
            r = self._whole_run([column], keys)
        else:
            a, b = self._range(step_range)
            li = 0
            for i, L in enumerate(self.levels, 1):
                if b - a + 1 >= L:
                    li = i
            p = self._query(self._pieces, li, a, b, [column], keys) if a <= b else _empty_pieces([column], keys)
            r = _reduce(p, np.zeros(len(p), np.int64)) if len(p) else p
        if not len(r):
            return Summary(column, 0, 0, math.nan, math.nan, math.nan, math.nan, None, None, None, None)
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
        """Largest step whose epoch is ``<= epoch`` (0 if none): where a resume after ``epoch`` epochs starts.

        An epoch that later steps have closed keeps its last step until another attempt starts (a resume only
        supersedes steps after its own start), so closed epochs are remembered across polls: the charts ask on every
        refresh, and the descent through the roll-ups after a poll cost ~30 ms on a 2.1M-step store.
        """
        chain = tuple((att.num, start) for att, start, _ in self._chain)
        if getattr(self, "_epoch_ends_chain", None) != chain:
            self._epoch_ends_chain, self._epoch_ends = chain, {}
        if epoch in self._epoch_ends:
            return self._epoch_ends[epoch]
        a, b = self._first_last()
        if not b:
            return 0
        found, closed = self._last_step_of_epoch(epoch, a, b)
        if closed:
            self._epoch_ends[epoch] = found
        return found

    def _last_step_of_epoch(self, epoch: int, a: int, b: int) -> tuple[int, bool]:
        """``(last step of epoch, whether a later epoch's step exists)``, descending through the levels."""
        best = 0
        for li in range(len(self.levels), -1, -1):
            p = self._query(self._pieces, li, a, b, ["epoch"], ("max", "xmax"))
            over = np.flatnonzero(p.col("epoch")["max"] > epoch)
            if not len(over):
                return max(best, int(p.hi.max()) if len(p) else 0), False
            i = int(over[0])
            if i > 0:
                best = max(best, int(p.hi[i - 1]))
            if li == 0:
                return best, True
            a, b = int(p.lo[i]), int(p.hi[i])
        return best, True

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


def _spliced(old: Series, new: Series, j: int, width: int) -> Series:
    """``old``'s buckets before bucket ``j`` (of ``width`` steps), then ``new``'s (which start at bucket ``j``)."""
    keep = int(np.searchsorted((old.lo - 1) // width, j, "left"))
    fields = {}
    for f in ("lo", "hi", "n", "min", "max", "x_min", "x_max", "mean", "last", "nonfinite"):
        a, b = getattr(old, f), getattr(new, f)
        fields[f] = None if a is None or b is None else np.concatenate([a[:keep], b])
    return Series(column=old.column, level=old.level, width=width, **fields)
