"""New run: pick a model and a dataset, set the main training arguments and the seven customizations, preview the
recipe YAML and Start. Invalid input shows an inline error under its field and Start stays refused until it is fixed.

Every widget's key is ``nr_<FormValues field>``; the recipe is rebuilt from session state on each rerun with
:func:`app.services.build_recipe` (the same :class:`~trainers.recipe.Recipe` validation as the CLI).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services
from app.services import CUSTOMIZATION_HELP, CUSTOMIZATION_TITLES, FormValues
from app.state import current_runs_root, init_state, show_errors
from trainers.errors import WorkbenchError

init_state()
root = current_runs_root()
ss = st.session_state
if ss.pop("new_run_clear_name", False):
    ss.nr_name = ""

form = FormValues.from_state(ss)
data_value, data_error = services.data_path(form)
dataset = services.inspect_dataset(data_value) if data_value and not data_error else None
draft = services.build_recipe(form, dataset, root)
shown: set[str] = set()  # error keys already shown next to a field


def errors_for(*paths: str) -> None:
    """Show the draft's errors for these field paths (and below) that no earlier field showed."""
    keys = [k for k in draft.error_fields(*paths) if k not in shown]
    shown.update(keys)
    show_errors([m for k in keys for m in draft.errors[k]])


def _forget_trust() -> None:
    ss.nr_trust_pt = False


def number(label: str, key: str, path: str, **kwargs) -> None:
    st.number_input(label, key=key, **kwargs)
    errors_for(path)


def customization_fields(name: str) -> None:
    """The parameters of one customization, each with its inline errors."""
    block = f"customizations.{name}"
    if name == "class_weights":
        st.radio(
            "Weights",
            ["scheme", "explicit"],
            format_func={"scheme": "From train label counts", "explicit": "Explicit list"}.get,
            key="nr_cw_mode",
            horizontal=True,
        )
        if ss.nr_cw_mode == "explicit":
            st.text_input("One weight per class, in class-id order", key="nr_cw_weights", placeholder="1.0, 2.5, 0.8")
            errors_for(f"{block}.weights")
            return
        a, b, c = st.columns(3)
        with a:
            st.selectbox("Scheme", services.SCHEMES, key="nr_cw_scheme", format_func=services.SCHEME_LABELS.get)
        with b:
            if ss.nr_cw_scheme == "power":
                number("Power", "nr_cw_power", f"{block}.power", min_value=0.0, step=0.1)
            elif ss.nr_cw_scheme == "effective_number":
                number("beta", "nr_cw_beta", f"{block}.beta", min_value=0.0, max_value=1.0, step=0.001, format="%.4f")
        with c:
            st.selectbox("Normalise", services.NORMALIZATIONS, key="nr_cw_normalize")
        a, b, c = st.columns(3)
        a.checkbox("Cap the weights", key="nr_cw_cap_on")
        with b:
            if ss.nr_cw_cap_on:
                number("Cap", "nr_cw_cap", f"{block}.cap", min_value=0.0, step=1.0)
        c.selectbox("Classes with no labels", services.ZERO_COUNT, key="nr_cw_zero_count")
        st.page_link(
            "app_pages/class_weights.py", label="Preview the weights in the calculator", icon=":material/balance:"
        )
    elif name == "best_metric":
        if ss.nr_bm_metric not in services.BEST_METRICS:
            ss.nr_bm_metric = "fitness"
        a, b = st.columns(2)
        with a:
            st.selectbox("Metric", services.BEST_METRICS, key="nr_bm_metric")
            errors_for(f"{block}.metric")
        with b:
            st.selectbox(
                "Direction", ["auto", "max", "min"], key="nr_bm_mode", help="auto: min for val/* losses, else max"
            )
            errors_for(f"{block}.mode")
    elif name == "freeze":
        a, b, c = st.columns(3)
        with a:
            st.text_input(
                "Layers", key="nr_fz_layers", help="'backbone', a number of leading layers, or indices 0, 1, 2"
            )
            errors_for(f"{block}.layers")
        with b:
            number(
                "Frozen epochs",
                "nr_fz_epochs",
                f"{block}.frozen_epochs",
                min_value=0,
                step=1,
                disabled=ss.nr_fz_forever,
            )
        c.checkbox("Never unfreeze", key="nr_fz_forever")
    elif name == "layer_lr":
        number(
            "Backbone LR ratio", "nr_llr_ratio", f"{block}.backbone_ratio", min_value=0.0, step=0.05, format="%.3f",
            help="backbone lr = ratio x head lr (0 < ratio <= 100)",
        )  # fmt: skip
    elif name == "grad_clip":
        number("Max gradient norm", "nr_gc_max_norm", f"{block}.max_norm", min_value=0.0, step=1.0, help="0 disables")


st.title("New run")
st.caption("Defaults train the bundled demo dataset from the demo base checkpoint: press Start to try it.")
form_col, recipe_col = st.columns([3, 2], gap="large")

