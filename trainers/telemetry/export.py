"""``workbench export RUN``: a run's series as tables that pandas, polars and spreadsheets read directly.

Three files in ``--out`` (default ``<run>/export``), CSV or Parquet:

- ``steps``: one row per standing optimizer step (resumed attempts superseding what they redid): ``step``,
  ``epoch``, ``t``, ``lr/<group>``, ``grad_norm``, ``grad_norm/<group>``, ``clipped``, ``max_norm``, ``loss/<name>``;
- ``epochs``: one row per standing epoch: every ``epoch.metrics`` value (ultralytics' names), ``mean_f1``,
  ``fitness``, ``best_saved``, ``lr/<group>``, ``epoch_time``, the step summary (``steps.grad_norm.p90``, ...) and the
  system readings (``system.data_share``, ...), flattened with dots;
- ``per_class``: one row per epoch and class (long format): ``epoch``, ``id``, ``name``, ``precision``, ``recall``,
  ``f1``, ``ap50``, ``ap``, ``present``.

Written with pyarrow (already a dependency), files written whole and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trainers.errors import RunError
from trainers.metrics import FITNESS, MEAN_F1, PER_CLASS_COLUMNS
from trainers.run_files import EXPORT_DIR, TELEMETRY_FILE
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.run_reader import RunReader
from trainers.telemetry.step_data import MemorySteps, StoreSteps

FORMATS = ("csv", "parquet")


def step_table(log: RunLog) -> pa.Table:
    """The standing steps of a run as a table (from the step store, or the step events of an older log)."""
    if isinstance(log.steps, StoreSteps):
        return log.steps.store.to_table()
    steps = log.steps
    assert isinstance(steps, MemorySteps)
    return pa.table({name: steps.column(name) for name in steps.columns})


def epoch_table(log: RunLog) -> pa.Table:
    """One row per standing epoch, nested fields flattened with dots (``steps.grad_norm.p90``)."""
    rows = []
    for e in log.epochs:
        row: dict[str, Any] = {"epoch": e.get("epoch"), "step": e.get("step")}
        row.update(e.get("metrics") or {})
        for key in (MEAN_F1.key, FITNESS.key, "best_fitness", "best_saved", "epoch_time"):
            row[key] = e.get(key)
        row.update({f"lr/{g}": v for g, v in (e.get("lr") or {}).items()})
        row.update(_flat("steps", e.get("steps") or {}))
        row.update(_flat("system", e.get("system") or {}))
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({c: [row.get(c) for row in rows] for c in columns}) if rows else pa.table({"epoch": []})


def per_class_table(log: RunLog) -> pa.Table:
    """One row per epoch and class: ``epoch``, ``id``, ``name``, the per-class metrics, ``present``."""
    keys = ("id", "name", *PER_CLASS_COLUMNS, "present")
    out: dict[str, list] = {"epoch": [], **{k: [] for k in keys}}
    for e in log.epochs:
        for row in e.get("per_class") or []:
            out["epoch"].append(e.get("epoch"))
            for k in keys:
                out[k].append(row.get(k))
    return pa.table(out)


def export_run(
    run_dir: str | os.PathLike[str], fmt: str = "csv", out: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write ``steps``, ``epochs`` and ``per_class`` of ``run_dir`` into ``out``; return the files written.

    Raises:
        RunError: Unknown format, or the folder has no telemetry.
    """
    if fmt not in FORMATS:
        raise RunError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run_dir = Path(run_dir)
    if not (run_dir / TELEMETRY_FILE).is_file():
        raise RunError(f"run {run_dir.name!r} has no {TELEMETRY_FILE} yet; nothing to export")
    log = RunReader(run_dir).poll()
    folder = Path(out) if out is not None else run_dir / EXPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (("steps", step_table(log)), ("epochs", epoch_table(log)), ("per_class", per_class_table(log))):
        path = folder / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.partial")
        if fmt == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(_csv_safe(table), tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        written.append(path)
    return written


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}", v))
        return out
    return {prefix: value}


def _csv_safe(table: pa.Table) -> pa.Table:
    """CSV has no NaN: write it as an empty cell, as a spreadsheet expects."""
    columns = []
    for col in table.columns:
        if pa.types.is_floating(col.type):
            values = col.to_numpy(zero_copy_only=False)
            col = pa.array(values, mask=np.isnan(values))
        columns.append(col)
    return pa.table(columns, names=table.column_names)
