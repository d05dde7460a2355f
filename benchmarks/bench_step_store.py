"""Step store (trainers/telemetry/steps/) on a COCO-length run: bytes per step, append and compaction cost, reads.

Writes ``--epochs`` x ``--steps`` optimizer steps (default 300 x 7,000 = 2.1M) through ``StepWriter`` in batches of
``--batch`` rows (32, what the trainer flushes), with ``--groups`` param groups: ``lr/<g>`` (float64; warmup per
step for 3 epochs, then constant within an epoch), ``grad_norm`` and ``grad_norm/<g>`` (float32, a seeded random walk
in log space plus noise, full precision), ``clipped``, ``max_norm``, ``--losses`` losses (float32 random walks with
noise) and ``t`` (float64, jittered step times). One huge gradient-norm spike sits at a random step.

Figures (JSON with ``--json``), per segment format (``--format parquet``, ``arrow`` or ``both``):

- ``bytes_per_step``: everything under ``steps/`` after ``close()``, divided by the steps (``segments_bps`` and
  ``rollups_bps`` split it). Goal <= 100.
- ``append_us_median`` / ``append_us_p99`` / ``append_us_max``: one ``append`` of 32 rows (the training thread's
  cost). Goal < 200 us. The appends here run back to back, so while a background compaction runs they wait for the
  GIL (up to one 5 ms switch interval): ``append_excess_ms_per_compaction`` is the time all appends spent above
  their median, per compaction (every 8,192 steps): what compaction costs the training thread.
- ``compaction_ms_median`` / ``compaction_ms_max``: one background compaction (segment + roll-up file + tier merges).
- ``cold_series_ms``: a fresh process opens the store and gets 4,000-point series of every grad-norm and loss column
  over the whole run; ``reader_rss_mb``: that process's RSS growth for it. Both include pyarrow's one-time start-up
  (Parquet reader code paged in, memory pool): ``*_second_reader`` are a second ``StepStore`` opened next to the
  first in that process (what one more open run costs), ``cold_series_ms_in_process`` a new reader in this process.
- ``poll_nothing_new_us``: ``poll()`` with nothing new (median of 2,000), once the folder has been quiet 1.5 s;
  ``poll_nothing_new_recent_us``: the same within 1.5 s of a folder change (it then lists the folder).
- ``refresh_32_rows_ms``: 32 new rows appended, then ``poll()`` + the same series (a live dashboard refresh).
- ``poll_one_epoch_ms``: one epoch (7,000 rows) appended, then ``poll()`` + the same series.
- ``spike_found``: the spike's value and step are among the whole-run series points.

    python benchmarks/bench_step_store.py [--epochs 300] [--steps 7000] [--groups 6] [--losses 4]
                                          [--format both] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from trainers.telemetry.steps import StepStore, StepWriter  # noqa: E402
from trainers.telemetry.steps.layout import ROWS_PER_SEGMENT  # noqa: E402

GROUP_NAMES = ["head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias"]
LOSS_NAMES = ["box_loss", "cls_loss", "dfl_loss", "l1_loss", "aux_loss", "seg_loss"]
MAX_NORM = 10.0
T0 = 1_760_000_000.0


class RunData:
    """Seeded generator of one run's per-step columns, epoch by epoch."""

    def __init__(self, epochs: int, steps: int, groups: int, losses: int, seed: int = 0):
        self.epochs, self.steps = epochs, steps
        self.groups = [GROUP_NAMES[i] if i < len(GROUP_NAMES) else f"group{i}" for i in range(groups)]
        self.losses = [LOSS_NAMES[i] if i < len(LOSS_NAMES) else f"loss{i}" for i in range(losses)]
        self.rng = np.random.default_rng(seed)
        self.t = T0
        self.walk = 0.0
        self.loss_walk = np.zeros(losses)
        total = epochs * steps
        self.spike_step = int(self.rng.integers(1, total + 1))
        self.spike_value = 1e6

    def columns(self) -> dict[str, str]:
        cols = {f"lr/{g}": "float64" for g in self.groups}
        cols["grad_norm"] = "float32"
        cols.update({f"grad_norm/{g}": "float32" for g in self.groups})
        cols["clipped"] = "bool"
        cols["max_norm"] = "float32"
        cols.update({f"loss/{k}": "float32" for k in self.losses})
        return cols

    def epoch(self, e: int) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.steps
        step = np.arange((e - 1) * n + 1, e * n + 1, dtype=np.int64)
        dt = 0.05 * rng.lognormal(0.0, 0.1, n)
        t = self.t + np.cumsum(dt)
        self.t = float(t[-1])
        out: dict[str, np.ndarray] = {"step": step, "epoch": np.full(n, e, np.int32), "t": t}
        warm = 3 * n
        for g in self.groups:
            base = 0.01 * (0.1 if g.startswith("backbone/") else 1.0)
            after = base * (1.0 - 0.99 * (e - 1) / self.epochs)  # ultralytics: one LR per epoch after warmup
            start = 0.1 if g.endswith("bias") else 0.0
            lr = np.where(step <= warm, start + (after - start) * step / warm, after)
            out[f"lr/{g}"] = lr.astype(np.float64)
        walk = self.walk + np.cumsum(rng.normal(0.0, 0.01, n))
        self.walk = float(walk[-1]) * 0.999
        total = np.exp(np.log(100.0) + walk + rng.normal(0.0, 0.25, n))
        hit = step == self.spike_step
        total[hit] = self.spike_value
        out["grad_norm"] = total.astype(np.float32)
        share = rng.random((len(self.groups), n)) + 0.05
        share /= share.sum(axis=0)
        for i, g in enumerate(self.groups):
            out[f"grad_norm/{g}"] = (total * np.sqrt(share[i])).astype(np.float32)
        out["clipped"] = total > MAX_NORM
        out["max_norm"] = np.full(n, MAX_NORM, np.float32)
        for i, k in enumerate(self.losses):
            lw = self.loss_walk[i] + np.cumsum(rng.normal(0.0, 0.003, n))
            self.loss_walk[i] = lw[-1]
            level = (1.5 + 0.3 * i) / (1.0 + e / 50.0)
            out[f"loss/{k}"] = (level * np.exp(lw) * rng.lognormal(0.0, 0.2, n)).astype(np.float32)
        return out


