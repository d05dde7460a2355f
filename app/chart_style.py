"""Shared look of the workbench's charts: figure layout, empty states, markers, frozen-epoch shading, colours.

Pure plotly (no Streamlit); the chart modules build on it. Charts are assembled as plain dicts in a :class:`Chart`
and turned into a ``go.Figure`` once, without plotly's per-property validation (``_validate=False``): building a
dashboard's six figures the usual way, trace by trace and shape by shape, cost about 100 ms of validation and copying
per refresh (measured with cProfile on a 300-epoch, 80-class run); the dicts written here are the plotly schema
(the chart tests read the figures back through plotly's own objects).

The figures are a :class:`Figure`, a ``go.Figure`` whose ``to_dict`` (what ``st.plotly_chart`` serializes on every
rerun, changed or not) encodes numpy arrays as plotly.js typed arrays directly: plotly's own does it through narwhals
at ~0.1 ms per array, about 20 ms of a 300-epoch dashboard refresh (``benchmarks/profile_dashboard_refresh.py``). The
result is the same dict, byte for byte once serialized (``tests/test_charts.py``).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from _plotly_utils.basevalidators import is_homogeneous_array
from _plotly_utils.utils import plotlyjsShortTypes, to_typed_array_spec
from plotly.basedatatypes import BasePlotlyType

from trainers.telemetry.run_log import RunLog

NO_DATA = "No data yet"
# 20 colours that tell apart as lines: plotly's first ten, then ten picked from its Dark24/Light24/Alphabet sets each
# as far (CIE Lab) from the ones before and from black and white as can be; every pair is at least 27 apart (the
# first ten's closest pair). A chart of 20 classes draws each in its own colour (a legend of 20 repeated 10).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#511cfb", "#fe00fa", "#fc0080", "#6c7c32", "#b10da1", "#f8a19f", "#3283fe", "#b68100", "#1c8356", "#86ce00",
)  # fmt: skip


# ---- the figure st.plotly_chart serializes ----------------------------------------------------------------------
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SKIPPED = frozenset({"geojson", "layer", "layers", "range"})  # plotly's is_skipped_key: arrays under these stay
_DOWNCAST = {  # plotly.js has no 64-bit integers: plotly narrows them to the smallest type that holds the values
    "int64": (np.int8, np.int16, np.int32),
    "uint64": (np.uint8, np.uint16, np.uint32),
}


def typed_array(v: np.ndarray) -> Any:
    """``v`` as plotly.js' typed-array spec, exactly as plotly's ``to_typed_array_spec`` writes it (its fallback for
    every dtype this does not encode itself)."""
    name = v.dtype.name
    if not v.dtype.isnative or (name not in plotlyjsShortTypes and name not in _DOWNCAST):
        return to_typed_array_spec(v)
    if v.size == 0:
        return v.copy()
    if name in _DOWNCAST:
        low, high = v.min(), v.max()
        narrow = next((t for t in _DOWNCAST[name] if np.iinfo(t).min <= low and high <= np.iinfo(t).max), None)
        if narrow is None:
            return v.copy()
        v, name = v.astype(narrow), np.dtype(narrow).name
    spec = {"dtype": plotlyjsShortTypes[name], "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        spec["shape"] = str(v.shape)[1:-1]
    return spec


def _encoded(value: Any, in_dict: bool = False) -> Any:
    """A deep copy of a figure's props with plotly's base64 conversion applied (``convert_to_base64``: arrays that are
    a dict's value become typed arrays, except under its skipped keys; arrays inside lists stay arrays)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        return {k: copy.deepcopy(v) if k in _SKIPPED else _encoded(v, True) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_encoded(v) for v in value)
    if in_dict and isinstance(value, np.ndarray):
        return typed_array(value)
    if in_dict and is_homogeneous_array(value):
        return to_typed_array_spec(copy.deepcopy(value))
    return copy.deepcopy(value)


class Figure(go.Figure):
    """A ``go.Figure`` whose ``to_dict`` is plotly's, computed without its per-array narwhals round trip.

    :meth:`Chart.figure` makes one *unbuilt*: it keeps the chart's dicts and builds plotly's objects on the first
    attribute plotly's own code needs (``fig.data``, ``fig.layout``, ``update_layout``... all work as on any
    ``go.Figure``). ``to_dict`` on an unbuilt figure, all ``st.plotly_chart`` calls, writes plotly's dict straight from
    the chart's: building the objects (``_validate=False``, the default template deep-copied into every layout) cost
    ~4 ms for an 8-trace figure, about 10 ms of a dashboard refresh. The default template is read when the dict is
    written or the objects built (plotly reads it when a figure is made: the same unless it changes in between).
    """

    @classmethod
    def unbuilt(cls, data: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
        fig = cls.__new__(cls)
        fig.__dict__["_unbuilt"] = (data, layout)
        return fig

    @property
    def built(self) -> bool:
        return self.__dict__.get("_unbuilt") is None

    def __getattr__(self, name: str) -> Any:
        # Only attributes not found the usual way come here: on an unbuilt figure, plotly's own state (``_data``,
        # ``_layout_obj``...). Build it once, then look again; on a built one the attribute does not exist.
        unbuilt = self.__dict__.get("_unbuilt")
        if unbuilt is None or name.startswith("__"):  # protocol probes (copy, numpy, IPython...) build nothing
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__["_unbuilt"] = None
        data, layout = unbuilt
        go.Figure.__init__(self, data=data, layout=layout, _validate=False)
        return getattr(self, name)

    def __reduce__(self):  # copies and pickles of an unbuilt figure stay unbuilt (plotly's own reads its objects)
        unbuilt = self.__dict__.get("_unbuilt")
        return (Figure.unbuilt, unbuilt) if unbuilt is not None else super().__reduce__()

    def to_dict(self) -> dict[str, Any]:
        unbuilt = self.__dict__.get("_unbuilt")
        if unbuilt is not None:
            data, layout = unbuilt
            if layout.get("template") is None:  # plotly adds the default's after the layout's own props
                layout_dict = _encoded(_in_plotly_order(layout, "template", None)) | _default_template()
            else:
                layout_dict = _encoded({k: layout[k] for k in sorted(layout)})
            return {"data": [_encoded(_in_plotly_order(t, "type", t.get("type", "scatter"))) for t in data],
                    "layout": layout_dict}  # fmt: skip
        if self._frame_objs:  # the charts draw no animation frames: plotly's own path for them
            return super().to_dict()
        return {"data": _encoded(self._data), "layout": _encoded(self._layout)}


def _in_plotly_order(props: dict[str, Any], last: str, value: Any) -> dict[str, Any]:
    """A trace's or layout's top-level props in the order plotly keeps them (its classes set them alphabetically,
    then a trace's ``type``), ``last`` set to ``value`` (``None``: left out); nested dicts keep their order."""
    out = {k: props[k] for k in sorted(props) if k != last}
    if value is not None:
        out[last] = value
    return out


_TEMPLATES: dict[int, tuple[Any, bytes]] = {}


def _default_template() -> dict[str, Any]:
    """``{"template": <the default template's dict>}`` as plotly adds it to a layout without one: encoded, a fresh
    copy (``{}`` when there is no default)."""
    import orjson
    import plotly.io as pio

    default = pio.templates.default
    if default is None:
        return {}
    template = default if isinstance(default, BasePlotlyType) else pio.templates[default]
    hit = _TEMPLATES.get(id(template))
    if hit is None or hit[0] is not template:  # keyed by the object itself: a template registered again is read again
        hit = _TEMPLATES[id(template)] = (template, orjson.dumps({"template": _encoded(template.to_plotly_json())}))
    return orjson.loads(hit[1])


# ---- figure helpers ------------------------------------------------------------------------------------------------
LEGEND_MAX = 25  # entries a legend may list; per-class charts draw the mean plus at most SHOWN classes
ROW_PX = 18  # heatmap row height: fixed, so 365 classes scroll instead of squeezing
FROZEN_FILL = "rgba(148, 103, 189, 0.16)"  # light enough under the lines, dark enough for its legend swatch


class Chart:
    """A figure being built: traces and layout as dicts (the subset of ``go.Figure``'s API the charts use)."""

    def __init__(self, layout: dict[str, Any]):
        self.data: list[dict[str, Any]] = []
        self.layout = layout

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def update_layout(self, **kw: Any) -> None:
        for key, value in kw.items():
            if key == "title" and isinstance(value, str):
                value = {"text": value}
            if isinstance(value, dict) and isinstance(self.layout.get(key), dict):
                self.layout[key] = {**self.layout[key], **value}
            else:
                self.layout[key] = value

    def update_xaxes(self, **kw: Any) -> None:
        self.layout["xaxis"] = {**self.layout.get("xaxis", {}), **_axis(kw)}

    def update_yaxes(self, **kw: Any) -> None:
        self.layout["yaxis"] = {**self.layout.get("yaxis", {}), **_axis(kw)}

    def add_shape(self, **shape: Any) -> None:
        self.layout.setdefault("shapes", []).append(shape)

    def add_annotation(self, **note: Any) -> None:
        self.layout.setdefault("annotations", []).append(note)

    def add_vrect(self, x0: float, x1: float, name: str, fillcolor: str) -> None:
        """A shaded band over ``x0..x1``, listed in the legend by ``name`` (a band nobody names is a puzzle)."""
        self.add_shape(
            type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, name=name, fillcolor=fillcolor,
            line={"width": 0}, layer="below", showlegend=True,
        )  # fmt: skip

    def add_hline(self, y: float, dash: str = "dot", color: str = "gray") -> None:
        self.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=y, y1=y, line={"dash": dash, "color": color})

    def figure(self) -> Figure:
        return Figure.unbuilt(self.data, self.layout)


def _axis(kw: dict[str, Any]) -> dict[str, Any]:
    if "title" in kw and isinstance(kw["title"], str):
        kw = {**kw, "title": {"text": kw["title"]}}
    return kw


def scatter(**kw: Any) -> dict[str, Any]:
    return {"type": "scatter", **kw}


def heatmap(**kw: Any) -> dict[str, Any]:
    return {"type": "heatmap", **kw}


def bar(**kw: Any) -> dict[str, Any]:
    return {"type": "bar", **kw}


def figure(title: str, xaxis: str, yaxis: str, height: int = 340) -> Chart:
    return Chart(
        {
            "title": {"text": title},
            "height": height,
            "margin": {"l": 55, "r": 20, "t": 60, "b": 45},
            "xaxis": {"title": {"text": xaxis}},
            "yaxis": {"title": {"text": yaxis}},
            # on the right, outside the plot: a legend below it covered the x-axis title
            "legend": {
                "orientation": "v",
                "x": 1.02,
                "xanchor": "left",
                "y": 1,
                "yanchor": "top",
                "font": {"size": 11},
            },  # fmt: skip
            "hovermode": "x unified",
        }
    )


def empty(fig: Chart, text: str = NO_DATA) -> go.Figure:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 14})
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig.figure()


