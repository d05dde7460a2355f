"""What the dashboard's Confusions, PR curves and Run files tabs show, built from a run's evidence (no Streamlit).

The confusion matrix is ultralytics' layout, ``[predicted, true]`` with background last
(:class:`trainers.telemetry.evidence.EpochEvidence`); every share here is of the *true* class's boxes (a column),
as ultralytics normalizes it. Up to :data:`MATRIX_MAX` classes the whole matrix is drawn; past that the most confused
pairs are a table and one class's column a bar chart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.chart_style import LEGEND_MAX, bar, color, empty, figure, heatmap, scatter
from trainers.run_files import EVIDENCE_DIR
from trainers.telemetry.evidence import FINAL, class_box_counts, epoch_folder_name, evidence_epochs, top_confusions

MATRIX_MAX = 20  # classes up to which the full matrix is drawn (21 x 21 cells stay readable at ~30 px)
CELL_TEXT_MAX = 12  # classes up to which each cell prints its share (past it the numbers overlap)
ABOVE = 0.10  # a pair counts as confused at an epoch when A is predicted as B for at least this share of A's boxes
TOP_PAIRS = 20  # rows of the top-pairs table
ROW_BARS = 20  # bars of one class's row (the largest shares; the rest are named in the title)
PR_DEFAULT = 3  # classes drawn by default on the PR chart: the worst AP50 first
BACKGROUND = "background"
CELL_PX = 40  # matrix cells: this size, the matrix kept between MATRIX_PX pixels a side
MATRIX_PX = (320, 720)
MATRIX_COLOURS = [[0, "#f7fbff"], [0.1, "#c6dbef"], [0.4, "#6baed6"], [0.7, "#2171b5"], [1, "#08306b"]]  # white: 0
PAIR_COLUMNS = ("true class (A)", "predicted as (B)", "share of A's boxes", "boxes", f"epochs at >= {ABOVE:.0%}")


# ---- versions: what the caches are keyed on ------------------------------------------------------------------------
def evidence_version(run_dir: str | os.PathLike[str]) -> tuple[tuple[int | str, ...], int]:
    """``(epochs with evidence, evidence folder mtime_ns)``, from one stat while nothing changed: a folder added or
    renamed into place (a new or redone epoch) changes the evidence folder's mtime, and only then is it listed again
    (listing stats every epoch folder: 300 of them each refresh cost more than the rest of the tabs). ``((), 0)``
    without evidence."""
    try:
        mtime = (Path(run_dir) / EVIDENCE_DIR).stat().st_mtime_ns
    except OSError:
        return (), 0
    return _epochs_at(str(run_dir), mtime), mtime


@lru_cache(maxsize=256)
def _epochs_at(run_dir: str, mtime: int) -> tuple[int | str, ...]:
    return tuple(evidence_epochs(run_dir))


def epoch_stamp(run_dir: str | os.PathLike[str], epoch: int | str) -> int:
    """An epoch folder's mtime_ns (0 when missing): a redone epoch is a new folder renamed into place, a new stamp."""
    try:
        return (Path(run_dir) / EVIDENCE_DIR / epoch_folder_name(epoch)).stat().st_mtime_ns
    except OSError:
        return 0


def shown_epoch(epochs: Sequence[int | str], best: int | None) -> tuple[int | str, str]:
    """The epoch whose evidence stands for a run (``epochs`` not empty): its best epoch (status.json's) when that has
    evidence, else the last validation with evidence; and a sentence saying which."""
    if best in epochs:
        return best, f"The best epoch, {best} (the weights in best.pt)."
    why = f"The best epoch ({best}) has no evidence" if best else "No best epoch yet"
    return epochs[-1], f"{why}: the last validation with evidence, {epoch_label(epochs[-1])}."


def epoch_label(epoch: int | str) -> str:
    return "final (best.pt)" if epoch == FINAL else f"epoch {epoch}"


def epochs_text(epochs: Sequence[int | str]) -> str:
    """Epochs as ranges: ``1-3, 5, final``."""
    numbers = sorted(int(e) for e in epochs if e != FINAL)
    parts: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(parts + ([FINAL] if FINAL in epochs else []))


# ---- the matrix ------------------------------------------------------------------------------------------------
def normalized(matrix: np.ndarray) -> np.ndarray:
    """Each column (true class, background last) divided by its sum: the share of that class's boxes in each
    predicted class; an empty column stays 0."""
    sums = matrix.sum(axis=0, keepdims=True).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sums > 0, matrix / np.where(sums > 0, sums, 1), 0.0)