with form_col:
    # ---- model ---------------------------------------------------------------------------------------------------
    st.subheader("Model")
    st.radio(
        "Model",
        ["demo", "builtin", "local"],
        format_func={
            "demo": "Demo base checkpoint",
            "builtin": "Built-in architecture (from scratch)",
            "local": "Local .pt checkpoint",
        }.get,
        key="nr_model_source",
        horizontal=True,
        label_visibility="collapsed",
    )
    if ss.nr_model_source == "demo":
        st.caption(f"`{services.DEMO_MODEL.relative_to(services.REPO_ROOT)}`: a small detector trained for the demo.")
    elif ss.nr_model_source == "builtin":
        if ss.nr_builtin not in services.BUILTIN_MODELS:
            ss.nr_builtin = FormValues.builtin
        st.selectbox("Architecture (random initial weights)", services.BUILTIN_MODELS, key="nr_builtin")
    else:
        st.text_input(
            "Path of a .pt checkpoint",
            key="nr_model_path",
            placeholder="/path/to/model.pt",
            on_change=_forget_trust,  # trust was given to one file, not to whatever the path names next
        )
        st.warning(
            ".pt files are Python pickles: loading one can run arbitrary code on this machine. "
            "Only use checkpoints from a source you trust.",
            icon=":material/warning:",
        )
        st.checkbox("I trust this file and want it loaded", key="nr_trust_pt")
        errors_for("trust")
    errors_for("model")

    # ---- dataset -------------------------------------------------------------------------------------------------
    st.subheader("Dataset")
    st.radio(
        "Dataset",
        ["demo", "path"],
        format_func={"demo": "Bundled demo", "path": "A data.yaml path"}.get,
        key="nr_data_source",
        horizontal=True,
        label_visibility="collapsed",
    )
    if ss.nr_data_source == "path":
        st.text_input("data.yaml", key="nr_data_path", placeholder="/path/to/data.yaml")
    errors_for("data")
    if dataset is not None and not dataset.error:
        parts = [f"**{dataset.nc} classes**: {', '.join(dataset.names)}"]
        for split, c in dataset.counts.items():
            parts.append(f"{split}: {c.n_images} images ({c.n_background} background), {sum(c.instances)} boxes")
        st.success(" · ".join(parts), icon=":material/check_circle:")
        with st.expander("Label counts per class"):
            table = {"class": dataset.names}
            for split, c in dataset.counts.items():
                table[f"{split} instances"] = c.instances
                table[f"{split} images"] = c.images
            st.dataframe(pd.DataFrame(table), hide_index=True, key="new_run_counts_table")

    # ---- training arguments --------------------------------------------------------------------------------------
    st.subheader("Training")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        number("Epochs", "nr_epochs", "train.epochs", min_value=1, step=1)
    with c2:
        number("Image size", "nr_imgsz", "train.imgsz", min_value=32, step=32)
    with c3:
        number("Batch", "nr_batch", "train.batch", min_value=-1, step=1, help="-1: AutoBatch (GPU only)")
    with c4:
        gpus = services.list_gpus()
        devices = services.device_options(gpus)
        if ss.nr_device not in devices:
            ss.nr_device = "auto"
        labels = {"auto": "auto (GPU if available)", "cpu": "cpu"} | {g.split(":", 1)[0]: f"GPU {g}" for g in gpus}
        st.selectbox("Device", devices, key="nr_device", format_func=lambda d: labels.get(d, f"GPUs {d}"))
        errors_for("train.device")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        if ss.nr_optimizer not in services.OPTIMIZERS:
            ss.nr_optimizer = "auto"
        st.selectbox("Optimizer", services.OPTIMIZERS, key="nr_optimizer", help="auto picks the optimizer and lr0")
        errors_for("train.optimizer")
    with c2:
        number("lr0", "nr_lr0", "train.lr0", min_value=0.0, step=0.001, format="%.5f")
    with c3:
        number("Seed", "nr_seed", "train.seed", min_value=0, step=1)
    with c4:
        number(
            "Patience",
            "nr_patience",
            "train.patience",
            min_value=0,
            step=1,
            help="early stop after N epochs without improvement",
        )
    st.text_area(
        "Other ultralytics training arguments (YAML)",
        key="nr_extra_train",
        placeholder="cos_lr: true\nclose_mosaic: 0",
        height=80,
    )
    errors_for("train")
    st.text_input("Run name (optional)", key="nr_name", placeholder="generated from the dataset and the time")
    errors_for("name")

    # ---- customizations ------------------------------------------------------------------------------------------
    st.subheader("Customizations")
    for name in CUSTOMIZATION_HELP:
        with st.container(border=True):
            st.toggle(CUSTOMIZATION_TITLES[name], key=f"nr_{name}_on")
            st.caption(CUSTOMIZATION_HELP[name])
            if ss[f"nr_{name}_on"]:
                customization_fields(name)
            errors_for(f"customizations.{name}")
    errors_for("customizations")

with recipe_col:
    st.subheader("Recipe")
    st.code(draft.yaml, language="yaml")
    st.download_button(
        "Download recipe.yaml",
        draft.yaml,
        file_name=f"{services.recipe_stem(form)}.yaml",
        mime="application/x-yaml",
        key="new_run_download",
        icon=":material/download:",
    )
    show_errors([m for k, msgs in draft.errors.items() if k not in shown for m in msgs])  # fields without a widget
    if draft.errors:
        n = sum(len(v) for v in draft.errors.values())
        st.warning(f"Start is refused until {'this problem is' if n == 1 else f'these {n} problems are'} fixed.")
    if st.button("Start", type="primary", key="new_run_start", disabled=not draft.ok, icon=":material/play_arrow:"):
        if draft.ok:  # re-checked: a disabled button cannot be clicked in a browser, but state can change under it
            try:
                run_dir = services.launch(draft, root, services.recipe_stem(form))
            except WorkbenchError as e:
                st.error(str(e))
            else:
                ss.selected_run = run_dir.name
                ss.new_run_clear_name = True  # a run name can be used once: cleared when the page is shown next
                st.switch_page("app_pages/dashboard.py", query_params={"run": run_dir.name})
