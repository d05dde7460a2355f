"""The dashboard's Confusions, PR curves and Run files tabs (being built: issue 19 item 2)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st


def confusions_tab(run_dir: Path, name: str) -> None:
    st.caption("Confusions: not built yet.")


def pr_tab(run_dir: Path, name: str) -> None:
    st.caption("PR curves: not built yet.")


def files_tab(run_dir: Path, name: str) -> None:
    st.caption("Run files: not built yet.")