def matrix_figure(matrix: np.ndarray, names: Sequence[str], epoch: int | str) -> go.Figure:
    """The whole normalized matrix as a heatmap of square cells: true class across, predicted class down, background
    last on both; the figure's width is set (the page draws it at that width, not stretched)."""
    labels = [*names, BACKGROUND]
    n = len(labels)
    side = min(MATRIX_PX[1], max(MATRIX_PX[0], CELL_PX * n))  # 5 labels: 64 px cells; 21: 34 px
    left, bottom = 40 + 7 * max(map(len, labels)), 30 + 6 * max(map(len, labels))  # room for the longest name
    fig = figure(f"Confusion matrix, {epoch_label(epoch)}", "true class", "predicted class", height=side + bottom + 70)
    fig.update_layout(hovermode="closest", width=side + left + 110, margin={"l": left, "r": 20, "t": 60, "b": bottom})
    if not matrix.sum():
        return empty(fig, "No boxes counted at this epoch")
    trace = heatmap(
        z=normalized(matrix), x=labels, y=labels, zmin=0, zmax=1, colorscale=MATRIX_COLOURS,
        customdata=matrix.tolist(), xgap=1, ygap=1, colorbar={"title": {"text": "share of<br>true class"}},
        hovertemplate="true %{x}, predicted %{y}<br>%{z:.1%} of the true class's boxes (%{customdata})<extra></extra>",
    )  # fmt: skip
    if len(names) <= CELL_TEXT_MAX:
        trace["texttemplate"] = "%{z:.2f}"
        trace["textfont"] = {"size": 11}
    fig.add_trace(trace)
    fig.update_xaxes(type="category", tickfont={"size": 11}, constrain="domain", automargin=True)
    fig.update_yaxes(
        type="category",
        autorange="reversed",
        tickfont={"size": 11},
        scaleanchor="x",
        constrain="domain",
        automargin=True,
    )
    return fig.figure()


