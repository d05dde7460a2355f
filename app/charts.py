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

from trainers.telemetry.run_log import RunLog, as_log
from trainers.telemetry.step_data import MAX_POINTS

NO_DATA = "No data yet"

# Ultralytics' metric names (verbatim, as written into epoch.metrics) and how the charts label them.
DETECTION_METRICS = {
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
}
# Values a compare chart can overlay: label -> how to read it from an epoch event.
COMPARE_METRICS = {
    **{label: key for key, label in DETECTION_METRICS.items()},
    "mean F1": "mean_f1",
    "fitness": "fitness",
}
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


# ---- figure helpers ------------------------------------------------------------------------------------------------
def _figure(title: str, xaxis: str, yaxis: str, height: int = 340) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        xaxis_title=xaxis,
        yaxis_title=yaxis,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18},
        hovermode="x unified",
    )
    return fig


def _empty(fig: go.Figure, text: str = NO_DATA) -> go.Figure:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 14})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def _marker(fig: go.Figure, x: float, name: str, color: str) -> None:
    """A vertical dashed line across the plot with a label on top (``name`` is the shape's name, for tests)."""
    fig.add_shape(
        type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, name=name,
        line={"color": color, "dash": "dash", "width": 1.5},
    )  # fmt: skip
    fig.add_annotation(
        x=x, xref="x", y=1.0, yref="paper", text=name, showarrow=False, yanchor="bottom", font={"color": color},
    )  # fmt: skip


def _epoch_markers(fig: go.Figure, log: RunLog) -> None:
    if log.best_epoch is not None:
        _marker(fig, log.best_epoch, f"best epoch {log.best_epoch}", "#2ca02c")
    if log.unfreeze_epoch is not None:
        _marker(fig, log.unfreeze_epoch, f"unfreeze (epoch {log.unfreeze_epoch})", "#9467bd")


def _epoch_mode(n: int) -> str:
    return "lines+markers" if n <= 60 else "lines"


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


# ---- per-class F1 ----------------------------------------------------------------------------------------------
def f1_figure(source: RunLog | Iterable[Mapping[str, Any]]) -> go.Figure:
    """Per-class F1 over epochs: one line per class, the mean F1 dashed, best-epoch and unfreeze markers."""
    log = as_log(source)
    fig = _figure("Per-class F1", "epoch", "F1")
    table = log.per_class("f1")
    if not log.epochs or not any(v is not None for vals in table.values() for v in vals):
        return _empty(fig, NO_DATA if not log.epochs else "No per-class F1 (turn on the per_class_f1 customization)")
    x = log.epoch_numbers
    mode = _epoch_mode(len(x))
    for i, (name, values) in enumerate(table.items()):
        fig.add_trace(go.Scatter(x=x, y=values, name=name, mode=mode, line={"color": _color(i)}))
    fig.add_trace(
        go.Scatter(
            x=x, y=log.epoch_metric("mean_f1"), name="mean F1", mode=mode, line={"color": "black", "dash": "dot"}
        )
    )
    fig.update_yaxes(range=[0, 1.02])
    _epoch_markers(fig, log)
    return fig


