"""Pure chart builders: telemetry events in, ``plotly.graph_objects.Figure`` out.

Nothing here imports Streamlit (or torch): the builders are unit-tested on recorded telemetry
(``tests/test_charts.py``) and reused by the dashboard and the compare page.

Every builder takes a :class:`~trainers.telemetry.run_log.RunLog` (the folded telemetry, resumed attempts already
superseding what they redid) or a plain list of events (``docs/telemetry.md``).

Step series are drawn with min-max decimation (the step store's roll-ups, or
:func:`~trainers.telemetry.step_data.minmax_downsample` for older logs): at most ``MAX_POINTS`` points per trace,
and every bucket keeps its smallest and largest value, so a single gradient spike in 300k steps is still drawn.
Traces are SVG (``go.Scatter``), not WebGL: a few thousand points each draw fast, and headless browsers and pages
with many charts do not run out of WebGL contexts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.chart_style import (
    FROZEN_FILL,
    Chart,
    Mark,
    color,
    empty,
    epoch_axis,
    epoch_markers,
    epoch_mode,
    figure,
    frozen_epochs,
    marker,
    scatter,
    step_marks,
)
from trainers.metrics import DETECTION, FITNESS, MEAN_F1
from trainers.telemetry.run_log import RunLog, as_log
from trainers.telemetry.step_data import MAX_POINTS

# Ultralytics' box metrics (keys as written into epoch.metrics) -> how the charts label them (trainers.metrics).
DETECTION_METRICS = {m.key: m.label for m in DETECTION}
# Values a compare chart can overlay: label -> how to read it from an epoch event.
COMPARE_METRICS = {m.label: m.key for m in (*DETECTION, MEAN_F1, FITNESS)}


def _values(log: RunLog, key: str) -> np.ndarray:
    """An epoch series as floats (NaN: no value): numpy arrays are cheap for plotly to copy and encode."""
    return np.array([np.nan if v is None else v for v in log.epoch_metric(key)], dtype=float)


# ---- metrics and losses --------------------------------------------------------------------------------------------
def metrics_figure(source: RunLog | Iterable[Mapping[str, Any]], marks: Sequence[Mark] = ()) -> go.Figure:
    """mAP50, mAP50-95, precision and recall over epochs, with the best-epoch marker (and the doctor's marks)."""
    log = as_log(source)
    fig = figure("Detection metrics", "epoch", "value")
    present = [k for k in DETECTION_METRICS if k in log.metric_keys()]
    if not present:
        return empty(fig)
    x = np.asarray(log.epoch_numbers)
    for key in present:
        fig.add_trace(scatter(x=x, y=_values(log, key), name=DETECTION_METRICS[key], mode=epoch_mode(len(x))))
    fig.update_yaxes(range=[0, 1.02])  # all four live in [0, 1]; autorange made a flat zero line span -1..1
    epoch_axis(fig, x)
    epoch_markers(fig, log, marks)
    return fig.figure()


def loss_figure(source: RunLog | Iterable[Mapping[str, Any]], marks: Sequence[Mark] = ()) -> go.Figure:
    """Train (solid) and validation (dashed) losses per epoch; one colour per loss kind (box, cls, dfl...)."""
    log = as_log(source)
    fig = figure("Losses", "epoch", "loss")
    keys = [k for k in log.metric_keys() if k.startswith(("train/", "val/")) and k.endswith("loss")]
    if not keys:
        return empty(fig)
    kinds = list(dict.fromkeys(k.split("/", 1)[1] for k in keys))
    x = np.asarray(log.epoch_numbers)
    for key in sorted(keys, key=lambda k: (k.split("/", 1)[1], not k.startswith("train/"))):
        split, kind = key.split("/", 1)
        fig.add_trace(
            scatter(
                x=x, y=_values(log, key), name=key, mode=epoch_mode(len(x)),
                line={"color": color(kinds.index(kind)), "dash": "solid" if split == "train" else "dash"},
            )
        )  # fmt: skip
    epoch_axis(fig, x)
    epoch_markers(fig, log, marks)
    return fig.figure()


# ---- per-step: learning rate and gradient norm ---------------------------------------------------------------------
def _finite(points: tuple[np.ndarray, np.ndarray] | None) -> bool:
    return points is not None and bool(np.isfinite(points[1]).any())


def _unfreeze_marker(fig: Chart, log: RunLog, marks: Sequence[Mark] = ()) -> None:
    """The unfreeze on a step chart, the steps that trained with frozen layers shaded, and the doctor's marks."""
    epoch = log.unfreeze_epoch
    step = log.steps.first_step_of_epoch(epoch) if epoch is not None else None
    if step is not None:
        marker(fig, step, f"unfreeze (epoch {epoch})", "#9467bd")
    step_marks(fig, marks, first_row=int(step is not None))
    frozen = frozen_epochs(log)
    start = log.steps.first_step_of_epoch(frozen[0]) if frozen else None
    if frozen and start is not None:
        end = (step - 1) if step is not None else log.steps.first_step_of_epoch(frozen[1] + 1)
        end = end if end is not None else start + max(log.n_steps - 1, 0)
        fig.add_vrect(x0=start, x1=end, fillcolor=FROZEN_FILL, name="frozen")


def lr_figure(
    source: RunLog | Iterable[Mapping[str, Any]],
    *,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
    marks: Sequence[Mark] = (),
) -> go.Figure:
    """Learning rate of every named parameter group against the optimizer step (warmup and unfreeze visible)."""
    log = as_log(source)
    fig = figure("Learning rate per parameter group", "step", "lr")
    series = log.steps.series([f"lr/{g}" for g in log.groups], max_points) if log.n_steps else {}
    groups = [g for g in log.groups if _finite(series.get(f"lr/{g}"))]
    if not groups:
        return empty(fig)
    for i, g in enumerate(groups):
        x, y = series[f"lr/{g}"]
        fig.add_trace(scatter(x=x, y=y, name=g, mode="lines", line={"color": color(i)}))
    if log_y:
        fig.update_yaxes(type="log", title="lr (log)")
    _unfreeze_marker(fig, log, marks)
    return fig.figure()


def grad_norm_figure(
    source: RunLog | Iterable[Mapping[str, Any]],
    *,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
    marks: Sequence[Mark] = (),
) -> go.Figure:
    """Pre-clip total gradient norm per step, the clip threshold, per-group norms; the title gives the clipped share.

    Traces: ``total (pre-clip)``, ``clip threshold`` (when clipping is on), then one ``<group>`` per parameter group.
    """
    log = as_log(source)
    fig = figure("Gradient norm", "step", "norm")
    wanted = ["grad_norm", "max_norm", *(f"grad_norm/{g}" for g in log.groups)]
    series = log.steps.series(wanted, max_points) if log.n_steps else {}
    if not _finite(series.get("grad_norm")):
        return empty(fig)
    x, y = series["grad_norm"]
    fig.add_trace(scatter(x=x, y=y, name="total (pre-clip)", mode="lines", line={"color": "black", "width": 1}))
    if _finite(series.get("max_norm")):
        x, y = series["max_norm"]
        fig.add_trace(scatter(x=x, y=y, name="clip threshold", mode="lines", line={"color": "red", "dash": "dash"}))
        share = log.clip_share() or 0.0
        fig.update_layout(title=f"Gradient norm: {share:.1%} of {log.n_steps:,} steps clipped")
    else:
        fig.update_layout(title="Gradient norm (clipping off)")
    for i, g in enumerate(log.groups):
        if _finite(series.get(f"grad_norm/{g}")):
            x, y = series[f"grad_norm/{g}"]
            fig.add_trace(scatter(x=x, y=y, name=g, mode="lines", line={"color": color(i), "width": 1}, opacity=0.7))
    if log_y:
        fig.update_yaxes(type="log", title="norm (log)")
    _unfreeze_marker(fig, log, marks)
    return fig.figure()


# ---- compare -------------------------------------------------------------------------------------------------------
def compare_figure(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]], metric: str) -> go.Figure:
    """One line per run for ``metric``: a :data:`COMPARE_METRICS` label or any ``epoch.metrics`` key."""
    fig = figure(f"{metric} by run", "epoch", metric)
    key = COMPARE_METRICS.get(metric, metric)
    for i, (run, source) in enumerate(logs.items()):
        log = as_log(source)
        if log.epochs:
            x = np.asarray(log.epoch_numbers)
            fig.add_trace(
                scatter(x=x, y=_values(log, key), name=run, mode=epoch_mode(len(x)), line={"color": color(i)})
            )
    drawn = np.concatenate([np.asarray(t["y"], dtype=float) for t in fig.data]) if fig.data else np.zeros(0)
    drawn = drawn[np.isfinite(drawn)]
    if not drawn.size:  # runs without this metric yet: say so, not an empty -1..1 axis
        return empty(Chart(fig.layout), f"No {metric} in these runs yet")
    if key in COMPARE_METRICS.values():  # scores in [0, 1]: a flat 0 or a constant drew an axis of -1..1
        fig.update_yaxes(range=[0, 1.02])
    elif drawn.min() == drawn.max():  # a constant: a range around it (plotly spans -1..1 around a constant 0)
        pad = abs(float(drawn[0])) * 0.1 or 0.5
        fig.update_yaxes(range=[float(drawn[0]) - pad, float(drawn[0]) + pad])
    epoch_axis(fig, sorted({int(x) for t in fig.data for x in t["x"]}))
    return fig.figure()