def chart_columns(data: RunData) -> list[str]:
    return ["grad_norm", *[f"grad_norm/{g}" for g in data.groups], *[f"loss/{k}" for k in data.losses]]


def draw(store: StepStore, cols: list[str]) -> dict:
    return store.series(cols, max_points=4000)


def folder_bytes(folder: Path) -> tuple[int, int, int]:
    seg = roll = other = 0
    for p in folder.iterdir():
        size = p.stat().st_size
        if p.name.startswith("seg-"):
            seg += size
        elif p.name.startswith("roll-"):
            roll += size
        else:
            other += size
    return seg, roll, other


_CHILD = r"""
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
sys.path.insert(0, sys.argv[1])
from trainers.telemetry.steps import StepStore
import numpy as np, pyarrow.parquet, pyarrow.ipc
folder, cols = sys.argv[2], json.loads(sys.argv[3])
before = rss()
t0 = time.perf_counter()
s = StepStore(folder)
ser = s.series(cols, max_points=4000)
dt = time.perf_counter() - t0
pts = max(len(v.points()[0]) for v in ser.values())
after = rss()
t0 = time.perf_counter()
s2 = StepStore(folder)  # a second reader, the first still open: what one more open run costs, libraries loaded
ser2 = s2.series(cols, max_points=4000)
dt2 = time.perf_counter() - t0
print(json.dumps({"cold_series_ms": dt * 1e3, "reader_rss_mb": after - before, "points": pts,
                  "cold_series_ms_second": dt2 * 1e3, "reader_rss_mb_second": rss() - after}))
"""


