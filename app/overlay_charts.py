"""Compare's overlays (no Streamlit): the train loss and the learning rate of every compared run on one chart each,
and one sample image drawn as each run predicted it, side by side.

The LR is drawn per optimizer step but placed on the epoch axis (step -> epoch through each epoch's first step), so
runs with different batch sizes line up; the group drawn is each run's main one (:func:`main_group`).
The image tiles are the dataset page's (:mod:`app.dataset_grid`): ground truth solid, predictions dashed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.chart_style import color, empty, epoch_axis, epoch_mode, figure, scatter
from app.dataset_grid import CSS as TILE_CSS
from app.dataset_grid import LABELLED_BOXES, box_html, class_colour, picture_html
from trainers.telemetry.evidence import GT, PRED, image_errors
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.step_data import MAX_POINTS

TRAIN_LOSS = "train/"  # ultralytics' train loss keys: train/box_loss, train/cls_loss, train/dfl_loss (or l1_loss)
DEFAULT_CONF = 0.25  # predictions drawn from this confidence (ultralytics' predict() default)


# ---- loss ----------------------------------------------------------------------------------------------------------
def loss_keys(log: RunLog) -> list[str]:
    return [k for k in log.metric_keys() if k.startswith(TRAIN_LOSS) and k.endswith("loss")]


def train_loss(log: RunLog) -> np.ndarray:
    """The total train loss of each epoch: the sum of its ``train/*loss`` values (NaN where it has none)."""
    keys = loss_keys(log)
    if not keys:
        return np.full(len(log.epochs), np.nan)
    parts = np.array([[np.nan if v is None else v for v in log.epoch_metric(k)] for k in keys], dtype=float)
    total = np.nansum(parts, axis=0)
    return np.where(np.isnan(parts).all(axis=0), np.nan, total)


def loss_figure(logs: Mapping[str, RunLog]) -> go.Figure:
    """One line per run: the total train loss per epoch (the parts summed are named in the axis title)."""
    kinds = list(dict.fromkeys(k[len(TRAIN_LOSS) : -len("_loss")] for log in logs.values() for k in loss_keys(log)))
    fig = figure("Train loss by run", "epoch", f"loss ({' + '.join(kinds)})" if kinds else "loss")
    for i, (run, log) in enumerate(logs.items()):
        y = train_loss(log)
        if np.isfinite(y).any():
            x = np.asarray(log.epoch_numbers)
            fig.add_trace(scatter(x=x, y=y, name=run, mode=epoch_mode(len(x)), line={"color": color(i)}))
    if not fig.data:
        return empty(fig, "No train loss in these runs yet")
    epoch_axis(fig, sorted({int(x) for t in fig.data for x in t["x"]}))
    return fig.figure()


# ---- learning rate -----------------------------------------------------------------------------------------------
def main_group(log: RunLog) -> str | None:
    """The parameter group a run's LR is shown by: the first weights group (ultralytics' pg0, ``weight``; with
    per-layer LR the head's, ``head/weight``, at the base LR), else the first group."""
    groups = log.groups
    return next((g for g in groups if g.endswith("weight")), groups[0] if groups else None)


def step_epochs(log: RunLog, steps: np.ndarray) -> np.ndarray | None:
    """Global steps as fractional epochs: epoch ``n`` spans ``n - 1`` (before its first step) to ``n`` (its last),
    from the step data's first step of each epoch; steps past the last boundary go on at the last epoch's pace.
    None when fewer than two boundaries are known."""
    xp: list[float] = []
    fp: list[float] = []
    last = max(log.epoch_numbers, default=0)
    for n in range(1, last + 2):
        first = log.steps.first_step_of_epoch(n)
        if first is not None and (not xp or first - 1 > xp[-1]):
            xp.append(first - 1)
            fp.append(n - 1)
    if len(xp) < 2:
        return None
    pace = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    x = np.interp(steps, xp, fp)
    beyond = steps > xp[-1]
    x[beyond] = fp[-1] + (steps[beyond] - xp[-1]) * pace
    return x


def lr_points(log: RunLog, group: str, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray] | None:
    """``(epoch, lr)`` of ``group``: per step when the run logged steps, else each epoch's LR; None when neither."""
    series = log.steps.series([f"lr/{group}"], max_points) if log.n_steps else {}
    if f"lr/{group}" in series:
        steps, y = series[f"lr/{group}"]
        x = step_epochs(log, np.asarray(steps, dtype=float))
        if x is not None and np.isfinite(y).any():
            return x, np.asarray(y, dtype=float)
    rows = [(e.get("epoch"), (e.get("lr") or {}).get(group)) for e in log.epochs]
    rows = [(n, v) for n, v in rows if isinstance(n, int) and isinstance(v, (int, float))]
    return (np.array([n for n, _ in rows], dtype=float), np.array([v for _, v in rows], dtype=float)) if rows else None


def lr_figure(logs: Mapping[str, RunLog]) -> go.Figure:
    """One line per run: the LR of its :func:`main_group` over (fractional) epochs; the legend names the group."""
    fig = figure("Learning rate by run", "epoch", "lr (main group)")
    for i, (run, log) in enumerate(logs.items()):
        group = main_group(log)
        points = lr_points(log, group) if group else None
        if points is not None:
            fig.add_trace(scatter(x=points[0], y=points[1], name=f"{run} ({group})", mode="lines",
                                  line={"color": color(i)}))  # fmt: skip
    if not fig.data:
        return empty(fig, "No learning rate in these runs yet")
    fig.update_xaxes(rangemode="tozero")
    return fig.figure()


# ---- the same image across runs ----------------------------------------------------------------------------------
def shared_images(samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Files in the evidence sample of at least two runs: those in the most runs first, then in sample order."""
    count: dict[str, int] = {}
    for images in samples.values():
        for file in dict.fromkeys(str(i.get("file")) for i in images):
            count[file] = count.get(file, 0) + 1
    order = list(count)  # first seen first: the first run's sample order
    return sorted((f for f in order if count[f] >= 2), key=lambda f: -count[f])


STYLE = """<style>
.wb-side{display:grid;gap:12px}
.wb-box.wb-pred{border-style:dashed}
.wb-box.wb-pred .wb-tag{bottom:auto;top:100%}
.wb-run{font-weight:600}
.wb-legend{font-size:13px;margin:2px 0 8px}
</style>"""


def boxes_html(boxes: Mapping[str, np.ndarray], image: int, size: tuple[int, int], names: Sequence[str], conf: float):
    """The ground-truth (solid, class above) and predicted (dashed, class and confidence below; at ``conf`` or
    more) boxes of sample image ``image``, in percent of its ``size`` (width, height) in pixels."""
    w, h = max(size[0], 1), max(size[1], 1)
    on = (boxes["image"] == image) & ((boxes["kind"] == GT) | (boxes["conf"] >= conf))
    rows = np.flatnonzero(on)
    tags = len(rows) <= LABELLED_BOXES
    out = []
    for r in rows:
        c = int(boxes["cls"][r])
        name = names[c] if 0 <= c < len(names) else f"id {c}"
        x1, y1, x2, y2 = (float(boxes[k][r]) for k in ("x1", "y1", "x2", "y2"))
        place = tuple(float(np.clip(v, 0, 100)) for v in (x1 / w * 100, y1 / h * 100, x2 / w * 100, y2 / h * 100))
        if int(boxes["kind"][r]) == PRED:
            text = f"{name} {float(boxes['conf'][r]):.2f}"
            out.append(box_html(place, class_colour(c), f"prediction: {text}", "wb-pred", text if tags else None))
        else:
            top = " wb-top" if place[1] < 8 else ""
            out.append(box_html(place, class_colour(c), f"ground truth: {name}", "wb-gt" + top, name if tags else None))
    return "".join(out)


def side_by_side_html(tiles: Sequence[Mapping[str, Any]], conf: float) -> str:
    """The runs' tiles in one row, under a legend. Each tile: ``run``, ``said`` (which epoch), ``image`` (the
    sample's ``{"file", "width", "height"}``), ``jpeg`` (or ``note``), ``boxes`` (:func:`boxes_html`) and ``errors``
    (missed, false)."""
    cells = []
    for t in tiles:
        missed, false = t["errors"]
        info = t["image"]
        w, h = int(info.get("width") or 0), int(info.get("height") or 0)
        caption = (
            f'<div class="wb-run">{html.escape(t["run"])}</div><div class="wb-name">{html.escape(t["said"])} · '
            f"{missed} missed · {false} false</div>"
        )
        cells.append(
            f'<figure class="wb-tile" data-run="{html.escape(t["run"])}" data-missed="{missed}" data-false="{false}">'
            f"{picture_html(w, h, t.get('jpeg'), t.get('note', ''), t['boxes'])}"
            f'<figcaption class="wb-cap">{caption}</figcaption></figure>'
        )
    legend = (
        f'<div class="wb-legend">Ground truth: solid, class above · prediction: dashed, class and confidence below '
        f"(confidence ≥ {conf:.2f})</div>"
    )
    columns = f"grid-template-columns:repeat({max(len(tiles), 1)},minmax(0,420px))"
    return TILE_CSS + STYLE + legend + f'<div class="wb-side" style="{columns}">{"".join(cells)}</div>'


def errors_of(boxes: Mapping[str, np.ndarray], image: int, conf: float) -> tuple[int, int]:
    """(missed, false) boxes of sample image ``image`` at ``conf`` (the evidence module's count)."""
    return image_errors(dict(boxes), image, conf)
