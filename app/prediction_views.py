"""The dashboard's Predictions tab: the run's sample of val images with ground truth (solid) and predictions (dashed,
with confidence) drawn over them at one validation, read through :class:`trainers.telemetry.evidence.Evidence`.

An epoch slider (the epochs with evidence, then "final": best.pt's final evaluation), a confidence threshold, a class
filter and worst-first order (most missed + false boxes at the threshold); Open on a tile shows that image large with
its boxes listed, beside the same image at another epoch.

The dashboard refreshes every 2 s while a run is live, so everything read or drawn is kept with ``st.cache_data``
under the evidence folder's stamp (its epoch folders and their mtimes): a refresh with nothing new costs a directory
listing and a stat per sample image. The user's choices live under keys of this module's own (``pred_*_<run>``) and
are handed to the widgets as their defaults, never written to the widgets' keys: see
:func:`app.dashboard_parts.per_class_section` for what a browser on a loaded server does with a value written there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import streamlit as st

from app import prediction_grid as grid
from trainers.datasets.datasets_dir import datasets_root
from trainers.datasets.thumbnails import THUMB_PX, make_thumbnails, thumbnail_cache_dir
from trainers.errors import WorkbenchError
from trainers.run_files import EVIDENCE_DIR
from trainers.runs.status import read_status
from trainers.statuses import ACTIVE_STATUSES
from trainers.telemetry.evidence import (
    FINAL,
    PRED,
    PRED_MIN_CONF,
    SAMPLE_FILE,
    Evidence,
    box_verdicts,
    epoch_folder_name,
)

COLUMNS = 4  # tiles per row: ~260 px each in the dashboard's width
LARGE_PX = 768  # the opened image's thumbnail (its longer side)
CACHED = 64  # entries per cached function: a few runs x epochs x thresholds
ALL = -1  # the class filter's "all classes"
NO_EPOCH = "-"  # "no other epoch" beside the opened image

Stamp = tuple[tuple[str, int], ...]


# ---- what is on disk, cached under its stamp --------------------------------------------------------------------
def evidence_stamp(run_dir: Path) -> Stamp:
    """The evidence folder's entries and their mtimes: changes when an epoch is written (or redone by a resume)."""
    try:
        with os.scandir(run_dir / EVIDENCE_DIR) as entries:
            return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in entries if not e.name.startswith(".")))
    except OSError:
        return ()


def image_stamps(images: list[dict[str, Any]]) -> tuple[tuple[str, int, int] | None, ...]:
    """(file, mtime, size) of each sample image (``None``: missing), so a replaced image gets a new thumbnail."""
    out: list[tuple[str, int, int] | None] = []
    for info in images:
        try:
            s = os.stat(info["file"])
            out.append((info["file"], s.st_mtime_ns, s.st_size))
        except (OSError, KeyError, TypeError):
            out.append(None)
    return tuple(out)


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _sample(run_dir: str, stamp: Stamp) -> dict[str, Any]:
    ev = Evidence(run_dir)
    return {"names": ev.names, "images": ev.images, "epochs": ev.epochs}


def folder_stamp(stamp: Stamp, epoch: int | str) -> int | None:
    """The mtime of one validation's folder: a new epoch leaves the ones already read as they were."""
    return dict(stamp).get(epoch_folder_name(epoch))


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _boxes(run_dir: str, epoch: int | str, mtime: int | None) -> dict[str, Any]:
    return Evidence(run_dir).epoch(epoch).boxes


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _errors(run_dir: str, epoch: int | str, mtime: int | None, conf: float, n_images: int) -> list[tuple[int, int]]:
    return grid.all_errors(_boxes(run_dir, epoch, mtime), n_images, conf)


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _thumbs(stamps: tuple[tuple[str, int, int] | None, ...], px: int) -> list[tuple[bytes | None, str]]:
    """(JPEG, note) per sample image: the dataset page's thumbnails (kept on disk across sessions too)."""
    made = iter(make_thumbnails([s[0] for s in stamps if s is not None], _thumb_dir(), px))
    out: list[tuple[bytes | None, str]] = []
    for s in stamps:
        t = next(made) if s is not None else None
        if t is None or t.jpeg is None:
            out.append((None, f"image not shown: {t.error if t is not None else 'image not found'}"))
        else:
            out.append((t.jpeg, ""))
    return out