def marker(fig: Chart, x: float, name: str, color: str, row: int = 0) -> None:
    """A vertical dashed line with a label above the plot (``name`` is the shape's name, for tests).

    ``row`` stacks labels (0 lowest) so that two markers at the same or nearby x never print over each other.
    """
    fig.add_shape(
        type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, name=name,
        line={"color": color, "dash": "dash", "width": 1.5},
    )  # fmt: skip
    fig.add_annotation(
        x=x, xref="x", y=1.0, yref="paper", yshift=2 + 14 * row, text=name, showarrow=False, yanchor="bottom",
        font={"color": color, "size": 11},
    )  # fmt: skip
    margin = fig.layout.setdefault("margin", {})
    margin["t"] = max(margin.get("t", 0), 78 + 14 * row)  # the labels sit between the title and the plot


@dataclass(frozen=True)
class Mark:
    """Something the doctor found, on the charts: a marker at its first epoch (epoch charts) or its first step with
    the epoch's steps shaded (step charts). ``label`` is short (``divergence``); ``color`` says the severity."""

    label: str
    color: str
    epoch: int | None = None
    steps: tuple[int, int] | None = None


MARK_FILL = "rgba(214, 39, 40, 0.08)"


def epoch_markers(fig: Chart, log: RunLog, marks: Sequence[Mark] = ()) -> None:
    markers = []
    if log.best_epoch is not None:
        markers.append((log.best_epoch, f"best epoch {log.best_epoch}", "#2ca02c"))
    if log.unfreeze_epoch is not None:
        markers.append((log.unfreeze_epoch, f"unfreeze (epoch {log.unfreeze_epoch})", "#9467bd"))
    markers += [(m.epoch, f"{m.label} (epoch {m.epoch})", m.color) for m in marks if m.epoch is not None]
    for row, (x, name, color) in enumerate(markers):
        marker(fig, x, name, color, row)
    frozen = frozen_epochs(log)
    if frozen is not None:
        fig.add_vrect(x0=frozen[0] - 0.5, x1=frozen[1] + 0.5, fillcolor=FROZEN_FILL, name="frozen")


