"""The dashboard's evidence: what the model predicted and confused at each validation (``<run>/evidence/``, read
through :class:`trainers.telemetry.evidence.Evidence`), in four tabs: Predictions, Confusions, PR curves, Run files."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import confusion_views, prediction_views


def evidence_section(run_dir: Path, name: str) -> None:
    """The four tabs under the per-class charts."""
    st.subheader("What the model sees")
    predictions, confusions, curves, files = st.tabs(["Predictions", "Confusions", "PR curves", "Run files"])
    with predictions:
        prediction_views.predictions_tab(run_dir, name)
    with confusions:
        confusion_views.confusions_tab(run_dir, name)
    with curves:
        confusion_views.pr_tab(run_dir, name)
    with files:
        confusion_views.files_tab(run_dir, name)
