"""Per-class charts for 80-365 classes: F1 lines of the mean and at most 20 chosen classes, a class x epoch heatmap
with fixed row height (the page scrolls it within 900 px), and per-class differences between runs (class x run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.chart_style import (
    LEGEND_MAX,
    NO_DATA,
    ROW_PX,
    Mark,
    color,
    empty,
    epoch_axis,
    epoch_markers,
    epoch_mode,
    figure,
    heatmap,
    scatter,
)
from trainers.metrics import MEAN_F1
from trainers.telemetry import per_class
from trainers.telemetry.run_log import RunLog, as_log


# ---- per-class F1 ----------------------------------------------------------------------------------------------
def f1_figure(
    source: RunLog | Iterable[Mapping[str, Any]], classes: Sequence[str] | None = None, marks: Sequence[Mark] = ()
) -> go.Figure:
    """Per-class F1 over epochs: the mean dashed, and ``classes`` (default: all if few, else the worst, rarest and
    most changed, at most :data:`~trainers.telemetry.per_class.SHOWN`); best-epoch and unfreeze markers."""
    log = as_log(source)
    fig = figure("Per-class F1", "epoch", "F1", height=380)
    names, epochs, values = per_class.matrix(log, "f1")
    epochs = np.asarray(epochs)
    if not log.epochs or not np.isfinite(values).any():
        return empty(fig, NO_DATA if not log.epochs else "No per-class F1 (turn on the per_class_f1 customization)")
    if classes is None:
        classes = list(per_class.default_classes(per_class.class_rows(log)))
    shown = [n for n in classes if n in names][: LEGEND_MAX - 1]
    mode = epoch_mode(len(epochs))
    # the mean first, so it heads the legend and stays visible when the legend scrolls
    fig.add_trace(
        scatter(
            x=epochs,
            y=np.array([np.nan if v is None else v for v in log.epoch_metric(MEAN_F1.key)], dtype=float),
            name=MEAN_F1.label,
            mode=mode,
            line={"color": "black", "dash": "dot"},
        )
    )
    # coloured by place among the classes shown, so 20 lines have 20 colours (by class id, 80 classes went round the
    # palette and person and fire hydrant were both blue); a NaN is a gap
    for k, name in enumerate(shown):
        fig.add_trace(scatter(x=epochs, y=values[names.index(name)], name=name, mode=mode, line={"color": color(k)}))
    if len(shown) < len(names):
        fig.update_layout(title=f"Per-class F1: {len(shown)} of {len(names)} classes and the mean")
    fig.update_yaxes(range=[0, 1.02])
    epoch_axis(fig, epochs)
    epoch_markers(fig, log, marks)
    return fig.figure()


def _colorbar(rows: int) -> dict[str, Any]:
    """At most 400 px long, at the top of the heatmap: in a scrolling box a centred bar sat out of sight."""
    return {"title": "F1", "len": min(1.0, 400 / heatmap_height(rows)), "y": 1.0, "yanchor": "top"}


def f1_heatmap(source: RunLog | Iterable[Mapping[str, Any]], order: Sequence[str] | None = None) -> go.Figure:
    """Class x epoch heatmap of F1, one fixed-height row per class in ``order`` (default: worst F1 first).

    The figure grows with the classes (:data:`ROW_PX` per row); the page puts it in a scrolling box of at most 900 px.
    """
    log = as_log(source)
    names, epochs, values = per_class.matrix(log, "f1")
    if order is None:
        order = [r.name for r in per_class.sort_rows(per_class.class_rows(log), "f1")]
    rows = [n for n in order if n in names] or names
    fig = figure("Per-class F1 (class x epoch)", "epoch", "class", height=heatmap_height(len(rows)))
    fig.update_layout(hovermode="closest", margin={"l": 110, "r": 20, "t": 50, "b": 45})
    if not log.epochs or not np.isfinite(values).any():
        return empty(fig)
    z = values[[names.index(n) for n in rows]]
    fig.add_trace(
        heatmap(
            z=z, x=epochs, y=rows, zmin=0, zmax=1, colorscale="Viridis",  # NaN cells are drawn empty
            name="F1", colorbar=_colorbar(len(rows)),
            hovertemplate="epoch %{x}<br>%{y}: F1 %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category", tickfont={"size": 10})
    epoch_axis(fig, epochs)
    return fig.figure()


def heatmap_height(rows: int) -> int:
    """Pixel height of a heatmap with ``rows`` rows of :data:`ROW_PX` (plus title and axis)."""
    return max(260, 100 + ROW_PX * rows)


def compare_f1_figure(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]], class_name: str) -> go.Figure:
    """One line per run: the F1 of ``class_name`` over epochs."""
    fig = figure(f"F1 of '{class_name}' by run", "epoch", "F1")
    for i, (run, source) in enumerate(logs.items()):
        log = as_log(source)
        names, epochs, values = per_class.matrix(log, "f1")
        if class_name in names and np.isfinite(values[names.index(class_name)]).any():
            y = [None if not np.isfinite(v) else float(v) for v in values[names.index(class_name)]]
            fig.add_trace(scatter(x=epochs, y=y, name=run, mode=epoch_mode(len(epochs)), line={"color": color(i)}))
    if fig.data:
        fig.update_yaxes(range=[0, 1.02])
        epoch_axis(fig, sorted({x for t in fig.data for x in t["x"]}))
    return fig.figure() if fig.data else empty(fig)


def class_by_run(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]]) -> tuple[list[str], list[str], np.ndarray]:
    """``(classes, runs, F1 at each run's last epoch)``, classes ordered by how much the runs differ (largest first)."""
    runs = list(logs)
    last: dict[str, dict[str, float]] = {}
    for run, source in logs.items():
        names, _, values = per_class.matrix(as_log(source), "f1")
        for i, name in enumerate(names):
            if values.shape[1] and np.isfinite(values[i, -1]):
                last.setdefault(name, {})[run] = float(values[i, -1])
    classes = list(last)
    z = np.array([[last[c].get(r, np.nan) for r in runs] for c in classes]).reshape(len(classes), len(runs))
    spread = np.nan_to_num(np.nanmax(z, axis=1) - np.nanmin(z, axis=1)) if z.size and len(runs) > 1 else np.zeros(0)
    order = np.argsort(-spread, kind="stable") if spread.size else np.arange(len(classes))
    return [classes[i] for i in order], runs, z[order] if z.size else z


def compare_classes_figure(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]]) -> go.Figure:
    """Class x run heatmap of the last epoch's F1 (classes that differ most first): per-class differences at a glance
    for 80-365 classes, instead of one column per class."""
    classes, runs, z = class_by_run(logs)
    fig = figure("Per-class F1 by run (last epoch; most different first)", "run", "class", heatmap_height(len(classes)))
    fig.update_layout(hovermode="closest", margin={"l": 110, "r": 20, "t": 50, "b": 80})
    if not classes:
        return empty(fig)
    fig.add_trace(
        heatmap(
            z=np.where(np.isfinite(z), z, None).tolist(), x=runs, y=classes, zmin=0, zmax=1, colorscale="Viridis",
            colorbar=_colorbar(len(classes)),
            hovertemplate="%{x}<br>%{y}: F1 %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category", tickfont={"size": 10})
    fig.update_xaxes(type="category")
    return fig.figure()
