"""What the Compare page shows (no Streamlit): the recipe settings that differ between runs and where each run ended
up, as tables, from :func:`trainers.runs.compare.compare_runs` (the comparison ``workbench compare`` prints).

The diff itself is the library's (:func:`trainers.recipe.dotted.diff`); this module only lays it out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.class_charts import compare_classes_figure
from app.run_views import format_metric
from trainers.metrics import MAP50, MAP50_95, MEAN_F1
from trainers.run_files import RECIPE_FILE, STATUS_FILE, TELEMETRY_FILE
from trainers.runs.compare import Comparison
from trainers.telemetry.run_log import RunLog

VERSION_FILES = (STATUS_FILE, RECIPE_FILE, TELEMETRY_FILE)  # what compare_runs reads: a change in one changes it
RESULT_METRICS = (MAP50.label, MAP50_95.label, MEAN_F1.label)  # the kept weights' metrics in the results table
WINNER_MARK = "★"  # the winner column's mark (the best run by the metric it chose best.pt by)


def files_version(run_dirs: Sequence[str | os.PathLike[str]]) -> tuple[tuple[int, int], ...]:
    """``(mtime_ns, size)`` of each file :func:`~trainers.runs.compare.compare_runs` reads, per run: the page computes
    the comparison again only when one of them changed (a missing file is ``(0, 0)``)."""
    out = []
    for run_dir in run_dirs:
        for name in VERSION_FILES:
            try:
                st = (Path(run_dir) / name).stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, 0))
    return tuple(out)


def cell(key: str, value: Any) -> str:
    """A recipe value as the diff table shows it: a customization's ``None`` is ``off`` (the block is off) and a
    setting-less block's ``{}`` is ``on``; strings as they are, everything else as JSON (as ``workbench compare``)."""
    if value is None:
        return "off" if key.startswith("customizations.") else "null"
    if value == {}:
        return "on"
    return value if isinstance(value, str) else json.dumps(value)


def diff_table(comparison: Comparison) -> pd.DataFrame:
    """The settings that differ: one row per dotted key (the index, ``setting``), one column per run, in run order."""
    rows = [[cell(key, v) for v in values] for key, values in comparison.diff.items()]
    table = pd.DataFrame(rows, index=list(comparison.diff), columns=list(comparison.runs), dtype=object)
    table.index.name = "setting"
    return table


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def results_table(comparison: Comparison) -> pd.DataFrame:
    """Where each run ended up: the winner mark, status, epochs done/planned, best epoch and metric (its value a
    number, so the column sorts), the mAP50, mAP50-95 and mean F1 of the weights it kept and which evaluation they
    come from (the final evaluation of best.pt when there is one), and why it stopped (when it says)."""
    best, _why = comparison.winners
    table = pd.DataFrame(
        [
            {
                "winner": WINNER_MARK if r.name in best else "",
                "run": r.name,
                "status": r.status,
                "epochs": f"{r.epochs_done}/{r.epochs_planned or '?'}",
                "best epoch": r.best_epoch,
                "best": format_metric(r.best_metric),
                "best value": _rounded((r.best_metric or {}).get("value")),
                MAP50.label: _rounded(r.map50),
                MAP50_95.label: _rounded(r.map50_95),
                MEAN_F1.label: _rounded(r.mean_f1),
                "metrics of": r.metrics_from or "",
                "stop reason": r.stop_reason or "",
            }
            for r in comparison.results
        ],
        columns=["winner", "run", "status", "epochs", "best epoch", "best", "best value", *RESULT_METRICS,
                 "metrics of", "stop reason"],
    )  # fmt: skip
    return table.astype({"best epoch": "Int64"})  # an integer column with gaps, not 5.0


def identical_curves(curves: Mapping[str, tuple[Sequence[Any], Sequence[Any]]], what: str) -> str | None:
    """One line naming the runs whose curves are the same point for point (the last one drawn hides the others), or
    None. ``curves``: run -> ``(x, y)`` as drawn; a run without a value is left out."""
    groups: dict[tuple, list[str]] = {}
    for run, (x, y) in curves.items():
        points = tuple((float(a), float(b)) for a, b in zip(x, y, strict=False) if b is not None and b == b)
        if points:
            groups.setdefault(points, []).append(run)
    same = [runs for runs in groups.values() if len(runs) > 1]
    if not same:
        return None
    said = "; ".join(f"{', '.join(runs[:-1])} and {runs[-1]}" for runs in same)
    return f"Identical {what} curves: {said} (one line hides the other{'s' if max(map(len, same)) > 2 else ''})."


def metric_curves(logs: Mapping[str, RunLog], key: str) -> dict[str, tuple[list[Any], list[Any]]]:
    """Each run's ``(epochs, values)`` of epoch metric ``key``, as the compare chart draws them."""
    return {run: (list(log.epoch_numbers), list(log.epoch_metric(key))) for run, log in logs.items()}


def classes_figure(logs: dict[str, RunLog]) -> go.Figure:
    """:func:`app.class_charts.compare_classes_figure` with the run names above the heatmap: the page scrolls it in a
    box, and names at the bottom of 80 rows would be out of sight."""
    fig = compare_classes_figure(logs)
    fig.update_xaxes(side="top")
    fig.update_layout(margin={"t": 110, "b": 20}, title={"y": 0.99, "yanchor": "top", "yref": "container"})
    return fig
