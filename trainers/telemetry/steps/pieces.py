from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from trainers.telemetry.steps.layout import _BIG, ROLL_ROWS_PER_GROUP, SEP, STATS, _is_float, _mean_dtype, _pa

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
