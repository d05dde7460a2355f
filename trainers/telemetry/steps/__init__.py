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

from trainers.telemetry.steps.layout import FORMAT_VERSION, LEVELS
from trainers.telemetry.steps.records import Series, Summary
from trainers.telemetry.steps.store import ResumeInfo, StepStore, resume_info
from trainers.telemetry.steps.writer import StepWriter

__all__ = ["FORMAT_VERSION", "LEVELS", "ResumeInfo", "Series", "StepStore", "StepWriter", "Summary", "resume_info"]
