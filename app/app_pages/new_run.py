"""New run: pick a model and a dataset, set the main training arguments and the customizations, preview the recipe
YAML and Start. Invalid input shows an inline error under its field and Start stays refused until it is fixed.

Widget keys are ``nr_<FormValues field>`` and, per customization of the table, ``nr_<key>_on`` and
``nr_<key>__<setting>`` (:mod:`app.recipe_form`). The customizations and their fields are drawn from the table and
each settings model (:mod:`app.settings_form`), so a new customization appears here without code of its own. The
recipe is rebuilt from session state on each rerun with :func:`app.recipe_form.build_recipe` (the same
:class:`~trainers.recipe.Recipe` validation as the CLI).
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app import dataset_info, devices, import_panel, model_choices, recipe_form
from app.recipe_form import FormValues, toggle_key, widget_key
from app.state import current_runs_root, default_cpus, init_state, refit_defaults, show_problems
from app.who import record_done
from app.widgets import setting_widget
from trainers import customizations as table
from trainers.errors import WorkbenchError

init_state()
root = current_runs_root()
ss = st.session_state
# Run on: `workbench ui --cluster ADDRESS` (or $WORKBENCH_CLUSTER) offers that Ray cluster, chosen by default.
CLUSTER = os.environ.get("WORKBENCH_CLUSTER", "")
ss.setdefault("nr_run_on", "cluster" if CLUSTER else "local")
ss.setdefault("nr_cluster", CLUSTER)
if ss.pop("new_run_clear_name", False):
    ss.nr_name = ""

import_panel.settle_choice("nr_data_source", "nr_data_name", take_import=True)
refit_defaults()
form = FormValues.from_state(ss)
data_value, data_problem = recipe_form.data_path(form)
dataset = (
    dataset_info.inspect_dataset(data_value)
    if data_value and not data_problem and not model_choices.awaits_download(data_value)
    else None
)
draft = recipe_form.build_recipe(form, dataset, root)
shown: set = set()  # problems already shown next to a field


def errors_for(*paths: str) -> None:
    """Show the draft's problems about these field paths (and below) that no earlier field showed."""
    new = [p for p in draft.under(*paths) if p not in shown]
    shown.update(new)
    show_problems(new)


def download_with_bar(item) -> None:
    """Download one missing checkpoint or dataset with a progress bar (sizes from the catalogue are approximate)."""
    bar = st.progress(0.0, text=f"Downloading {item.name}")

    def show(done: int, total: int | None) -> None:
        of = f" of about {total / 1e6:.0f} MB" if total else ""
        text = f"Downloading {item.name}: {done / 1e6:.1f} MB{of}"
        bar.progress(min(done / total, 0.99) if total else 0.0, text=text)

    path = model_choices.download(item, show)
    bar.progress(1.0, text=f"{item.name}: downloaded to {path}")


def _forget_trust() -> None:
    ss.nr_trust_pt = False


def number(label: str, key: str, path: str, **kwargs) -> None:
    # No min/max: Streamlit would silently keep the old value; the recipe's validation reports the range instead.
    st.number_input(label, key=key, **kwargs)
    errors_for(path)


def customization_fields(key: str) -> None:
    """The settings of one customization, three to a row (a field that only matters for another's value, hidden)."""
    fields = [s for s in recipe_form.specs(key) if s.when is None or ss.get(widget_key(key, s.when[0])) == s.when[1]]
    for start in range(0, len(fields), 3):
        columns = st.columns(3)
        for col, spec in zip(columns, fields[start : start + 3], strict=False):
            with col:
                setting_widget(spec, widget_key(key, spec.name))
                errors_for(f"customizations.{key}.{spec.name}")
    if key == "class_weights":
        st.page_link(
            "app_pages/class_weights.py", label="Preview the weights in the calculator", icon=":material/balance:"
        )


st.title("New run")
if ss.get("nr_prefilled"):  # set by the dashboard's Apply fix (app/dashboard_parts.py)
    st.info(ss.nr_prefilled, icon=":material/build:")
st.caption("Defaults train the bundled demo dataset from the demo base checkpoint: press Start to try it.")
form_col, recipe_col = st.columns([3, 2], gap="large")

