"""The Runs page's Export button: a popover to export a run's model (ONNX, TorchScript, OpenVINO) in the background
(:mod:`app.model_export_jobs`), its progress and one-line result, and a download per verified export.

Light at render: it lists the run's checkpoints, its export records (small JSON files) and its export processes;
nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import functools
import io
import time
import zipfile
from pathlib import Path

import streamlit as st

from app import model_export_jobs
from app.run_views import RunRow, format_duration
from trainers.errors import WorkbenchError
from trainers.run_files import MODEL_EXPORT_DIR
from trainers.runs.model_export import FORMATS, INSTALL_HINT, WEIGHTS, missing_packages, read_records
from trainers.statuses import RunStatus

MISSING_RECHECK_S = 30.0  # how long the answer "which export packages are missing" is reused


def missing(fmt: str) -> list[str]:
    """:func:`missing_packages`, asked again at most every 30 s: it reads package metadata, ~20 ms for ONNX, too slow
    for every row at every refresh of the page (an install shows within 30 s)."""
    return _missing_at(fmt, int(time.monotonic() // MISSING_RECHECK_S))


@functools.lru_cache(maxsize=16)
def _missing_at(fmt: str, _period: int) -> tuple[str, ...]:
    return tuple(missing_packages(fmt))


def export_popover(container, row: RunRow, root: Path) -> None:
    """The Export popover of ``row`` in ``container`` (the row's actions), and a caption there while one runs."""
    jobs = model_export_jobs.jobs(root, row.name)
    running = [j for j in jobs if j.state == RunStatus.RUNNING]
    with container.popover("Export", icon=":material/deployed_code:", help="the model as ONNX, TorchScript, OpenVINO"):
        _controls(row, root)
        for job in jobs:
            _job_line(job)
        _downloads(row)
    for job in running:
        container.caption(f"exporting {job.weights}.pt to {FORMATS[job.format].label}…")


def _controls(row: RunRow, root: Path) -> None:
    weights = [w for w, rel in WEIGHTS.items() if (Path(row.path) / rel).is_file()]
    if not weights:
        st.caption("No checkpoint yet: a run saves best.pt and last.pt after its first epoch.")
        return
    fmt = st.radio(
        "Format", list(FORMATS), format_func=lambda f: FORMATS[f].label, key=f"runs_export_format_{row.name}",
        horizontal=True,
    )  # fmt: skip
    st.radio(
        "Weights", weights, format_func=lambda w: f"{w}.pt", key=f"runs_export_weights_{row.name}", horizontal=True
    )
    lacking = missing(fmt)
    if lacking:
        st.caption(f":orange[{FORMATS[fmt].label} needs {'; '.join(lacking)}: `{INSTALL_HINT}`]")
    st.button(
        "Export", key=f"runs_export_{row.name}", type="primary", on_click=_start, args=(root, row.path, row.name),
        disabled=bool(lacking), icon=":material/deployed_code:",
        help="exported on the CPU, then run on up to 16 val images and compared box by box with the .pt",
    )  # fmt: skip


def _start(root: Path, path: str, name: str) -> None:
    """Button callback: start the export process with the chosen format and weights."""
    ss = st.session_state
    fmt, weights = ss.get(f"runs_export_format_{name}"), ss.get(f"runs_export_weights_{name}")
    try:
        model_export_jobs.start_export(root, path, fmt, weights)
        ss.runs_flash = ("success", f"Exporting {weights}.pt of {name} to {FORMATS[fmt].label} in the background.")
    except WorkbenchError as e:
        ss.runs_flash = ("error", str(e))


def _job_line(job: model_export_jobs.ExportJob) -> None:
    what = f"{job.weights}.pt → {FORMATS[job.format].label}"
    if job.state == RunStatus.RUNNING:
        st.info(f"{what}: exporting and verifying… ({format_duration(time.time() - job.started)})", icon="⏳")
    elif job.state == RunStatus.FAILED:
        st.error(f"{what}: {job.message}", icon=":material/error:")
    elif job.passed:
        st.success(job.message, icon=":material/check_circle:")
    else:
        st.warning(job.message, icon=":material/warning:")


def _downloads(row: RunRow) -> None:
    for record in read_records(Path(row.path) / MODEL_EXPORT_DIR):
        model = Path(record["path"])
        folder = model.is_dir()  # OpenVINO: a folder, downloaded as a zip
        mark = "verified" if record.get("passed") else "outside the tolerance"
        st.download_button(
            f"{model.name}{'.zip' if folder else ''} ({mark})",
            (lambda m=model: _zip(m)) if folder else (lambda m=model: m.read_bytes()),
            file_name=f"{row.name}-{model.name}{'.zip' if folder else ''}",
            mime="application/zip" if folder else "application/octet-stream",
            key=f"runs_export_download_{row.name}_{model.name}", icon=":material/download:", on_click="ignore",
        )  # fmt: skip


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    return buffer.getvalue()