def _thumb_dir() -> Path:
    try:
        return thumbnail_cache_dir(datasets_root())
    except WorkbenchError:  # an unusable datasets folder: the user cache
        return thumbnail_cache_dir(None)


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _grid(
    run_dir: str, stamp: Stamp, epoch: int | str, conf: float, cls: int | None, worst: bool,
    images: tuple[tuple[str, int, int] | None, ...], opened: int | None,
) -> tuple[list[tuple[int, str]], list[int]]:  # fmt: skip
    """The tiles shown, in order, as (image, HTML), and the classes they draw (for the legend)."""
    sample, mtime = _sample(run_dir, stamp), folder_stamp(stamp, epoch)
    names, info = sample["names"], sample["images"]
    boxes = _boxes(run_dir, epoch, mtime)
    errors = _errors(run_dir, epoch, mtime, conf, len(info))
    thumbs = _thumbs(images, THUMB_PX)
    tiles, drawn = [], set()
    for i in grid.shown_images(boxes, len(info), conf, errors, cls, worst):
        rows = grid.image_boxes(boxes, i, conf)
        drawn |= {r["cls"] for r in rows}
        w, h = int(info[i].get("width") or 0), int(info[i].get("height") or 0)
        html = grid.tile_html(
            i, info[i], thumbs[i][0], thumbs[i][1], grid.boxes_html(rows, w, h, names, cls), errors[i], opened == i
        )
        tiles.append((i, html))
    return tiles, sorted(drawn)


@st.cache_data(max_entries=CACHED, show_spinner=False)
def _large(
    run_dir: str, stamp: Stamp, epoch: int | str, conf: float, cls: int | None, image: int,
    image_stamp: tuple[str, int, int] | None,
) -> tuple[str, list[dict[str, Any]]]:  # fmt: skip
    """The opened image at one epoch, large, and its boxes as table rows."""
    sample, mtime = _sample(run_dir, stamp), folder_stamp(stamp, epoch)
    names, info = sample["names"], sample["images"][image]
    boxes = _boxes(run_dir, epoch, mtime)
    rows = grid.image_boxes(boxes, image, conf)
    jpeg, note = _thumbs((image_stamp,), LARGE_PX)[0]
    errors = _errors(run_dir, epoch, mtime, conf, len(sample["images"]))[image]
    w, h = int(info.get("width") or 0), int(info.get("height") or 0)
    html = grid.tile_html(image, info, jpeg, note, grid.boxes_html(rows, w, h, names, cls), errors, large=True)
    verdicts = box_verdicts(boxes, image, conf)  # the rule behind the tile's "missed" and "false" counts
    table = [
        {"box": grid.PRED_LABEL if r["kind"] == PRED else grid.GT_LABEL,
         "class": names[r["cls"]] if 0 <= r["cls"] < len(names) else f"id {r['cls']}",
         "confidence": f"{r['conf']:.3f}" if r["kind"] == PRED else "",
         "verdict": verdicts.get(r["row"], ""),
         **{k: round(r[k], 1) for k in ("x1", "y1", "x2", "y2")}}
        for r in rows
    ]  # fmt: skip
    return f'<div class="wb-large">{html}</div>', table


# ---- the tab ----------------------------------------------------------------------------------------------------
def epoch_label(epoch: int | str) -> str:
    return "final (best.pt)" if epoch == FINAL else f"epoch {epoch}"


def no_evidence_reason(run_dir: Path, has_sample: bool) -> str:
    """Why a run shows no predictions, in one line."""
    if read_status(run_dir).get("status") in ACTIVE_STATUSES:
        return "No validation yet: the sample's predictions appear here once the first epoch is validated."
    if has_sample:
        return "No predictions: the run ended before its first validation."
    return (
        "No predictions: this run predates per-epoch evidence (runs trained since keep the sample's boxes at every "
        "validation)."
    )


def kept(widget: Callable[..., Any], own: str, default: Any, *args: Any, arg: str = "value", **kwargs: Any) -> Any:
    """Draw ``widget`` with the user's last choice (session key ``own``, else ``default``) as its default and keep
    what it returns under ``own``: the choice survives new epochs, page switches and a browser that lost the value."""
    ss = st.session_state
    value = ss.get(own, default)
    if arg == "index":
        options = kwargs.get("options", args[1] if len(args) > 1 else [])
        value = options.index(value) if value in options else options.index(default)
    ss[own] = widget(*args, **{arg: value}, **kwargs)
    return ss[own]


def _epoch(epochs: list[int | str], name: str) -> int | str:
    """The epoch slider. New epochs of a live run are added to it; one who was at the newest epoch moves on to the
    newest, anyone else stays where they were."""
    ss = st.session_state
    own, seen, gen = f"pred_epoch_{name}", f"pred_epochs_seen_{name}", f"pred_epoch_gen_{name}"
    before = ss.get(seen)
    if before and ss.get(own) == before[-1] and epochs[-1] != before[-1]:
        ss[own] = epochs[-1]
        ss[gen] = ss.get(gen, 0) + 1  # a new widget, drawn at its default: a value written to a widget can be lost
    ss[seen] = list(epochs)
    if ss.get(own) not in epochs:
        ss[own] = epochs[-1]
    if len(epochs) == 1:
        st.caption(f"Showing {epoch_label(epochs[0])}, the only validation so far.")
        return epochs[0]
    return kept(
        st.select_slider, own, epochs[-1], "Epoch", options=epochs, format_func=epoch_label,
        key=f"pred_epoch_w_{name}_{ss.get(gen, 0)}", help="the validations with evidence; final: best.pt's evaluation",
    )  # fmt: skip


