"""The dashboard's Predictions tab (being built: issue 19 item 2)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st


def predictions_tab(run_dir: Path, name: str) -> None:
    st.caption("Predictions: not built yet.")