def bench_format(fmt: str, args, root: Path) -> dict:
    data = RunData(args.epochs, args.steps, args.groups, args.losses, seed=args.seed)
    folder = root / fmt / "steps"
    cols = chart_columns(data)
    compaction: list[float] = []
    real_compact = StepWriter._compact

    def timed_compact(self, seq, table):
        t0 = time.perf_counter()
        try:
            return real_compact(self, seq, table)
        finally:
            compaction.append(time.perf_counter() - t0)

    StepWriter._compact = timed_compact
    try:
        w = StepWriter(folder, 1, 0, data.columns(), rows_per_segment=args.rows_per_segment, fmt=fmt)
        append_ns: list[int] = []
        b = args.batch
        t_write = time.perf_counter()
        for e in range(1, args.epochs):  # all but the last epoch
            ep = data.epoch(e)
            for i in range(0, args.steps, b):
                chunk = {c: v[i : i + b] for c, v in ep.items()}
                t0 = time.perf_counter_ns()
                w.append(chunk)
                append_ns.append(time.perf_counter_ns() - t0)
        w.flush()
        write_s = time.perf_counter() - t_write

        # cold: fresh processes (RSS growth too; median of 3), then new readers in this process (median of 5)
        colds = []
        for _ in range(args.cold_runs):
            child = subprocess.run(
                [sys.executable, "-c", _CHILD, str(REPO), str(folder), json.dumps(cols)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            colds.append(json.loads(child.stdout))
        cold = {k: statistics.median(c[k] for c in colds) for k in colds[0]}
        in_process = []
        for _ in range(5):
            t0 = time.perf_counter()
            reader = StepStore(folder)
            series = draw(reader, cols)
            in_process.append(time.perf_counter() - t0)
        cold_in_process = statistics.median(in_process)

        time.sleep(args.quiet_wait)  # let the folder's mtime age past the rescan window (1.5 s)
        reader.poll()
        polls = []
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            reader.poll()
            polls.append(time.perf_counter_ns() - t0)
        os.utime(folder)  # a folder change just now: the next polls list the folder
        recent = []
        for _ in range(200):
            t0 = time.perf_counter_ns()
            reader.poll()
            recent.append(time.perf_counter_ns() - t0)

        # live refreshes: 32 rows, poll + series, for the first ~1,000 rows of the last epoch
        last = data.epoch(args.epochs)
        refresh = []
        for i in range(0, min(1024, args.steps), b):
            w.append({c: v[i : i + b] for c, v in last.items()})
            t0 = time.perf_counter()
            reader.poll()
            draw(reader, cols)
            refresh.append(time.perf_counter() - t0)
        # the rest of the epoch at once, then one poll + series
        rest = min(1024, args.steps)
        for i in range(rest, args.steps, b):
            w.append({c: v[i : i + b] for c, v in last.items()})
        w.flush()
        t0 = time.perf_counter()
        reader.poll()
        series = draw(reader, cols)
        one_epoch = time.perf_counter() - t0
        w.close()
    finally:
        StepWriter._compact = real_compact

    total = args.epochs * args.steps
    seg, roll, other = folder_bytes(folder)
    med = statistics.median(append_ns)
    excess = sum(max(a - med, 0) for a in append_ns) / 1e6  # ms the appends spent above their median
    reader.poll()
    x, y = reader.series("grad_norm", max_points=4000)["grad_norm"].points()
    spike_found = bool(np.any((x == data.spike_step) & (y == np.float32(data.spike_value))))
    pts = max(len(s.points()[0]) for s in series.values())
    result = {
        "format": fmt,
        "steps": total,
        "columns": 3 + len(data.columns()),
        "bytes_per_step": (seg + roll + other) / total,
        "segments_bps": seg / total,
        "rollups_bps": roll / total,
        "files": len(os.listdir(folder)),
        "append_us_median": statistics.median(append_ns) / 1e3,
        "append_us_p99": float(np.percentile(append_ns, 99)) / 1e3,
        "append_us_max": max(append_ns) / 1e3,
        "append_excess_ms_per_compaction": excess / max(len(compaction), 1),
        "compaction_ms_median": statistics.median(compaction) * 1e3 if compaction else None,
        "compaction_ms_max": max(compaction) * 1e3 if compaction else None,
        "write_s": write_s,
        "cold_series_ms": cold["cold_series_ms"],
        "cold_series_ms_in_process": cold_in_process * 1e3,
        "reader_rss_mb": cold["reader_rss_mb"],
        "cold_series_ms_second_reader": cold["cold_series_ms_second"],
        "reader_rss_mb_second_reader": cold["reader_rss_mb_second"],
        "poll_nothing_new_us": statistics.median(polls) / 1e3,
        "poll_nothing_new_recent_us": statistics.median(recent) / 1e3,
        "refresh_32_rows_ms": statistics.median(refresh) * 1e3,
        "refresh_32_rows_ms_max": max(refresh) * 1e3,
        "poll_one_epoch_ms": one_epoch * 1e3,
        "points_per_trace": pts,
        "traces": len(cols),
        "spike_found": spike_found,
        "reader_cache_mb": reader._cache.bytes / 1e6,
    }
    reader.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--groups", type=int, default=6)
    p.add_argument("--losses", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rows-per-segment", type=int, default=ROWS_PER_SEGMENT)
    p.add_argument("--format", choices=["parquet", "arrow", "both"], default="both")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold-runs", type=int, default=3, help="fresh reader processes for the cold figures")
    p.add_argument("--quiet-wait", type=float, default=1.6, help="seconds before timing polls with nothing new")
    p.add_argument("--keep", type=Path, default=None, help="write here and keep it (default: a temp dir, removed)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="wb-steps-"))
    try:
        fmts = ["parquet", "arrow"] if args.format == "both" else [args.format]
        results = [bench_format(f, args, root) for f in fmts]
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
    else:
        for r in results:
            print("\n".join(f"{k:>28}: {round(v, 3) if isinstance(v, float) else v}" for k, v in r.items()))
            print()


if __name__ == "__main__":
    main()
