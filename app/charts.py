"""Pure chart builders: telemetry events in, ``plotly.graph_objects.Figure`` out.

Nothing here imports Streamlit (or torch): the builders are unit-tested on recorded telemetry
(``tests/test_charts.py``) and reused by the dashboard and the compare page.

Events follow ``docs/telemetry.md``. They are first folded into a :class:`RunLog`: the small events (``run_start``,
``epoch``, ``freeze``/``unfreeze``, ``run_end``) are kept as they are, the (many) ``step`` events become numpy
columns, and events superseded by a resume are dropped (:func:`drop_superseded`). Every builder accepts either a
``RunLog`` or a plain list of events.

Step series are drawn with min-max decimation (:func:`minmax_downsample`): at most ``MAX_POINTS`` points per trace,
and every bucket keeps its smallest and largest value, so a single gradient spike in 300k steps is still drawn.
Traces are SVG (``go.Scatter``), not WebGL: a few thousand points each draw fast, and headless browsers and pages
with many charts do not run out of WebGL contexts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import plotly.graph_objects as go

MAX_POINTS = 4000  # per trace; 2 points (min and max) per bucket
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


# ---- superseded events ---------------------------------------------------------------------------------------------
def drop_superseded(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop events of an interrupted epoch that a resumed run redid.

    A resumed process appends a ``run_start`` with ``start_epoch: k`` (1-based): it restarts epoch ``k`` from the
    last checkpoint. ``step``, ``epoch``, ``freeze`` and ``unfreeze`` events with ``epoch >= k`` written *before*
    that ``run_start`` belong to the interrupted attempt and are superseded by what follows it.

    Args:
        events: Events in file order.

    Returns:
        The events that stand, in file order.
    """
    kept: list[Mapping[str, Any]] = []
    for ev in events:
        if ev.get("event") == "run_start" and kept:
            k = _int(ev.get("start_epoch"), 1)
            kept = [e for e in kept if not (e.get("event") in _EPOCH_SCOPED and _int(e.get("epoch"), 0) >= k)]
        kept.append(ev)
    return kept


_EPOCH_SCOPED = ("step", "epoch", "freeze", "unfreeze")


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# ---- the folded log ------------------------------------------------------------------------------------------------
class _Columns:
    """Append-only float columns built from chunks; new names are back-filled with NaN."""

    def __init__(self) -> None:
        self.n = 0
        self._chunks: dict[str, list[np.ndarray]] = {}

    def names(self) -> list[str]:
        return list(self._chunks)

    def append(self, n: int, values: Mapping[str, np.ndarray]) -> None:
        for name in values:
            if name not in self._chunks:
                self._chunks[name] = [np.full(self.n, np.nan)] if self.n else []
        for name, chunks in self._chunks.items():
            chunks.append(values[name] if name in values else np.full(n, np.nan))
        self.n += n

    def get(self, name: str) -> np.ndarray:
        chunks = self._chunks.get(name)
        if not chunks:
            return np.full(self.n, np.nan)
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0]

    def truncate(self, n: int) -> None:
        for name in self._chunks:
            self._chunks[name] = [self.get(name)[:n]]
        self.n = min(self.n, n)

    def copy(self) -> _Columns:
        new = _Columns()
        new.n = self.n
        new._chunks = {name: [self.get(name).copy()] for name in self._chunks}
        return new


