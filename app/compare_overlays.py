"""Compare, overlaid (issue 19 item 4), as Streamlit sections of the Compare page: the train loss, mAP50-95 and the
learning rate of every compared run on one chart each, shown without choosing anything, and one sample image as each
run predicted it, side by side. Figures and tiles come from :mod:`app.overlay_charts` (no Streamlit).

Evidence is read through :class:`trainers.telemetry.evidence.Evidence`, cached by the evidence version and each epoch
folder's mtime, as on the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from app import charts
from app import overlay_charts as oc
from app.confusion_charts import epoch_label, epoch_stamp, evidence_version, shown_epoch
from app.confusion_views import READ_ERRORS, best_epoch, thumb_dir
from trainers.datasets.thumbnails import make_thumbnails
from trainers.metrics import MAP50_95
from trainers.telemetry.evidence import Evidence
from trainers.telemetry.run_log import RunLog

TILE_PX = 512  # thumbnail side for the side-by-side tiles (at most ~420 px wide each)


def _top_legend(fig: Any) -> Any:
    """The legend above the plot: three charts share the page's width, and a legend on the right squeezed each."""
    fig.update_layout(legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
                      margin={"l": 55, "r": 15, "t": 90, "b": 45})  # fmt: skip
    return fig


def overlay_section(logs: Mapping[str, RunLog]) -> None:
    """Train loss, mAP50-95 and learning rate, one line per run each."""
    st.subheader("Overlaid")
    loss, precision, lr = st.columns(3)
    loss.plotly_chart(_top_legend(oc.loss_figure(logs)), key="chart_cmp_loss", width="stretch")
    precision.plotly_chart(
        _top_legend(charts.compare_figure(logs, MAP50_95.label)), key="chart_cmp_map", width="stretch"
    )
    lr.plotly_chart(_top_legend(oc.lr_figure(logs)), key="chart_cmp_lr", width="stretch")
    lr.caption("Each run's main parameter group, named after the run: its first weights group (ultralytics' pg0).")


# ---- the same image across runs ----------------------------------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def _sample(run_dir: str, version: tuple) -> dict[str, Any]:
    ev = Evidence(run_dir)
    return {"names": ev.names, "images": ev.images, "epochs": list(version[0])}


@st.cache_data(max_entries=64, show_spinner=False)
def _boxes(run_dir: str, epoch: int | str, stamp: int) -> dict[str, np.ndarray]:
    return Evidence(run_dir).epoch(epoch).boxes


@st.cache_data(max_entries=64, show_spinner=False)
def _thumb(file: str, mtime: int) -> bytes | None:
    return make_thumbnails([file], thumb_dir(), px=TILE_PX)[0].jpeg


def _mtime(file: str) -> int:
    try:
        return Path(file).stat().st_mtime_ns
    except OSError:
        return 0


def short_names(files: Sequence[str]) -> dict[str, str]:
    """Each file by its name alone, or by its whole path where two share a name."""
    names = [Path(f).name for f in files]
    return {f: n if names.count(n) == 1 else f for f, n in zip(files, names, strict=True)}


def same_image_section(root: Path, runs: Sequence[str]) -> None:
    """One image of the runs' evidence samples, drawn as each run predicted it at its best (else last) epoch."""
    st.subheader("Same image across runs")
    if len(runs) < 2:
        st.info("Choose a second run to see an image as each run predicts it.")
        return
    samples = {run: _sample(str(root / run), evidence_version(root / run)) for run in runs}
    with_evidence = {run: s for run, s in samples.items() if s["images"] and s["epochs"]}
    shared = oc.shared_images({run: s["images"] for run, s in with_evidence.items()})
    if not shared:
        st.caption(
            "These runs share no sample image: each run keeps evidence of its own sample of val images (runs on the "
            "same data share theirs), from its first validation on."
        )
        return
    ss = st.session_state
    if ss.get("cmp_image") not in shared:
        ss.cmp_image = shared[0]
    labels = short_names(shared)
    pick, threshold = st.columns([3, 1])
    file = pick.selectbox("Image", shared, key="cmp_image", format_func=labels.get, help="an image in the samples")
    conf = threshold.slider("Confidence", 0.05, 1.0, oc.DEFAULT_CONF, 0.05, key="cmp_conf",
                            help="predictions drawn from this confidence")  # fmt: skip
    tiles, left_out, unreadable = [], [], []
    for run in runs:
        sample = with_evidence.get(run)
        files = [str(i.get("file")) for i in sample["images"]] if sample else []
        if file not in files:
            left_out.append(run)
            continue
        index = files.index(file)
        best = best_epoch(root / run)
        epoch, _ = shown_epoch(sample["epochs"], best)
        try:
            boxes = _boxes(str(root / run), epoch, epoch_stamp(root / run, epoch))
        except READ_ERRORS:  # a damaged boxes file: the other runs still show
            unreadable.append(run)
            continue
        image = sample["images"][index]
        size = (int(image.get("width") or 0), int(image.get("height") or 0))
        jpeg = _thumb(file, _mtime(file))
        tiles.append({
            "run": run, "image": image, "jpeg": jpeg, "note": "image not found" if jpeg is None else "",
            "said": f"best epoch {epoch}" if epoch == best else f"last evidence: {epoch_label(epoch)}",
            "boxes": oc.boxes_html(boxes, index, size, sample["names"], conf),
            "errors": oc.errors_of(boxes, index, conf),
        })  # fmt: skip
    with st.container(key="cmp_side_by_side"):
        st.html(oc.side_by_side_html(tiles, conf))
    if left_out:
        st.caption(f"Not in the evidence sample of {', '.join(left_out)}.")
    if unreadable:
        st.warning(f"The evidence of {', '.join(unreadable)} cannot be read.", icon=":material/warning:")
