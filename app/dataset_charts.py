"""Dataset charts: labels per class (instances and images) and class weights."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app.chart_style import bar, empty, figure


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
