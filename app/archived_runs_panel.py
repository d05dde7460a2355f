"""The Runs page's "Show archived" list: runs moved to ``<runs root>/.archive`` by Archive, each with who archived
it and a Restore button (trainers/runs/archive.py)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import who
from trainers.errors import RunError
from trainers.runs.actions import last_action_line
from trainers.runs.archive import archived_runs, restore_run
from trainers.runs.status import read_status


def _restore(path: str) -> None:
    try:
        restored = restore_run(path, who.current_user())
        st.session_state.runs_flash = ("success", f"Restored {restored.name}.")
    except RunError as e:
        st.session_state.runs_flash = ("error", str(e))


def show(root: Path) -> None:
    """A toggle, and under it every archived run with Restore."""
    if not st.toggle("Show archived", key="runs_show_archived"):
        return
    archived = archived_runs(root)
    if not archived:
        st.caption("No archived runs.")
    for path in archived:
        name_col, restore_col = st.columns([6, 1])
        name_col.markdown(f"**{path.name}**")
        try:
            line = last_action_line(read_status(path))
        except RunError:
            line = None
        if line:
            name_col.caption(line)
        restore_col.button("Restore", key=f"runs_restore_{path.name}", on_click=_restore, args=(str(path),))