def step_marks(fig: Chart, marks: Sequence[Mark], first_row: int) -> None:
    """The marks on a step chart: a marker at the first step of the finding's epoch, that epoch's steps shaded."""
    for row, m in enumerate([m for m in marks if m.steps is not None], start=first_row):
        assert m.steps is not None
        marker(fig, m.steps[0], f"{m.label} (epoch {m.epoch})", m.color, row)
        fig.add_vrect(x0=m.steps[0], x1=m.steps[1], fillcolor=MARK_FILL, name=f"doctor: {m.label}")


def frozen_epochs(log: RunLog) -> tuple[int, int] | None:
    """First and last epoch that trained with frozen layers (None when nothing was frozen)."""
    frozen_at_start = log.freezes or any(s.get("frozen") for s in log.run_starts)
    if not frozen_at_start or not log.epochs:
        return None
    first = min([first_epoch(log.freezes)] if log.freezes else [1])
    last = (log.unfreeze_epoch - 1) if log.unfreeze_epoch else max(log.epoch_numbers)
    return (first, last) if last >= first else None


def first_epoch(events: Sequence[Mapping[str, Any]]) -> int:
    return min(int(e.get("epoch", 1)) for e in events)


def epoch_axis(fig: Chart, epochs: Sequence[int]) -> None:
    """Whole epochs on the x axis (a 1-2 epoch chart showed 0.5 steps)."""
    if 0 < len(epochs) <= 20:
        fig.update_xaxes(tickmode="linear", dtick=1, tick0=1)
    else:
        fig.update_xaxes(tickformat="d")


def epoch_mode(n: int) -> str:
    return "lines+markers" if n <= 60 else "lines"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]