# ---- more classes: the top pairs and one class's row --------------------------------------------------------------
def above_pairs(matrix: np.ndarray, threshold: float = ABOVE) -> dict[tuple[int, int], float]:
    """``(true A, predicted B) -> share of A's boxes`` for every pair of distinct classes at or above ``threshold``
    (background left out): the few pairs an epoch is remembered by, whatever the class count."""
    nc = matrix.shape[0] - 1
    counts = class_box_counts(matrix)
    off = matrix[:nc, :nc].T.astype(float)  # [true, pred]
    np.fill_diagonal(off, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(counts[:, None] > 0, off / np.where(counts > 0, counts, 1)[:, None], 0.0)
    a, b = np.nonzero((share >= threshold) & (off > 0))
    return {(int(i), int(j)): float(share[i, j]) for i, j in zip(a, b, strict=True)}


def pairs_table(
    matrix: np.ndarray, names: Sequence[str], above: Mapping[int | str, Mapping[tuple[int, int], float]]
) -> pd.DataFrame:
    """The most confused pairs at one epoch (:func:`~trainers.telemetry.evidence.top_confusions`), largest share
    first, with the epochs at which the pair was at or above :data:`ABOVE` (``above``: epoch -> :func:`above_pairs`)."""
    index = {name: i for i, name in enumerate(names)}
    rows = []
    for pair in top_confusions(matrix, names, TOP_PAIRS):
        key = (index[pair["true"]], index[pair["pred"]])
        seen = [e for e, pairs in above.items() if key in pairs]
        total = int(class_box_counts(matrix)[key[0]])
        rows.append([pair["true"], pair["pred"], f"{pair['share']:.1%}", f"{pair['count']} of {total}",
                     epochs_text(seen) or "none"])  # fmt: skip
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a Markdown table (its cells escaped): kept as text, it is drawn again at no cost on each refresh,
    where ``st.table`` converts the frame to Arrow every time."""
    escape = lambda v: re.sub(r"([\\`*_{}\[\]<>|#+!~$])", r"\\\1", str(v))  # noqa: E731
    lines = ["| " + " | ".join(map(escape, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def class_row(matrix: np.ndarray, names: Sequence[str], cls: int) -> list[tuple[str, int, float]]:
    """What class ``cls``'s boxes were predicted as: ``(class or background, boxes, share)``, largest first, non-zero
    only (its own name is the share found right; background: the boxes missed)."""
    column = matrix[:, cls]
    total = int(column.sum())
    labels = [*names, BACKGROUND]
    order = np.argsort(-column, kind="stable")
    return [(labels[i], int(column[i]), column[i] / total) for i in order if column[i] > 0]


def class_row_figure(matrix: np.ndarray, names: Sequence[str], cls: int, epoch: int | str) -> go.Figure:
    """One class's row as horizontal bars (largest first, at most :data:`ROW_BARS`): right in green, background
    (missed) in grey, the other classes in red."""
    name = names[cls]
    rows = class_row(matrix, names, cls)
    total = sum(n for _, n, _ in rows)
    shown = rows[:ROW_BARS]
    title = f"What '{name}' is predicted as, {epoch_label(epoch)} ({total} boxes)"
    if len(rows) > len(shown):
        title += f": the {len(shown)} largest of {len(rows)}"
    fig = figure(title, "share of its boxes", "", height=max(260, 120 + 26 * len(shown)))
    fig.update_layout(hovermode="closest", margin={"l": 160, "r": 20, "t": 60, "b": 45}, showlegend=False)
    if not rows:
        return empty(fig, f"No '{name}' boxes in the val split")
    colours = ["#2ca02c" if label == name else "#7f7f7f" if label == BACKGROUND else "#d62728" for label, _, _ in shown]
    fig.add_trace(
        bar(
            x=[s for _, _, s in shown], y=[label for label, _, _ in shown], orientation="h",
            marker={"color": colours}, customdata=[n for _, n, _ in shown],
            text=[f"{s:.0%}" for _, _, s in shown], textposition="auto",
            hovertemplate="%{y}: %{x:.1%} (%{customdata} boxes)<extra></extra>",
        )
    )  # fmt: skip
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    return fig.figure()


# ---- PR curves -------------------------------------------------------------------------------------------------
def ap50(recall: np.ndarray, precision: np.ndarray) -> float:
    """The area under a curve of 101 recall points: ultralytics' AP50 (its ``compute_ap`` integrates the same
    precision envelope over the same grid)."""
    return float(np.trapezoid(precision, recall)) if len(recall) > 1 else 0.0


def worst_classes(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], k: int = PR_DEFAULT) -> list[str]:
    """The ``k`` classes of lowest AP50 (ties: in class order)."""
    return sorted(curves, key=lambda n: ap50(*curves[n]))[:k]


def pr_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str], epoch: int | str):
    """Precision against recall (IoU 0.5) of ``classes``, each named with its AP50, on 0..1 axes."""
    fig = figure(f"Precision-recall (IoU 0.5), {epoch_label(epoch)}", "recall", "precision", height=420)
    fig.update_layout(hovermode="closest")
    shown = [c for c in classes if c in curves][:LEGEND_MAX]
    if not shown:
        return empty(fig, "Choose classes to draw")
    for k, name in enumerate(shown):
        recall, precision = curves[name]
        fig.add_trace(
            scatter(x=recall, y=precision, name=f"{name} (AP50 {ap50(recall, precision):.2f})", mode="lines",
                    line={"color": color(k)}, hovertemplate=f"{name}<br>recall %{{x:.2f}}, precision %{{y:.3f}}"
                    "<extra></extra>")
        )  # fmt: skip
    fig.update_xaxes(range=[0, 1.0])
    fig.update_yaxes(range=[0, 1.02])
    return fig.figure()


# ---- ultralytics' own plots ----------------------------------------------------------------------------------
PLOT_SUFFIXES = (".png", ".jpg", ".jpeg")
# the order a reader looks at them: how training went, what it confused, the curves, the pictures, the data
PLOT_ORDER = (r"^results", r"^confusion_matrix", r"PR_curve", r"F1_curve", r"P_curve", r"R_curve", r"^val_batch.*pred",
              r"^val_batch", r"^labels", r"^train_batch")  # fmt: skip


def run_plots(run_dir: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """Ultralytics' plots in the run folder (it writes them there: ``project`` is the runs folder, ``name`` the
    run): ``(file name, mtime_ns, size)`` of each image file at the top level, in :data:`PLOT_ORDER`."""
    try:
        entries = [e for e in os.scandir(run_dir) if e.name.lower().endswith(PLOT_SUFFIXES) and e.is_file()]
    except OSError:
        return []

    def rank(name: str) -> tuple[int, str]:
        return next((i for i, p in enumerate(PLOT_ORDER) if re.search(p, name)), len(PLOT_ORDER)), name

    stats = [(e.name, e.stat()) for e in entries]
    return sorted(((name, st.st_mtime_ns, st.st_size) for name, st in stats), key=lambda f: rank(f[0]))


def plot_caption(file: str) -> str:
    """A plot's name as a caption: ``BoxPR_curve.png`` -> ``Box PR curve``."""
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", Path(file).stem).replace("_", " ")
    return stem[:1].upper() + stem[1:]


def mime_of(file: str) -> str:
    return "image/png" if file.lower().endswith(".png") else "image/jpeg"
