"""The dashboard's Confusions, PR curves and Run files tabs (issue 19 item 2), read from the run's evidence
(:class:`trainers.telemetry.evidence.Evidence`) and its folder; figures and tables from :mod:`app.confusion_charts`.

The dashboard redraws every tab each 2 s while a run is live, so nothing here is read twice: evidence is cached by
the epoch folder's mtime (st.cache_data), and figures and tables are kept per session with the evidence version they
were drawn from (:func:`app.dashboard_parts.cached_figure`). A refresh with nothing new costs a listing of the
evidence folder, a stat or two, status.json and dictionary lookups.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import streamlit as st

from app import confusion_charts as cc
from app.chart_style import LEGEND_MAX
from app.dashboard_parts import cached_figure
from app.exports import read_bytes
from trainers.datasets.datasets_dir import datasets_root
from trainers.datasets.thumbnails import make_thumbnails, thumbnail_cache_dir
from trainers.errors import WorkbenchError
from trainers.runs.status import read_status
from trainers.statuses import ACTIVE_STATUSES
from trainers.telemetry.evidence import CONFUSION_CONF, FINAL, Evidence

NO_EVIDENCE = "No evidence yet: it is written at each validation (the end of every epoch)."
PLOT_PX = 1200  # gallery images are scaled to this longer side (results.png is 2400 px wide)
GALLERY_COLUMNS = 3


# ---- cached reads ------------------------------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _names(run_dir: str, version: tuple) -> list[str]:
    return Evidence(run_dir).names


@st.cache_data(max_entries=32, show_spinner=False)
def _matrix(run_dir: str, epoch: int | str, stamp: int) -> np.ndarray:
    return Evidence(run_dir).epoch(epoch).confusion


@st.cache_data(max_entries=8192, show_spinner=False)
def _above(run_dir: str, epoch: int | str, stamp: int) -> dict[tuple[int, int], float]:
    return cc.above_pairs(Evidence(run_dir).epoch(epoch).confusion)


def _above_by_epoch(run_dir: Path, epochs: tuple[int | str, ...]) -> dict[int | str, dict[tuple[int, int], float]]:
    """Each epoch's pairs at or above the share: only an epoch not seen before is read (a few bytes kept each)."""
    return {e: _above(str(run_dir), e, cc.epoch_stamp(run_dir, e)) for e in epochs}


