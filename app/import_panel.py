"""Imported datasets on the New run and Class weights pages: a select box of the datasets folder's datasets, and an
upload that imports a zip export (in a ``workbench import`` subprocess, :mod:`app.dataset_upload`) with a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app import dataset_upload
from trainers.datasets.datasets_dir import datasets_root, default_dataset_name, list_datasets
from trainers.errors import WorkbenchError

JUST_IMPORTED = "import_just_done"  # session key: {"name", "text"} of the import the last run finished
UPLOAD_LIMIT_MB = 200  # Streamlit's default server.maxUploadSize


def current_datasets_root() -> Path | None:
    """The datasets folder (``$WORKBENCH_DATASETS_DIR``, set by ``workbench ui --datasets-dir``, or ./datasets);
    None (with an error shown) when it is unusable."""
    try:
        return datasets_root()
    except WorkbenchError as e:
        st.error(str(e), icon=":material/error:")
        return None


def settle_choice(source_key: str, name_key: str, *, take_import: bool = False) -> None:
    """Before a page reads its form: keep the chosen imported dataset one that exists (default: the first), and with
    ``take_import`` choose the dataset an upload just imported."""
    ss = st.session_state
    done = ss.get(JUST_IMPORTED)
    if take_import and done:
        ss[source_key], ss[name_key] = "imported", done["name"]
    try:
        names = list_datasets(datasets_root())
    except WorkbenchError:  # choose_imported shows it
        names = []
    if ss.get(name_key) not in names:
        ss[name_key] = names[0] if names else ""


def choose_imported(key: str, on_change: Callable[[], None] | None = None) -> None:
    """A select box of the imported datasets; the chosen name is ``st.session_state[key]`` (see settle_choice)."""
    root = current_datasets_root()
    names = list_datasets(root) if root is not None else []
    if not names:
        if root is not None:
            st.info(f"No datasets in `{root}` yet: import a zip export, or run `workbench import ZIP`.")
        return
    st.selectbox("Imported dataset", names, key=key, on_change=on_change, help=f"The datasets in `{root}`")


def upload_section() -> None:
    """An expander to upload a zip export and import it into the datasets folder, with a progress bar."""
    root = current_datasets_root()
    ss = st.session_state
    done = ss.pop(JUST_IMPORTED, None)  # shown once, after the rerun that chose it
    with st.expander("Import a dataset (zip)", expanded=bool(done), icon=":material/upload:"):
        if done:
            st.success(f"Imported **{done['name']}** and chose it above.", icon=":material/check_circle:")
            st.text(done["text"])  # not st.code: the page's code block is the recipe
        upload = st.file_uploader(
            "Export zip: YOLO (Ultralytics, Roboflow) or COCO JSON",
            type=["zip"],
            key="import_upload",
            help=f"Up to {UPLOAD_LIMIT_MB} MB here; a larger export: `workbench import ZIP` on the server.",
        )
        st.text_input(
            "Dataset name",
            key="import_name",
            placeholder=default_dataset_name(upload.name) if upload is not None else "the zip's name",
        )
        clicked = st.button(
            "Import", key="import_start", icon=":material/upload:", disabled=upload is None or root is None
        )
        if clicked and upload is not None and root is not None:
            bar = st.progress(0.0, text="starting the import")
            outcome = dataset_upload.import_upload(
                upload.name,
                upload.getbuffer(),
                root,
                name=ss.get("import_name", "").strip() or None,
                on_progress=lambda fraction, message: bar.progress(fraction, text=message),
            )
            if outcome.error:
                bar.empty()
                st.error(outcome.error, icon=":material/error:")
            else:
                ss[JUST_IMPORTED] = {"name": outcome.name, "text": import_text(outcome.result)}
                st.rerun()


def import_text(result: dict) -> str:
    """The counts of an import (its ``--json`` document) as a few lines."""
    lines = [f"{result['name']}: {result['layout'].upper()} export, {len(result['names'])} classes"]
    for split, c in result["splits"].items():
        lines.append(
            f"{split}: {c['n_images']} images ({c['n_background']} background), {sum(c['instances'])} boxes: "
            + ", ".join(f"{n} {k}" for n, k in zip(result["names"], c["instances"], strict=True))
        )
        lines += [f"  {note}" for note in c["notes"]]
    return "\n".join(lines)