with form_col:
    # ---- model ---------------------------------------------------------------------------------------------------
    st.subheader("Model")
    st.radio(
        "Model",
        ["demo", "pretrained", "builtin", "local"],
        format_func={
            "demo": "Demo base checkpoint",
            "pretrained": "Pretrained checkpoint (COCO)",
            "builtin": "Built-in architecture (from scratch)",
            "local": "Local .pt checkpoint",
        }.get,
        key="nr_model_source",
        horizontal=True,
        label_visibility="collapsed",
    )
    if ss.nr_model_source == "demo":
        st.caption(
            f"`{recipe_form.DEMO_MODEL.relative_to(recipe_form.REPO_ROOT)}`: a small detector trained for the demo."
        )
    elif ss.nr_model_source == "pretrained":
        if ss.nr_pretrained not in model_choices.names():
            ss.nr_pretrained = FormValues.pretrained
        st.selectbox("Checkpoint", model_choices.names(), key="nr_pretrained", format_func=model_choices.label)
        st.caption(
            f"Official ultralytics weights trained on COCO (80 classes), looked for in `{model_choices.weights_dir()}`;"
            " a dataset with other classes fine-tunes them with a new head."
        )
    elif ss.nr_model_source == "builtin":
        if ss.nr_builtin not in recipe_form.BUILTIN_MODELS:
            ss.nr_builtin = FormValues.builtin
        st.selectbox("Architecture (random initial weights)", recipe_form.BUILTIN_MODELS, key="nr_builtin")
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
        list(recipe_form.DATA_SOURCES),
        format_func=recipe_form.DATA_SOURCES.get,
        key="nr_data_source",
        horizontal=True,
        label_visibility="collapsed",
    )
    if ss.nr_data_source == "path":
        st.text_input("data.yaml", key="nr_data_path", placeholder="/path/to/data.yaml")
    elif ss.nr_data_source == "imported":
        import_panel.choose_imported("nr_data_name")
    errors_for("data")
    if dataset is not None and not dataset.error:
        parts = [f"**{dataset.nc} classes**: {', '.join(dataset.names)}"]
        for split, c in dataset.counts.items():
            parts.append(f"{split}: {c.n_images} images ({c.n_background} background), {sum(c.instances)} boxes")
        st.success(" · ".join(parts), icon=":material/check_circle:")
        for split, notes in dataset.notes.items():
            for note in notes:
                st.caption(f":orange[{split}]: {note}")
        with st.expander("Label counts per class"):
            counts_table = {"class": dataset.names}
            for split, c in dataset.counts.items():
                counts_table[f"{split} instances"] = c.instances
                counts_table[f"{split} images"] = c.images
            st.dataframe(pd.DataFrame(counts_table), hide_index=True, key="new_run_counts_table")
    import_panel.upload_section()

    # ---- training arguments --------------------------------------------------------------------------------------
    st.subheader("Training")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        number("Epochs", "nr_epochs", "train.epochs", step=1)
    with c2:
        number("Image size", "nr_imgsz", "train.imgsz", step=32)
    with c3:
        number("Batch", "nr_batch", "train.batch", step=1, help="-1: AutoBatch (GPU only)")
    with c4:
        gpus = devices.list_gpus()
        devices = devices.device_options(gpus)
        if ss.nr_device not in devices:
            ss.nr_device = "auto"
        # Short choices: the box shows 71 px of text at a 1400 px window; the GPU names are in the help.
        gpu_help = "auto: a GPU if there is one, else the CPU." + "".join(f"  \nGPU {g}" for g in gpus)
        st.selectbox(
            "Device", devices, key="nr_device", help=gpu_help,
            format_func=lambda d: d if d in ("auto", "cpu") else f"GPUs {d}" if "," in d else f"GPU {d}",
        )  # fmt: skip
        errors_for("train.device")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        if ss.nr_optimizer not in recipe_form.OPTIMIZERS:
            ss.nr_optimizer = "auto"
        st.selectbox("Optimizer", recipe_form.OPTIMIZERS, key="nr_optimizer", help="auto picks the optimizer and lr0")
        errors_for("train.optimizer")
    with c2:
        # %.4g as the customizations' numbers: "%.5f" printed 0.01000, cut to "0.0100" in a quarter of the form
        number("lr0", "nr_lr0", "train.lr0", step=0.001, format="%.4g")
        if ss.nr_optimizer == "auto":  # ultralytics' build_optimizer: 'optimizer=auto' found, ignoring 'lr0=...'
            st.caption(
                ":orange[Ignored with optimizer auto]: ultralytics picks AdamW at lr 0.01/(4 + classes) "
                "(MuSGD at 0.01 past 10,000 iterations). Choose an optimizer to use this lr0.",
            )
    with c3:
        number("Seed", "nr_seed", "train.seed", step=1)
    with c4:
        number(
            "Patience",
            "nr_patience",
            "train.patience",
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
    st.text_input("Run name (optional)", key="nr_name", placeholder="generated from the dataset, model and time")
    errors_for("name")

    # ---- customizations ------------------------------------------------------------------------------------------
    st.subheader("Customizations")
    for row in table.rows():
        with st.container(border=True):
            st.toggle(row.title, key=toggle_key(row.key))
            st.caption(row.help)
            if ss[toggle_key(row.key)]:
                customization_fields(row.key)
            errors_for(f"customizations.{row.key}")
    errors_for("customizations")

with recipe_col:
    st.subheader("Recipe")
    st.code(draft.yaml, language="yaml", wrap_lines=True)  # a long data path wraps instead of being cut at the edge
    st.download_button(
        "Download recipe.yaml",
        draft.yaml,
        file_name=f"{recipe_form.recipe_stem(form)}.yaml",
        mime="application/x-yaml",
        key="new_run_download",
        icon=":material/download:",
    )
    show_problems([p for p in draft.problems if p not in shown])  # problems about fields without a widget
    if draft.problems:
        n = len(draft.problems)
        st.warning(f"Start is refused until {'this problem is' if n == 1 else f'these {n} problems are'} fixed.")
    st.radio(
        "Run on", ["local", "cluster"], key="nr_run_on", horizontal=True,
        format_func={"local": "this machine", "cluster": "cluster (Ray job)"}.get,
    )  # fmt: skip
    cluster = None
    if ss.nr_run_on == "cluster":
        st.text_input("Ray job API address", key="nr_cluster", placeholder="http://HEAD:8265")
        ss.setdefault("nr_cpus", default_cpus())
        st.number_input("CPUs", min_value=1, step=1, key="nr_cpus",
                        help="CPUs the run's Ray job reserves; torch trains with that many threads")  # fmt: skip
        st.caption(f"The runs root `{root}` must be on storage the cluster's nodes see at the same path.")
        cluster = ss.nr_cluster.strip() or None
    fetch = model_choices.to_download(draft.recipe) if draft.ok else []
    if model_choices.server_allows_downloads():
        st.toggle(
            "Allow download", key="nr_allow_download",
            help="Download an official checkpoint or ultralytics dataset that is not on disk, when Start is pressed",
        )  # fmt: skip
    if st.button("Start", type="primary", key="new_run_start", disabled=not draft.ok, icon=":material/play_arrow:"):
        if ss.nr_run_on == "cluster" and not cluster:
            st.error(
                "Run on cluster: enter the Ray job API address (the head's dashboard port, e.g. http://HEAD:8265)."
            )
        elif draft.ok:  # re-checked: a disabled button cannot be clicked in a browser, but state can change under it
            try:
                for item in fetch:  # before the run exists, so a failed download leaves nothing behind
                    download_with_bar(item)
                cpus = int(ss.nr_cpus) if cluster else None
                run_dir = recipe_form.launch(draft, root, recipe_form.recipe_stem(form), cluster=cluster, cpus=cpus)
            except WorkbenchError as e:
                st.error(str(e))
            else:
                record_done(run_dir, "start")
                ss.selected_run = run_dir.name
                ss.pop("nr_prefilled", None)
                ss.new_run_clear_name = True  # a run name can be used once: cleared when the page is shown next
                st.switch_page("app_pages/dashboard.py", query_params={"run": run_dir.name})
