"""``workbench export RUN``: a run's series as tables that pandas, polars and spreadsheets read directly.

Three files in ``--out`` (default ``<run>/export``), CSV or Parquet:

- ``steps``: one row per standing optimizer step (resumed attempts superseding what they redid): ``step``,
  ``epoch``, ``t``, ``lr/<group>``, ``grad_norm``, ``grad_norm/<group>``, ``clipped``, ``max_norm``, ``loss/<name>``;
- ``epochs``: one row per standing epoch: every ``epoch.metrics`` value (ultralytics' names), ``mean_f1``,
  ``fitness``, ``best_saved``, ``lr/<group>``, ``epoch_time``, the step summary (``steps.grad_norm.p90``, ...) and the
  system readings (``system.data_share``, ...), flattened with dots;
- ``per_class``: one row per epoch and class (long format): ``epoch``, ``id``, ``name``, ``precision``, ``recall``,
  ``f1``, ``ap50``, ``ap``, ``present``.

And, for a run with evidence (``<run>/evidence/``, :mod:`trainers.telemetry.evidence`), one row per validation and
item, ``epoch`` (empty for the final evaluation) and ``final_eval`` first:

- ``predictions``: the sample images' boxes: ``image`` (sample position), ``file``, ``kind`` (``gt``/``pred``),
  ``cls``, ``name``, ``conf`` (1 for ground truth), ``x1``, ``y1``, ``x2``, ``y2`` (original image pixels);
- ``confusion``: the confusion matrix's non-zero cells: ``pred``, ``pred_name``, ``true``, ``true_name``, ``count``
  (class id ``nc`` and name ``background`` for the background row and column);
- ``pr_curves``: ``cls``, ``name``, ``recall``, ``precision`` (IoU 0.5, 101 recall points);
- ``unlabelled``: confident predictions overlapping no label: ``file``, ``cls``, ``name``, ``conf``, the box.

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
from trainers.telemetry.evidence import FINAL, PRED, Evidence
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


def evidence_tables(run_dir: str | os.PathLike[str]) -> dict[str, pa.Table]:
    """The run's evidence as long tables (see the module docstring); empty when it has none."""
    ev = Evidence(run_dir)
    if not ev:
        return {}
    names = [*ev.names, "background"]
    files = [img["file"] for img in ev.images]
    parts: dict[str, list[pa.Table]] = {"predictions": [], "confusion": [], "pr_curves": [], "unlabelled": []}
    for epoch in ev.epochs:
        e = ev.epoch(epoch)

        def tagged(columns: dict[str, Any], n: int, epoch=epoch) -> pa.Table:
            head = {"epoch": pa.array([None if epoch == FINAL else epoch] * n, pa.int64()),
                    "final_eval": pa.array([epoch == FINAL] * n, pa.bool_())}  # fmt: skip
            return pa.table({**head, **columns})

        b = e.boxes
        image = b["image"].astype(int)
        parts["predictions"].append(tagged({
            "image": image, "file": [files[i] if i < len(files) else None for i in image],
            "kind": np.where(b["kind"] == PRED, "pred", "gt"), "cls": b["cls"].astype(int),
            "name": [names[c] for c in b["cls"].astype(int)], "conf": b["conf"],
            **{k: b[k] for k in ("x1", "y1", "x2", "y2")},
        }, len(image)))  # fmt: skip
        cm = e.confusion
        pred, true = np.nonzero(cm)
        parts["confusion"].append(tagged({
            "pred": pred, "pred_name": [names[i] for i in pred], "true": true, "true_name": [names[i] for i in true],
            "count": cm[pred, true],
        }, len(pred)))  # fmt: skip
        pr = e.table("pr")
        cls = pr["cls"].to_numpy().astype(int)
        parts["pr_curves"].append(tagged({
            "cls": cls, "name": [names[c] for c in cls], "recall": pr["recall"], "precision": pr["precision"],
        }, len(cls)))  # fmt: skip
        u = e.unlabelled
        ucls = u["cls"].to_numpy().astype(int)
        parts["unlabelled"].append(tagged({
            "file": u["file"], "cls": ucls, "name": [names[c] for c in ucls], "conf": u["conf"],
            **{k: u[k] for k in ("x1", "y1", "x2", "y2")},
        }, len(ucls)))  # fmt: skip
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def export_run(
    run_dir: str | os.PathLike[str], fmt: str = "csv", out: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write ``steps``, ``epochs``, ``per_class`` and the evidence tables of ``run_dir`` into ``out``; return the files
    written.

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
    tables = {"steps": step_table(log), "epochs": epoch_table(log), "per_class": per_class_table(log)}
    for name, table in {**tables, **evidence_tables(run_dir)}.items():
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
