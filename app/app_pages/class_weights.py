"""Class-weight calculator: per-class instance and image counts of a dataset, the weights a scheme gives them
(the same :func:`trainers.weights.compute_weights` that training uses), editable, exportable, and usable in a new run.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import charts, services
from app.state import init_state
from trainers.errors import WorkbenchError

init_state()
ss = st.session_state


def _reset_edits() -> None:
    """Parameters changed: the table shows freshly computed weights again (manual edits are dropped)."""
    ss.pop("weights_editor", None)


def _use_in_new_run(names: list[str], weights: list[float], edited: bool) -> None:
    """Pre-fill the New run page: this dataset, class weights on (the scheme, or the edited list)."""
    ss.nr_class_weights_on = True
    if ss.cw_data_source == "demo":
        ss.nr_data_source = "demo"
    else:
        ss.nr_data_source, ss.nr_data_path = "path", ss.cw_data_path
    if edited or ss.cw_split != "train":  # training derives weights from train counts: pass these exact numbers
        ss.nr_cw_mode = "explicit"
        ss.nr_cw_weights = ", ".join(f"{w:.6g}" for w in weights)
    else:
        ss.nr_cw_mode = "scheme"
        for key in ("scheme", "power", "beta", "cap_on", "cap", "normalize", "zero_count"):
            ss[f"nr_cw_{key}"] = ss[f"cw_{key}"]
    ss.weights_go_to_new_run = True


if ss.pop("weights_go_to_new_run", False):  # set by 'Use in a new run'
    st.switch_page("app_pages/new_run.py")

st.title("Class-weight calculator")
st.caption("Weights are computed from the box count per class; training uses the train split's counts.")

a, b, c = st.columns([2, 4, 1.2])
a.radio(
    "Dataset",
    ["demo", "path"],
    format_func={"demo": "Bundled demo", "path": "A data.yaml path"}.get,
    key="cw_data_source",
    horizontal=True,
    on_change=_reset_edits,
)
if ss.cw_data_source == "path":
    b.text_input("data.yaml", key="cw_data_path", placeholder="/path/to/data.yaml", on_change=_reset_edits)
c.selectbox("Split", ["train", "val"], key="cw_split", on_change=_reset_edits)

form = services.FormValues(data_source=ss.cw_data_source, data_path=ss.cw_data_path)
path, error = services.data_path(form)
info = services.inspect_dataset(path) if path else None
if error or info is None or info.error:
    st.error(error or (info.error if info else "no dataset"), icon=":material/error:")
    st.stop()
if ss.cw_split not in info.counts:
    st.error(f"data: split '{ss.cw_split}' is not in {info.path}")
    st.stop()
counts = info.counts[ss.cw_split]
st.caption(
    f"`{info.path}` [{ss.cw_split}]: {counts.n_images} images, {counts.n_labelled} labelled, "
    f"{counts.n_background} background; {sum(counts.instances)} boxes in {info.nc} classes"
)

# ---- scheme ------------------------------------------------------------------------------------------------------
cols = st.columns(6)
cols[0].selectbox(
    "Scheme", services.SCHEMES, key="cw_scheme", format_func=services.SCHEME_LABELS.get, on_change=_reset_edits
)
cols[1].number_input(
    "Power", key="cw_power", min_value=0.0, step=0.1, disabled=ss.cw_scheme != "power", on_change=_reset_edits
)
cols[2].number_input(
    "beta", key="cw_beta", min_value=0.0, max_value=0.999999, step=0.001, format="%.4f",
    disabled=ss.cw_scheme != "effective_number", on_change=_reset_edits,
)  # fmt: skip
cols[3].selectbox("Normalise", services.NORMALIZATIONS, key="cw_normalize", on_change=_reset_edits)
cols[4].selectbox("Zero-count classes", services.ZERO_COUNT, key="cw_zero_count", on_change=_reset_edits)
with cols[5]:
    st.checkbox("Cap", key="cw_cap_on", on_change=_reset_edits)
    st.number_input(
        "Cap value", key="cw_cap", min_value=0.0, step=1.0, disabled=not ss.cw_cap_on, on_change=_reset_edits,
        label_visibility="collapsed",
    )  # fmt: skip

try:
    weights = services.class_weights(
        counts, ss.cw_scheme, power=ss.cw_power, beta=ss.cw_beta, cap=ss.cw_cap if ss.cw_cap_on else None,
        normalize=ss.cw_normalize, zero_count=ss.cw_zero_count,
    )  # fmt: skip
except WorkbenchError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

zero = [n for n, k in zip(counts.names, counts.instances, strict=True) if k == 0]
if zero:
    st.warning(
        f"{len(zero)} class(es) have no labels in this split: {', '.join(zero)}. "
        f"They get {'the largest weight' if ss.cw_zero_count == 'max' else 'weight 1.0'} "
        f"(zero-count: {ss.cw_zero_count}).",
        icon=":material/warning:",
    )

table = pd.DataFrame(
    {
        "id": list(range(info.nc)),
        "class": counts.names,
        "instances": counts.instances,
        "images": counts.images,
        "zero count": [k == 0 for k in counts.instances],
        "weight": weights,
    }
)
left, right = st.columns([3, 2], gap="large")
with left:
    st.toggle("Log scale", key="cw_log")
    st.plotly_chart(
        charts.counts_figure(counts.names, counts.instances, counts.images, log_y=ss.cw_log),
        key="chart_counts",
        width="stretch",
    )
with right:
    st.markdown("**Weights** (editable)")
    edited = st.data_editor(
        table,
        key="weights_editor",
        hide_index=True,
        disabled=["id", "class", "instances", "images", "zero count"],
        column_config={"weight": st.column_config.NumberColumn("weight", min_value=0.0, format="%.4f", required=True)},
    )
    final = [float(w) for w in edited["weight"]]
    bad = [f"{n}: {w}" for n, w in zip(counts.names, final, strict=True) if not (math.isfinite(w) and w >= 0)]
    if bad:
        st.error(f"customizations.class_weights.weights must be finite and >= 0; fix {', '.join(bad)}")
    was_edited = any(abs(x - y) > 1e-12 for x, y in zip(final, weights, strict=True))
    if was_edited:
        st.caption("Edited by hand: 'Use in a new run' passes this exact list.")
    st.plotly_chart(charts.weights_figure(counts.names, final), key="chart_weights", width="stretch")

    source = f"{info.path} [{ss.cw_split}], scheme {ss.cw_scheme}" + (" (edited)" if was_edited else "")
    meta = {
        "data": info.path, "split": ss.cw_split, "instances": counts.instances, "images": counts.images,
        "scheme": {
            "scheme": ss.cw_scheme, "power": ss.cw_power, "beta": ss.cw_beta,
            "cap": ss.cw_cap if ss.cw_cap_on else None, "normalize": ss.cw_normalize, "zero_count": ss.cw_zero_count,
        },
        "edited": was_edited,
    }  # fmt: skip
    x, y, z = st.columns(3)
    x.download_button(
        "YAML", services.weights_yaml(counts.names, final, source), file_name="class_weights.yaml",
        mime="application/x-yaml", key="weights_export_yaml", icon=":material/download:", disabled=bool(bad),
        on_click="ignore",
    )  # fmt: skip
    y.download_button(
        "JSON", services.weights_json(counts.names, final, **meta), file_name="class_weights.json",
        mime="application/json", key="weights_export_json", icon=":material/download:", disabled=bool(bad),
        on_click="ignore",
    )  # fmt: skip
    z.button(
        "Use in a new run", key="weights_use", type="primary", disabled=bool(bad), on_click=_use_in_new_run,
        args=(list(counts.names), final, was_edited),
    )  # fmt: skip