def predictions_tab(run_dir: Path, name: str) -> None:
    """The Predictions tab of run ``name``."""
    stamp = evidence_stamp(run_dir)
    try:
        sample = _sample(str(run_dir), stamp)
    except (OSError, ValueError) as e:
        st.warning(f"Cannot read this run's evidence ({run_dir / EVIDENCE_DIR / SAMPLE_FILE}): {e}")
        return
    names, info, epochs = sample["names"], sample["images"], sample["epochs"]
    if not epochs:
        st.caption(no_evidence_reason(run_dir, any(n == SAMPLE_FILE for n, _ in stamp)))
        return
    if not info:
        st.caption("No sample images: the run's val split had none when the sample was chosen.")
        return
    st.html(grid.CSS)  # once for the tab: every tile's HTML uses these classes
    top = st.columns([3, 2, 2, 1.2], vertical_alignment="bottom")
    with top[0]:
        epoch = _epoch(epochs, name)
    conf = kept(
        top[1].slider, f"pred_conf_{name}", grid.DEFAULT_CONF, "Confidence threshold", PRED_MIN_CONF, 1.0, step=0.05,
        key=f"pred_conf_w_{name}", help=f"predictions at or above it are drawn (kept from {PRED_MIN_CONF:g})",
    )  # fmt: skip
    classes = [ALL, *range(len(names))]
    choice = kept(
        top[2].selectbox, f"pred_class_{name}", ALL, "Class", options=classes, arg="index",
        format_func=lambda c: "All classes" if c == ALL else names[c], key=f"pred_class_w_{name}",
        help="only the images with this class (labelled, or predicted at the threshold); other classes dimmed",
    )  # fmt: skip
    worst = kept(
        top[3].toggle, f"pred_worst_{name}", True, "Worst first", key=f"pred_worst_w_{name}",
        help="most missed + false boxes at the threshold first (IoU 0.5, same class)",
    )  # fmt: skip
    conf, cls = round(float(conf), 2), None if choice == ALL else choice
    images = image_stamps(info)
    try:
        opened = st.session_state.get(f"pred_opened_{name}")
        opened = opened if isinstance(opened, int) and 0 <= opened < len(info) else None
        tiles, drawn = _grid(str(run_dir), stamp, epoch, conf, cls, worst, images, opened)
    except (OSError, ValueError, pa.ArrowException) as e:
        st.warning(f"Cannot read the evidence of {epoch_label(epoch)}: {str(e).splitlines()[0] if str(e) else e}")
        return
    st.html(grid.legend_html(names, drawn, conf))
    if opened is not None:
        _opened(run_dir, name, stamp, epochs, epoch, conf, cls, opened, images[opened])
    if not tiles:
        st.caption(f"No sample image shows {names[cls]} at {epoch_label(epoch)} and this threshold.")
        return
    st.caption(
        f"{len(tiles)} of {len(info)} sample images at {epoch_label(epoch)}"
        + (", worst first" if worst else ", in sample order (rare classes first)")
    )
    for row in range(0, len(tiles), COLUMNS):
        for col, (i, html) in zip(st.columns(COLUMNS), tiles[row : row + COLUMNS], strict=False):
            col.html(html)
            col.button(
                "Open", key=f"pred_open_{name}_{i}", on_click=_open, args=(name, i), icon=":material/zoom_in:",
                help="this image large, with its boxes listed and another epoch beside it",
            )  # fmt: skip


def _open(name: str, image: int | None) -> None:
    st.session_state[f"pred_opened_{name}"] = image


def _opened(
    run_dir: Path, name: str, stamp: Stamp, epochs: list[int | str], epoch: int | str, conf: float, cls: int | None,
    image: int, image_stamp: tuple[str, int, int] | None,
) -> None:  # fmt: skip
    """The opened image large at the slider's epoch, beside the same image at another epoch, each with its boxes."""
    with st.container(border=True, key=f"pred_large_{name}"):
        head, close = st.columns([6, 1], vertical_alignment="bottom")
        others = [e for e in epochs if e != epoch]
        compare = None
        if others:
            compare = kept(
                head.selectbox, f"pred_compare_{name}", others[0], "Beside it, the same image at", arg="index",
                options=[NO_EPOCH, *others], key=f"pred_compare_w_{name}",
                format_func=lambda e: "no other epoch" if e == NO_EPOCH else epoch_label(e),
            )  # fmt: skip
        close.button("Close", key=f"pred_close_{name}", on_click=_open, args=(name, None), icon=":material/close:")
        shown = [epoch] + ([compare] if compare not in (None, NO_EPOCH) else [])
        for col, e in zip(st.columns(2), shown, strict=False):
            html, table = _large(str(run_dir), stamp, e, conf, cls, image, image_stamp)
            col.markdown(f"**{epoch_label(e)}**")
            col.html(html)
            if table:
                rows = min(400, 38 + 35 * len(table))
                col.dataframe(table, hide_index=True, key=f"pred_boxes_{name}_{e}", height=rows)
            else:
                col.caption("No labelled box and no prediction at this threshold.")
