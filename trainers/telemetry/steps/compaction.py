from __future__ import annotations

import os
import warnings

import numpy as np
import pyarrow as pa

from trainers.telemetry.steps.layout import (
    _RE_ROLL,
    MERGE_FANOUT,
    _fault,
    _np,
    _open_handle,
    _pa,
    _roll_name,
    _seg_name,
    _tail_name,
)
from trainers.telemetry.steps.pieces import _roll_groups, _Rollup

# ---- writer ----------------------------------------------------------------------------------------------------------


class Compaction:
    """Compaction of :class:`StepWriter`: the background thread that turns tails into segments and roll-ups."""

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
