"""Who is using the UI: the name given at sign-in, which ``workbench ui``'s proxy passes as ``X-Workbench-User``
(trainers/cli/ui_gate.py; a browser cannot set it itself). None on loopback, where there is no sign-in."""

from __future__ import annotations

import contextlib
import os
from urllib.parse import unquote

import streamlit as st

from trainers.errors import RunError
from trainers.runs.actions import record_action

USER_HEADER = "X-Workbench-User"  # trainers.cli.ui_gate.USER_HEADER (the app does not import the CLI)


def current_user() -> str | None:
    """The signed-in person's name, or None."""
    try:
        value = st.context.headers.get(USER_HEADER)
    except Exception:  # noqa: BLE001 - no request context (a bare script run): nobody
        return None
    return unquote(value) if value else None


def record_done(run_dir: str | os.PathLike[str], action: str) -> None:
    """Record in the run's status.json that the current user did ``action`` (trainers.runs.actions); a run folder
    that cannot take it (gone, unreadable status) keeps the action done, unrecorded."""
    with contextlib.suppress(RunError, OSError):
        record_action(run_dir, action, current_user())
