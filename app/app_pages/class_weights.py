"""Class-weight calculator: per-class instance and image counts of a dataset, the weights a scheme gives them
(the same :func:`trainers.datasets.class_weights.compute_weights` that training uses), editable, exportable, and usable
in a new run.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import dataset_charts, dataset_info, exports, import_panel, recipe_form
from app.recipe_form import toggle_key, widget_key
from app.state import init_state
from app.widgets import setting_widget
from trainers.customizations.class_weights import ClassWeights
from trainers.errors import WorkbenchError

init_state()
ss = st.session_state


def _reset_edits() -> None:
    """Parameters changed: the table shows freshly computed weights again (manual edits are dropped)."""
    ss.pop("weights_editor", None)


def _use_in_new_run(names: list[str], weights: list[float], edited: bool) -> None:
    """Pre-fill the New run page: this dataset, class weights on (the scheme, or the edited list)."""
    ss[toggle_key("class_weights")] = True
    if ss.cw_data_source == "demo":
        ss.nr_data_source = "demo"
    elif ss.cw_data_source == "imported":
        ss.nr_data_source, ss.nr_data_name = "imported", ss.cw_data_name
    else:
        ss.nr_data_source, ss.nr_data_path = "path", ss.cw_data_path
    for spec in SCHEME_FIELDS:  # the same settings, under the New run form's keys
        ss[widget_key("class_weights", spec.name)] = ss[f"cw_{spec.name}"]
        if spec.none_box:
            ss[widget_key("class_weights", f"{spec.name}__none")] = ss[f"cw_{spec.name}__none"]
    # Training derives weights from the train counts: an edited list or another split passes these exact numbers.
    explicit = edited or ss.cw_split != "train"
    ss[widget_key("class_weights", "weights")] = ", ".join(f"{w:.6g}" for w in weights) if explicit else ""
    ss.nr_prefilled = _prefill_note(explicit)
    ss.weights_go_to_new_run = True


def _prefill_note(explicit: bool) -> str:
    """What 'Use in a new run' filled in, and the model New run keeps: this page has no model, and the demo base
    checkpoint (the form's default) was kept for any dataset without a word."""
    dataset = {"demo": "the bundled demo", "imported": ss.cw_data_name}.get(ss.cw_data_source, ss.cw_data_path)
    weights = "these exact weights" if explicit else f"the {ss.cw_scheme} scheme"
    source = ss.get("nr_model_source", "demo")
    model = {"demo": "the demo base checkpoint", "pretrained": ss.get("nr_pretrained"),
             "builtin": ss.get("nr_builtin"), "local": ss.get("nr_model_path")}.get(source)  # fmt: skip
    note = f"Prefilled from Class weights: dataset {dataset}, class weights on ({weights}). The model is {model}"
    if source == "demo" and ss.cw_data_source != "demo":
        return note + " (trained on the demo's shapes): choose a pretrained checkpoint or an architecture under Model."
    return note + "; change it under Model."


SCHEME_FIELDS = [spec for spec in recipe_form.specs("class_weights") if spec.name != "weights"]


def _settings() -> ClassWeights:
    """The calculator's scheme settings, validated by the recipe's own model."""
    values = {
        spec.name: spec.to_value(ss[f"cw_{spec.name}"], bool(ss.get(f"cw_{spec.name}__none"))) for spec in SCHEME_FIELDS
    }
    return ClassWeights(**values)


if ss.pop("weights_go_to_new_run", False):  # set by 'Use in a new run'
    st.switch_page("app_pages/new_run.py")

st.title("Class-weight calculator")
st.caption("Weights are computed from the box count per class; training uses the train split's counts.")

import_panel.settle_choice("cw_data_source", "cw_data_name")
a, b, c = st.columns([2, 4, 1.2])
a.radio(
    "Dataset",
    list(recipe_form.DATA_SOURCES),
    format_func=recipe_form.DATA_SOURCES.get,
    key="cw_data_source",
    horizontal=True,
    on_change=_reset_edits,
)
if ss.cw_data_source == "path":
    b.text_input("data.yaml", key="cw_data_path", placeholder="/path/to/data.yaml", on_change=_reset_edits)
elif ss.cw_data_source == "imported":
    with b:
        import_panel.choose_imported("cw_data_name", on_change=_reset_edits)
c.selectbox("Split", ["train", "val"], key="cw_split", on_change=_reset_edits)

form = recipe_form.FormValues(data_source=ss.cw_data_source, data_path=ss.cw_data_path, data_name=ss.cw_data_name)
path, problem = recipe_form.data_path(form)
info = dataset_info.inspect_dataset(path) if path else None
if problem or info is None or info.error:
    st.error(str(problem) if problem else (info.error if info else "no dataset"), icon=":material/error:")
    st.stop()
if ss.cw_split not in info.counts:
    st.error(f"data: split '{ss.cw_split}' is not in {info.path}")
    st.stop()
counts = info.counts[ss.cw_split]
st.caption(
    f"`{info.path}` [{ss.cw_split}]: {counts.n_images} images, {counts.n_labelled} labelled, "
    f"{counts.n_background} background; {sum(counts.instances)} boxes in {info.nc} classes"
)
for note in info.notes.get(ss.cw_split, []):
    st.caption(f":orange[{ss.cw_split}]: {note}")

# ---- scheme ------------------------------------------------------------------------------------------------------
visible = [spec for spec in SCHEME_FIELDS if spec.when is None or ss.get(f"cw_{spec.when[0]}") == spec.when[1]]
for col, spec in zip(st.columns(len(visible)), visible, strict=True):
    with col:
        setting_widget(spec, f"cw_{spec.name}", on_change=_reset_edits)

try:
    settings = _settings()
    weights = settings.from_counts(counts.instances)
except (WorkbenchError, ValueError) as e:  # a pydantic ValidationError is a ValueError
    st.error(
        f"customizations.class_weights: {e}" if not isinstance(e, WorkbenchError) else str(e), icon=":material/error:"
    )
    st.stop()

zero = [n for n, k in zip(counts.names, counts.instances, strict=True) if k == 0]
if zero:
    st.warning(
        f"{len(zero)} class(es) have no labels in this split: {', '.join(zero)}. "
        f"They get {'the largest weight' if settings.zero_count == 'max' else 'weight 1.0'} "
        f"(classes with no labels: {settings.zero_count}).",
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
# Half the width for the table: at 1400 px a 2/5 column left the editable weight column off the grid.
left, right = st.columns(2, gap="large")
with left:
    st.toggle("Log scale", key="cw_log")
    st.plotly_chart(
        dataset_charts.counts_figure(counts.names, counts.instances, counts.images, log_y=ss.cw_log),
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
        # The editable weight right after the name; id and zero count (the warning above names those) stay hidden.
        column_order=["class", "weight", "instances", "images"],
        column_config={
            # 100 px: the edit icon and the header, or a value up to 100.0000
            "weight": st.column_config.NumberColumn("weight", min_value=0.0, format="%.4f", required=True, width=100),
            "instances": st.column_config.NumberColumn("instances", width="small"),
            "images": st.column_config.NumberColumn("images", width="small"),
        },
    )
    final = [float(w) for w in edited["weight"]]
    bad = [f"{n}: {w}" for n, w in zip(counts.names, final, strict=True) if not (math.isfinite(w) and w >= 0)]
    if bad:
        st.error(f"customizations.class_weights.weights must be finite and >= 0; fix {', '.join(bad)}")
    was_edited = any(abs(x - y) > 1e-12 for x, y in zip(final, weights, strict=True))
    if was_edited:
        st.caption("Edited by hand: 'Use in a new run' passes this exact list.")
    st.plotly_chart(dataset_charts.weights_figure(counts.names, final), key="chart_weights", width="stretch")

    source = f"{info.path} [{ss.cw_split}], scheme {settings.scheme}" + (" (edited)" if was_edited else "")
    meta = {
        "data": info.path, "split": ss.cw_split, "instances": counts.instances, "images": counts.images,
        "scheme": settings.model_dump(exclude={"weights"}), "edited": was_edited,
    }  # fmt: skip
    buttons = st.container(horizontal=True)  # each button as wide as its label; they wrap rather than truncate
    buttons.download_button(
        "YAML", exports.weights_yaml(counts.names, final, source), file_name="class_weights.yaml",
        mime="application/x-yaml", key="weights_export_yaml", icon=":material/download:", disabled=bool(bad),
        on_click="ignore",
    )  # fmt: skip
    buttons.download_button(
        "JSON", exports.weights_json(counts.names, final, **meta), file_name="class_weights.json",
        mime="application/json", key="weights_export_json", icon=":material/download:", disabled=bool(bad),
        on_click="ignore",
    )  # fmt: skip
    buttons.button(
        "Use in a new run", key="weights_use", type="primary", disabled=bool(bad), on_click=_use_in_new_run,
        args=(list(counts.names), final, was_edited),
    )  # fmt: skip