@dataclass
class RunLog:
    """A run's telemetry folded for charting; build with :meth:`from_events`, grow with :meth:`extend`.

    Attributes:
        names: Class names by id (from the latest ``run_start``).
        run_starts: Every ``run_start`` (one per process: the first start and each resume).
        epochs: Standing per-epoch events (not ``final_eval``), ordered by epoch, one per epoch.
        final_eval: The ``final_eval`` epoch event (validation of best.pt), if any.
        freezes: Standing ``freeze`` events. unfreezes: standing ``unfreeze`` events.
        run_end: The ``run_end`` of the latest attempt (None while it runs).
        n_events: Events folded so far.
    """

    names: list[str] = field(default_factory=list)
    run_starts: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    freezes: list[dict] = field(default_factory=list)
    unfreezes: list[dict] = field(default_factory=list)
    run_end: dict | None = None
    n_events: int = 0
    _core: _Columns = field(default_factory=_Columns, repr=False)  # epoch, step, grad_norm, clipped, max_norm
    _lr: _Columns = field(default_factory=_Columns, repr=False)
    _gn: _Columns = field(default_factory=_Columns, repr=False)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> RunLog:
        """Fold events (in file order) into a new log."""
        log = cls()
        log.extend(events)
        return log

    # ---- folding ---------------------------------------------------------------------------------------------
    def extend(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Fold more events, in file order, as read incrementally from the log (same result as one big call)."""
        events = events if isinstance(events, list) else list(events)
        try:
            kinds = list(map(itemgetter("event"), events))
        except KeyError:
            kinds = [ev.get("event") for ev in events]
        # Runs of consecutive steps are folded in one columnar batch; the few other events one by one.
        others = np.flatnonzero(np.array(kinds, dtype=object) != "step").tolist()
        start = 0
        for i in [*others, len(events)]:
            if i > start:
                self._append_steps(events[start:i])
                self.n_events += i - start
            if i < len(events):
                self._other(events[i])
                self.n_events += 1
            start = i + 1

    def _other(self, ev: Mapping[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "run_start":
            self._start(ev)
        elif kind == "epoch":
            self._epoch(ev)
        elif kind == "freeze":
            self.freezes.append(dict(ev))
        elif kind == "unfreeze":
            self.unfreezes.append(dict(ev))
        elif kind == "run_end":
            self.run_end = dict(ev)
        # unknown event types are counted and otherwise ignored (docs/telemetry.md: readers skip them)

    def _start(self, ev: Mapping[str, Any]) -> None:
        if self.run_starts:  # a resume: drop what the interrupted attempt wrote about epochs it redoes
            k = _int(ev.get("start_epoch"), 1)
            self.epochs = [e for e in self.epochs if _int(e.get("epoch"), 0) < k]
            self.freezes = [e for e in self.freezes if _int(e.get("epoch"), 0) < k]
            self.unfreezes = [e for e in self.unfreezes if _int(e.get("epoch"), 0) < k]
            epoch = self._core.get("epoch")
            keep = int(np.count_nonzero(epoch < k)) if np.all(epoch[1:] >= epoch[:-1]) else None
            if keep is None:  # not in epoch order (never written that way): filter row by row
                self._filter_steps(epoch < k)
            else:
                for cols in (self._core, self._lr, self._gn):
                    cols.truncate(keep)
        self.run_starts.append(dict(ev))
        self.run_end = None
        if isinstance(ev.get("names"), list):
            self.names = [str(n) for n in ev["names"]]

    def _filter_steps(self, mask: np.ndarray) -> None:
        for cols in (self._core, self._lr, self._gn):
            new = _Columns()
            new.n = int(mask.sum())
            new._chunks = {name: [cols.get(name)[mask]] for name in cols.names()}
            cols.__dict__.update(new.__dict__)

    def _epoch(self, ev: Mapping[str, Any]) -> None:
        if ev.get("final_eval"):
            self.final_eval = dict(ev)
            return
        e = _int(ev.get("epoch"), 0)
        self.epochs = [x for x in self.epochs if x.get("epoch") != e]
        self.epochs.append(dict(ev))
        if len(self.epochs) > 1 and self.epochs[-2].get("epoch", 0) > e:
            self.epochs.sort(key=lambda x: _int(x.get("epoch"), 0))

    def _append_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        # Columnar, C-level passes (itemgetter + numpy.fromiter): 300k steps fold in about half a second.
        # Step losses are not folded: the charts draw losses per epoch (train and val side by side).
        n = len(steps)
        core = _table(steps, _CORE_FIELDS)
        self._core.append(n, {name: core[:, i] for i, name in enumerate(_CORE_FIELDS)})
        for cols, key in ((self._lr, "lr"), (self._gn, "grad_norms")):
            dicts = _dicts(steps, key)
            try:
                names = list(dict.fromkeys(chain(dicts[0], dicts[-1])))
                same = set(map(len, dicts)) == {len(names)}
            except TypeError:  # a null or non-object value: sanitize (slow, never written by the trainer)
                dicts = [d if isinstance(d, dict) else {} for d in dicts]
                names, same = [], False
            if not same:  # keys differ between steps: take the union
                names = list(dict.fromkeys(chain.from_iterable(dicts)))
            table = _table(dicts, names)
            cols.append(n, {name: table[:, i] for i, name in enumerate(names)})

    def snapshot(self) -> RunLog:
        """An independent copy (for reading while another thread extends the original)."""
        return RunLog(
            names=list(self.names),
            run_starts=list(self.run_starts),
            epochs=list(self.epochs),
            final_eval=self.final_eval,
            freezes=list(self.freezes),
            unfreezes=list(self.unfreezes),
            run_end=self.run_end,
            n_events=self.n_events,
            _core=self._core.copy(),
            _lr=self._lr.copy(),
            _gn=self._gn.copy(),
        )

    # ---- reading ---------------------------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return self._core.n

    def step_column(self, name: str) -> np.ndarray:
        """``epoch``, ``step``, ``grad_norm``, ``clipped`` (0/1) or ``max_norm`` of every standing step (NaN: null)."""
        return self._core.get(name)

    @property
    def groups(self) -> list[str]:
        """Parameter-group names, from the latest ``run_start`` then any others seen in steps."""
        declared = self.run_starts[-1].get("param_groups") if self.run_starts else None
        seen = self._lr.names() + self._gn.names()
        return list(dict.fromkeys([*(declared or []), *seen]))

    def lr(self, group: str) -> np.ndarray:
        return self._lr.get(group)

    def group_grad_norm(self, group: str) -> np.ndarray:
        return self._gn.get(group)

    @property
    def epoch_numbers(self) -> list[int]:
        return [_int(e.get("epoch"), 0) for e in self.epochs]

    def epoch_metric(self, key: str) -> list[float | None]:
        """``key`` of every standing epoch: a ``metrics`` name (``metrics/mAP50(B)``) or a top-level field."""
        return [_num(e.get("metrics", {}).get(key) if key not in e else e.get(key)) for e in self.epochs]

    def metric_keys(self) -> list[str]:
        return list(dict.fromkeys(k for e in self.epochs for k in (e.get("metrics") or {})))

    @property
    def best_epoch(self) -> int | None:
        """The epoch best.pt comes from: the run_end's, else the latest epoch that saved best.pt."""
        if self.run_end is not None and _int(self.run_end.get("best_epoch"), 0) > 0:
            return self.run_end["best_epoch"]
        saved = [e["epoch"] for e in self.epochs if e.get("best_saved") and _int(e.get("epoch"), 0) > 0]
        return saved[-1] if saved else None

    @property
    def unfreeze_epoch(self) -> int | None:
        return (_int(self.unfreezes[-1].get("epoch"), 0) or None) if self.unfreezes else None

    @property
    def epochs_planned(self) -> int | None:
        return (_int(self.run_starts[-1].get("epochs"), 0) or None) if self.run_starts else None

    @property
    def status(self) -> str:
        """``running`` (or ``empty`` before anything is written), else the latest run_end's status."""
        if self.run_end is not None:
            return str(self.run_end.get("status", "failed"))
        return "running" if self.n_events else "empty"

    @property
    def failure(self) -> dict | None:
        """The failed run_end (with ``error`` and ``traceback``) of the latest attempt, else None."""
        return self.run_end if self.run_end is not None and self.run_end.get("status") == "failed" else None


_CORE_FIELDS = ("epoch", "step", "grad_norm", "clipped", "max_norm")


def _dicts(steps: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """``step[key]`` of every step (None where missing)."""
    try:
        return list(map(itemgetter(key), steps))
    except KeyError:
        return [s.get(key) for s in steps]


def _table(rows: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """``rows x names`` float array of ``row[name]``; missing keys and non-numbers become NaN, booleans 0/1."""
    n, k = len(rows), len(names)
    if not k:
        return np.empty((n, 0))
    get = itemgetter(*names)
    try:  # fast path: every row has every name and every value is a number (one pass over the rows)
        values = map(get, rows)
        return np.fromiter(chain.from_iterable(values) if k > 1 else values, dtype=float, count=n * k).reshape(n, k)
    except (KeyError, TypeError, ValueError):
        pass
    if k > 1:  # column by column, so that only the columns with nulls take the slower paths
        return np.column_stack([_table(rows, [name])[:, 0] for name in names])
    try:
        return np.array(list(map(get, rows)), dtype=float).reshape(n, 1)  # nulls become NaN
    except (KeyError, TypeError, ValueError):
        pass
    name = names[0]
    return np.array(
        [_num(r.get(name), bool_ok=True) if isinstance(r, dict) else None for r in rows], dtype=float
    ).reshape(n, 1)


def _num(v: Any, bool_ok: bool = False) -> float | None:
    if isinstance(v, bool):
        return float(v) if bool_ok else None
    return float(v) if isinstance(v, (int, float)) else None


def as_log(source: RunLog | Iterable[Mapping[str, Any]]) -> RunLog:
    """A :class:`RunLog` from a log or from events."""
    return source if isinstance(source, RunLog) else RunLog.from_events(source)


# ---- downsampling --------------------------------------------------------------------------------------------------
def minmax_downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points, never losing a spike.

    The series is cut into ``max_points // 2`` buckets of consecutive points; each keeps its minimum and its maximum
    (in their original order), so the drawn envelope is exact and the global extremes are always drawn. NaN (null)
    values are never chosen over a number; a bucket of NaNs keeps one NaN, which plotly draws as a gap.

    Args:
        x: The x values (any dtype), same length as ``y``.
        y: The y values (float; NaN for missing).
        max_points: Upper bound on the points returned (at least 4).

    Returns:
        ``(x, y)`` subsets, in order.
    """
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    n = y.size
    if n <= max_points:
        return x, y
    buckets = max(max_points // 2, 2)
    size = -(-n // buckets)  # ceil: the last bucket may be shorter (padded with values never chosen)
    pad = size * buckets - n
    nan = np.isnan(y)
    has_nan = bool(nan.any())

    def blocks(values: np.ndarray, fill: float) -> np.ndarray:
        if has_nan:
            values = np.where(nan, fill, values)
        if pad:
            values = np.concatenate([values, np.full(pad, fill)])
        return values.reshape(buckets, size)

    lo = blocks(y, np.inf).argmin(axis=1)
    hi = blocks(y, -np.inf).argmax(axis=1)
    pairs = np.sort(np.stack([lo, hi], axis=1), axis=1) + (np.arange(buckets) * size)[:, None]
    idx = pairs.ravel()  # already in order: buckets are consecutive and each pair is sorted
    keep = np.ones(idx.size, dtype=bool)
    keep[1:] = idx[1:] != idx[:-1]  # a bucket whose min and max are the same point keeps it once
    idx = idx[keep & (idx < n)]
    return x[idx], y[idx]


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
def per_class_f1(log: RunLog) -> dict[str, list[float | None]]:
    """Class name -> F1 per standing epoch (None where the epoch has no value for the class)."""
    names = list(log.names)
    for e in log.epochs:
        for row in e.get("per_class") or []:
            if row.get("name") not in names:
                names.append(row.get("name"))
    table: dict[str, list[float | None]] = {n: [] for n in names}
    for e in log.epochs:
        by_name = {row.get("name"): row for row in e.get("per_class") or []}
        for n in names:
            table[n].append(_num((by_name.get(n) or {}).get("f1")))
    return table


def f1_figure(source: RunLog | Iterable[Mapping[str, Any]]) -> go.Figure:
    """Per-class F1 over epochs: one line per class, the mean F1 dashed, best-epoch and unfreeze markers."""
    log = as_log(source)
    fig = _figure("Per-class F1", "epoch", "F1")
    table = per_class_f1(log)
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
    table = per_class_f1(log)
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
def _first_step_of_epoch(log: RunLog, epoch: int | None) -> float | None:
    if epoch is None or not log.n_steps:
        return None
    epochs = log.step_column("epoch")
    hits = np.flatnonzero(epochs >= epoch)
    return float(log.step_column("step")[hits[0]]) if hits.size else None


def lr_figure(
    source: RunLog | Iterable[Mapping[str, Any]], *, log_y: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Learning rate of every named parameter group against the optimizer step (warmup and unfreeze visible)."""
    log = as_log(source)
    fig = _figure("Learning rate per parameter group", "step", "lr")
    groups = [g for g in log.groups if np.isfinite(log.lr(g)).any()] if log.n_steps else []
    if not groups:
        return _empty(fig)
    steps = log.step_column("step")
    for i, g in enumerate(groups):
        x, y = minmax_downsample(steps, log.lr(g), max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name=g, mode="lines", line={"color": _color(i)}))
    if log_y:
        fig.update_yaxes(type="log", title="lr (log)")
    unfreeze = _first_step_of_epoch(log, log.unfreeze_epoch)
    if unfreeze is not None:
        _marker(fig, unfreeze, f"unfreeze (epoch {log.unfreeze_epoch})", "#9467bd")
    return fig


def clip_share(log: RunLog) -> float | None:
    """Fraction of standing steps whose pre-clip gradient norm exceeded the clip threshold (None: no steps)."""
    if not log.n_steps:
        return None
    return float(np.mean(log.step_column("clipped")))


def grad_norm_figure(
    source: RunLog | Iterable[Mapping[str, Any]], *, log_y: bool = False, max_points: int = MAX_POINTS
) -> go.Figure:
    """Pre-clip total gradient norm per step, the clip threshold, per-group norms; the title gives the clipped share.

    Traces: ``total (pre-clip)``, ``clip threshold`` (when clipping is on), then one ``<group>`` per parameter group.
    """
    log = as_log(source)
    fig = _figure("Gradient norm", "step", "norm")
    total = log.step_column("grad_norm") if log.n_steps else np.array([])
    if not np.isfinite(total).any():
        return _empty(fig)
    steps = log.step_column("step")
    x, y = minmax_downsample(steps, total, max_points)
    fig.add_trace(go.Scatter(x=x, y=y, name="total (pre-clip)", mode="lines", line={"color": "black", "width": 1}))
    max_norm = log.step_column("max_norm")
    if np.isfinite(max_norm).any():
        x, y = minmax_downsample(steps, max_norm, max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name="clip threshold", mode="lines", line={"color": "red", "dash": "dash"}))
        share = clip_share(log) or 0.0
        fig.update_layout(title=f"Gradient norm: {share:.1%} of {log.n_steps:,} steps clipped")
    else:
        fig.update_layout(title="Gradient norm (clipping off)")
    for i, g in enumerate(log.groups):
        values = log.group_grad_norm(g)
        if np.isfinite(values).any():
            x, y = minmax_downsample(steps, values, max_points)
            fig.add_trace(
                go.Scatter(x=x, y=y, name=g, mode="lines", line={"color": _color(i), "width": 1}, opacity=0.7)
            )
    if log_y:
        fig.update_yaxes(type="log", title="norm (log)")
    unfreeze = _first_step_of_epoch(log, log.unfreeze_epoch)
    if unfreeze is not None:
        _marker(fig, unfreeze, f"unfreeze (epoch {log.unfreeze_epoch})", "#9467bd")
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
        table = per_class_f1(log)
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