@st.cache_data(max_entries=32, show_spinner=False)
def _curves(run_dir: str, epoch: int | str, stamp: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Class name -> (recall, precision) of every class with a curve at ``epoch``."""
    ev = Evidence(run_dir)
    at = ev.epoch(epoch)
    curves = {name: at.pr_curve(i) for i, name in enumerate(ev.names)}
    return {name: c for name, c in curves.items() if len(c[0])}


def thumb_dir() -> Path:
    """Where thumbnails are cached: the datasets folder's cache, as the dataset page's (else the user cache)."""
    try:
        return thumbnail_cache_dir(datasets_root())
    except WorkbenchError:  # no usable datasets folder: the user cache
        return thumbnail_cache_dir(None)


@st.cache_data(max_entries=16, show_spinner=False)
def _plot_images(run_dir: str, listing: tuple[tuple[str, int, int], ...]) -> list[bytes | None]:
    """The gallery's JPEGs (a thumbnail cache on disk: only a new or changed plot is decoded)."""
    thumbs = make_thumbnails([str(Path(run_dir) / f) for f, _, _ in listing], thumb_dir(), px=PLOT_PX)
    return [t.jpeg for t in thumbs]


# ---- widgets -------------------------------------------------------------------------------------------------------
def _epoch_picker(key: str, epochs: list[int | str]) -> int | str:
    """An epoch slider that follows the newest epoch until the user moves it away from there."""
    ss = st.session_state
    if ss.get(key) not in epochs or ss.get(key) == ss.get(f"{key}_newest"):
        ss[key] = epochs[-1]
    ss[f"{key}_newest"] = epochs[-1]
    if len(epochs) == 1:
        st.caption(f"Evidence of {cc.epoch_label(epochs[0])}.")
        return epochs[0]
    return st.select_slider(
        "Epoch", epochs, key=key, format_func=lambda e: "final" if e == FINAL else str(e),
        help="the validation to show; final: the evaluation of best.pt after the last epoch",
    )  # fmt: skip


def _evidence(run_dir: Path) -> tuple[tuple, list[int | str], list[str]] | None:
    """The evidence version, its epochs and the class names; None (with a caption) when there is none yet."""
    version = cc.evidence_version(run_dir)
    epochs = list(version[0])
    names = _names(str(run_dir), version) if epochs else []
    if not epochs or not names:
        st.caption(NO_EVIDENCE)
        return None
    return version, epochs, names


# ---- the tabs ------------------------------------------------------------------------------------------------------
READ_ERRORS = (OSError, ValueError, IndexError, pa.ArrowException)  # a damaged or foreign evidence file


def _guarded(tab: Callable[[Path, str], None]) -> Callable[[Path, str], None]:
    """``tab``, with evidence it cannot read said in one line instead of a traceback (read again next time)."""

    @functools.wraps(tab)
    def run(run_dir: Path, name: str) -> None:
        try:
            tab(run_dir, name)
        except READ_ERRORS as e:
            said = (str(e).strip().splitlines() or [""])[0][:200]
            st.warning(f"This run's evidence cannot be read ({type(e).__name__}: {said}).", icon=":material/warning:")

    return run


@_guarded
def confusions_tab(run_dir: Path, name: str) -> None:
    """The normalized matrix (at most :data:`~app.confusion_charts.MATRIX_MAX` classes), else the top confused pairs
    and one class's row; at the epoch chosen on a slider."""
    found = _evidence(run_dir)
    if found is None:
        return
    version, epochs, names = found
    epoch = _epoch_picker("ev_conf_epoch", epochs)
    at = (epoch, cc.epoch_stamp(run_dir, epoch))
    matrix = lambda: _matrix(str(run_dir), *at)  # noqa: E731  (read only when a figure is drawn again)
    if len(names) <= cc.MATRIX_MAX:
        fig = cached_figure(f"{name}/ev_matrix", at, lambda: cc.matrix_figure(matrix(), names, epoch))
        st.plotly_chart(fig, key="chart_ev_matrix", width="content")  # square cells at the figure's own width
        st.caption(
            "Each column is a true class, split by what its boxes were predicted as (ultralytics' confusion matrix: "
            f"IoU 0.45, predictions of confidence {CONFUSION_CONF} and up). Background row: boxes missed; background "
            "column: predictions where there was no box."
        )
        return

    def pairs() -> tuple:
        table = cc.pairs_table(matrix(), names, _above_by_epoch(run_dir, epochs))
        return table, cc.markdown_table(table)

    table, text = cached_figure(f"{name}/ev_pairs", (at, version), pairs)
    if table.empty:
        st.info(f"No class was taken for another at {cc.epoch_label(epoch)}.")
    else:
        top = table.iloc[0]
        a, b, share = top[cc.PAIR_COLUMNS[0]], top[cc.PAIR_COLUMNS[1]], top[cc.PAIR_COLUMNS[2]]
        st.markdown(f"Most confused at {cc.epoch_label(epoch)}: **{a}** taken for **{b}** in {share} of {a}'s boxes.")
        with st.container(key="ev_pairs"):
            st.markdown(text)
    ss = st.session_state
    if ss.get("ev_conf_class") not in names or ss.get("ev_conf_class_for") != name:
        ss.ev_conf_class = table.iloc[0][cc.PAIR_COLUMNS[0]] if not table.empty else names[0]
    ss.ev_conf_class_for = name
    chosen = st.selectbox("Class", names, key="ev_conf_class", help="what this class's boxes were predicted as")
    cls = names.index(chosen)
    fig = cached_figure(f"{name}/ev_row", (at, cls), lambda: cc.class_row_figure(matrix(), names, cls, epoch))
    st.plotly_chart(fig, key="chart_ev_class_row", width="stretch")
    st.caption("Green: found as itself; red: taken for another class; grey (background): missed.")


def run_status(run_dir: Path) -> dict:
    """status.json ({} when it cannot be read)."""
    try:
        return read_status(run_dir)
    except WorkbenchError:
        return {}


def best_epoch(run_dir: Path) -> int | None:
    """status.json's best epoch (kept across resumes), None when there is none or it cannot be read."""
    best = run_status(run_dir).get("best_epoch")
    return best if isinstance(best, int) else None


@_guarded
def pr_tab(run_dir: Path, name: str) -> None:
    """Precision-recall curves of chosen classes (default: the worst AP50) at the best epoch (status.json), else the
    last epoch with evidence; the caption says which."""
    found = _evidence(run_dir)
    if found is None:
        return
    _, epochs, _ = found
    epoch, said = cc.shown_epoch(epochs, best_epoch(run_dir))
    at = (epoch, cc.epoch_stamp(run_dir, epoch))
    curves = cached_figure(f"{name}/ev_curves", at, lambda: _curves(str(run_dir), *at))
    if not curves:
        st.caption(f"No precision-recall curves were kept at {cc.epoch_label(epoch)}.")
        return
    ss = st.session_state
    chosen = ss.get("ev_pr_classes")
    if ss.get("ev_pr_for") != name or not chosen or any(c not in curves for c in chosen):
        ss.ev_pr_classes = cc.worst_classes(curves)
    ss.ev_pr_for = name
    classes = st.multiselect(
        "Classes", list(curves), key="ev_pr_classes", max_selections=LEGEND_MAX,
        help=f"default: the {cc.PR_DEFAULT} classes of lowest AP50 at this epoch",
    )  # fmt: skip
    fig = cached_figure(f"{name}/ev_pr", (at, tuple(classes)), lambda: cc.pr_figure(curves, classes, epoch))
    st.plotly_chart(fig, key="chart_ev_pr", width="stretch")
    st.caption(f"{said} AP50 is the area under each curve.")


@_guarded
def files_tab(run_dir: Path, name: str) -> None:
    """Ultralytics' own plots in the run folder, a gallery with a download button each."""
    listing = tuple(cc.run_plots(run_dir))
    if not listing:
        st.caption(
            "No ultralytics plots in this run's folder: it writes them with `plots: true` (its default), the "
            "confusion matrix and curves at the end of training."
        )
        return
    if run_status(run_dir).get("status") in ACTIVE_STATUSES and not st.toggle(
        f"Show the {len(listing)} plots written so far", key="ev_show_plots",
        help="drawn on request while the run trains: the dashboard refreshes every few seconds",
    ):  # fmt: skip
        st.caption("Ultralytics writes its confusion matrix and curves when training ends; the gallery opens then.")
        return
    images = _plot_images(str(run_dir), listing)
    for i, ((file, _, _), jpeg) in enumerate(zip(listing, images, strict=True)):
        if i % GALLERY_COLUMNS == 0:  # a row of columns at a time: the images of a row line up
            columns = st.columns(GALLERY_COLUMNS)
        with columns[i % GALLERY_COLUMNS], st.container(key=f"ev_plot_{i}"):
            if jpeg is not None:
                st.image(jpeg, caption=cc.plot_caption(file), width="stretch")
            else:
                st.caption(f"{file}: cannot be shown (it does not decode)")
            st.download_button(
                file, lambda p=run_dir / file: read_bytes(p), file_name=f"{name}-{file}", mime=cc.mime_of(file),
                key=f"ev_download_{i}", icon=":material/download:", on_click="ignore",
            )  # fmt: skip
