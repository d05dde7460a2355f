"""Dataset charts: labels per class (instances and images), class weights, and box and image sizes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.chart_style import bar, empty, figure, scatter


# ---- dataset counts ------------------------------------------------------------------------------------------------
def counts_figure(
    names: Sequence[str], instances: Sequence[int], images: Sequence[int], *, log_y: bool = False
) -> go.Figure:
    """Grouped bars of instances and images per class (zero-count classes are visible as gaps)."""
    fig = figure("Labels per class", "class", "count", height=max(320, min(600, 20 * len(names))))
    if not names:
        return empty(fig, "No classes")
    fig.add_trace(bar(x=list(names), y=list(instances), name="instances"))
    fig.add_trace(bar(x=list(names), y=list(images), name="images"))
    fig.update_layout(barmode="group", hovermode="x")
    if log_y:
        fig.update_yaxes(type="log", title="count (log)")
    return fig.figure()


def weights_figure(names: Sequence[str], weights: Sequence[float]) -> go.Figure:
    """Bars of the class weights, with 1.0 (unweighted) drawn."""
    fig = figure("Class weights", "class", "weight", height=320)
    if not names:
        return empty(fig, "No classes")
    fig.add_trace(bar(x=list(names), y=list(weights), name="weight"))
    fig.add_hline(y=1.0)
    return fig.figure()


# ---- dataset page: box and image sizes -----------------------------------------------------------------------------
BOX_POINTS = 3000  # points drawn per class: enough to see the spread, light enough for 100k boxes
BOX_EXTREMES = 50  # the smallest and the largest boxes of a class are always drawn: outliers are what users look for


def box_sizes_figure(
    names: Sequence[str], cls: np.ndarray, width: np.ndarray, height: np.ndarray, colours: Sequence[str]
) -> go.Figure:
    """Width x height of the boxes in pixels, one colour per class, log axes (at most ``BOX_POINTS`` per class: every
    k-th box, so the drawn spread is the real one, and the ``BOX_EXTREMES`` smallest and largest by area)."""
    fig = figure("Box sizes (pixels)", "box width (px)", "box height (px)", height=420)
    if not cls.size:
        return empty(fig, "No boxes")
    for c, name in enumerate(names):
        idx = np.flatnonzero(cls == c)
        if not idx.size:
            continue
        if idx.size > BOX_POINTS:
            by_area = idx[np.argsort(width[idx] * height[idx], kind="stable")]
            step = -(-idx.size // (BOX_POINTS - 2 * BOX_EXTREMES))
            extremes = np.concatenate([by_area[:BOX_EXTREMES], by_area[-BOX_EXTREMES:]])
            idx = np.union1d(idx[::step], extremes)
        fig.add_trace(
            scatter(
                x=width[idx], y=height[idx], name=f"{name} ({int((cls == c).sum()):,})", mode="markers",
                marker={"color": colours[c], "size": 5, "opacity": 0.6},
                hovertemplate=f"{name}: %{{x:.1f}} × %{{y:.1f}} px<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    fig.update_layout(hovermode="closest")
    return fig.figure()


def image_sizes_figure(sizes: dict[tuple[int, int], int], shown: int = 20) -> go.Figure:
    """Images per size (width × height), the ``shown`` most common sizes, the rest as one bar."""
    fig = figure("Image sizes", "width × height (px)", "images", height=420)
    if not sizes:
        return empty(fig, "No image sizes read")
    top = list(sizes.items())[:shown]
    labels, counts = [f"{w}×{h}" for (w, h), _ in top], [n for _, n in top]
    if len(sizes) > shown:
        others = len(sizes) - shown
        labels.append(f"{others} other size{'s' * (others != 1)}")
        counts.append(sum(sizes.values()) - sum(counts))
    fig.add_trace(bar(x=labels, y=counts, name="images"))
    fig.update_layout(hovermode="x", showlegend=False)
    return fig.figure()