def f1_heatmap(source: RunLog | Iterable[Mapping[str, Any]]) -> go.Figure:
    """Class x epoch heatmap of F1 (one row per class, in id order)."""
    log = as_log(source)
    table = log.per_class("f1")
    fig = _figure("Per-class F1 (class x epoch)", "epoch", "class", height=max(260, 60 + 22 * len(table)))
    fig.update_layout(hovermode="closest")
    if not log.epochs or not any(v is not None for vals in table.values() for v in vals):
        return _empty(fig)
    z = [[np.nan if v is None else v for v in vals] for vals in table.values()]
    fig.add_trace(
        go.Heatmap(
            z=z, x=log.epoch_numbers, y=list(table), zmin=0, zmax=1, colorscale="Viridis", name="F1",
            colorbar={"title": "F1"}, hovertemplate="epoch %{x}<br>%{y}: F1 %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


# ---- metrics and losses --------------------------------------------------------------------------------------------
def metrics_figure(source: RunLog | Iterable[Mapping[str, Any]]) -> go.Figure:
    """mAP50, mAP50-95, precision and recall over epochs, with the best-epoch marker."""
    log = as_log(source)
    fig = _figure("Detection metrics", "epoch", "value")
    present = [k for k in DETECTION_METRICS if k in log.metric_keys()]
    if not present:
        return _empty(fig)
    x = log.epoch_numbers
    for key in present:
        fig.add_trace(go.Scatter(x=x, y=log.epoch_metric(key), name=DETECTION_METRICS[key], mode=_epoch_mode(len(x))))
    _epoch_markers(fig, log)
    return fig


def loss_figure(source: RunLog | Iterable[Mapping[str, Any]]) -> go.Figure:
    """Train (solid) and validation (dashed) losses per epoch; one colour per loss kind (box, cls, dfl...)."""
    log = as_log(source)
    fig = _figure("Losses", "epoch", "loss")
    keys = [k for k in log.metric_keys() if k.startswith(("train/", "val/")) and k.endswith("loss")]
    if not keys:
        return _empty(fig)
    kinds = list(dict.fromkeys(k.split("/", 1)[1] for k in keys))
    x = log.epoch_numbers
    for key in sorted(keys, key=lambda k: (k.split("/", 1)[1], not k.startswith("train/"))):
        split, kind = key.split("/", 1)
        fig.add_trace(
            go.Scatter(
                x=x, y=log.epoch_metric(key), name=key, mode=_epoch_mode(len(x)),
                line={"color": _color(kinds.index(kind)), "dash": "solid" if split == "train" else "dash"},
            )
        )  # fmt: skip
    _epoch_markers(fig, log)
    return fig


# ---- per-step: learning rate and gradient norm ---------------------------------------------------------------------
def _finite(points: tuple[np.ndarray, np.ndarray] | None) -> bool:
    return points is not None and bool(np.isfinite(points[1]).any())


def _unfreeze_marker(fig: go.Figure, log: RunLog) -> None:
    epoch = log.unfreeze_epoch
    step = log.steps.first_step_of_epoch(epoch) if epoch is not None else None
    if step is not None:
        _marker(fig, step, f"unfreeze (epoch {epoch})", "#9467bd")


def lr_figure(
    source: RunLog | Iterable[Mapping[str, Any]], *, log_y: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Learning rate of every named parameter group against the optimizer step (warmup and unfreeze visible)."""
    log = as_log(source)
    fig = _figure("Learning rate per parameter group", "step", "lr")
    series = log.steps.series([f"lr/{g}" for g in log.groups], max_points) if log.n_steps else {}
    groups = [g for g in log.groups if _finite(series.get(f"lr/{g}"))]
    if not groups:
        return _empty(fig)
    for i, g in enumerate(groups):
        x, y = series[f"lr/{g}"]
        fig.add_trace(go.Scatter(x=x, y=y, name=g, mode="lines", line={"color": _color(i)}))
    if log_y:
        fig.update_yaxes(type="log", title="lr (log)")
    _unfreeze_marker(fig, log)
    return fig


def grad_norm_figure(
    source: RunLog | Iterable[Mapping[str, Any]], *, log_y: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Pre-clip total gradient norm per step, the clip threshold, per-group norms; the title gives the clipped share.

    Traces: ``total (pre-clip)``, ``clip threshold`` (when clipping is on), then one ``<group>`` per parameter group.
    """
    log = as_log(source)
    fig = _figure("Gradient norm", "step", "norm")
    wanted = ["grad_norm", "max_norm", *(f"grad_norm/{g}" for g in log.groups)]
    series = log.steps.series(wanted, max_points) if log.n_steps else {}
    if not _finite(series.get("grad_norm")):
        return _empty(fig)
    x, y = series["grad_norm"]
    fig.add_trace(go.Scatter(x=x, y=y, name="total (pre-clip)", mode="lines", line={"color": "black", "width": 1}))
    if _finite(series.get("max_norm")):
        x, y = series["max_norm"]
        fig.add_trace(go.Scatter(x=x, y=y, name="clip threshold", mode="lines", line={"color": "red", "dash": "dash"}))
        share = log.clip_share() or 0.0
        fig.update_layout(title=f"Gradient norm: {share:.1%} of {log.n_steps:,} steps clipped")
    else:
        fig.update_layout(title="Gradient norm (clipping off)")
    for i, g in enumerate(log.groups):
        if _finite(series.get(f"grad_norm/{g}")):
            x, y = series[f"grad_norm/{g}"]
            fig.add_trace(
                go.Scatter(x=x, y=y, name=g, mode="lines", line={"color": _color(i), "width": 1}, opacity=0.7)
            )
    if log_y:
        fig.update_yaxes(type="log", title="norm (log)")
    _unfreeze_marker(fig, log)
    return fig


# ---- compare -------------------------------------------------------------------------------------------------------
def compare_figure(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]], metric: str) -> go.Figure:
    """One line per run for ``metric``: a :data:`COMPARE_METRICS` label or any ``epoch.metrics`` key."""
    fig = _figure(f"{metric} by run", "epoch", metric)
    key = COMPARE_METRICS.get(metric, metric)
    for i, (run, source) in enumerate(logs.items()):
        log = as_log(source)
        if log.epochs:
            x = log.epoch_numbers
            fig.add_trace(
                go.Scatter(x=x, y=log.epoch_metric(key), name=run, mode=_epoch_mode(len(x)), line={"color": _color(i)})
            )
    return fig if fig.data else _empty(fig)


def compare_f1_figure(logs: Mapping[str, RunLog | Iterable[Mapping[str, Any]]], class_name: str) -> go.Figure:
    """One line per run: the F1 of ``class_name`` over epochs."""
    fig = _figure(f"F1 of '{class_name}' by run", "epoch", "F1")
    for i, (run, source) in enumerate(logs.items()):
        log = as_log(source)
        table = log.per_class("f1")
        if class_name in table and any(v is not None for v in table[class_name]):
            x = log.epoch_numbers
            fig.add_trace(
                go.Scatter(x=x, y=table[class_name], name=run, mode=_epoch_mode(len(x)), line={"color": _color(i)})
            )
    if fig.data:
        fig.update_yaxes(range=[0, 1.02])
    return fig if fig.data else _empty(fig)


# ---- dataset counts ------------------------------------------------------------------------------------------------
def counts_figure(
    names: Sequence[str], instances: Sequence[int], images: Sequence[int], *, log_y: bool = False
) -> go.Figure:
    """Grouped bars of instances and images per class (zero-count classes are visible as gaps)."""
    fig = _figure("Labels per class", "class", "count", height=max(320, min(600, 20 * len(names))))
    if not names:
        return _empty(fig, "No classes")
    fig.add_trace(go.Bar(x=list(names), y=list(instances), name="instances"))
    fig.add_trace(go.Bar(x=list(names), y=list(images), name="images"))
    fig.update_layout(barmode="group", hovermode="x")
    if log_y:
        fig.update_yaxes(type="log", title="count (log)")
    return fig


def weights_figure(names: Sequence[str], weights: Sequence[float]) -> go.Figure:
    """Bars of the class weights, with 1.0 (unweighted) drawn."""
    fig = _figure("Class weights", "class", "weight", height=320)
    if not names:
        return _empty(fig, "No classes")
    fig.add_trace(go.Bar(x=list(names), y=list(weights), name="weight"))
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    return fig
