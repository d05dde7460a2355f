"""Streamlit's own OIDC sign-in for organisations: when ``.streamlit/secrets.toml`` has an ``[auth]`` section, no page
logic runs until ``st.user.is_logged_in`` (the entry script calls :func:`require_sign_in` before anything else).

Without ``[auth]`` nothing changes here: on loopback the UI is open as before, and beyond loopback ``workbench ui``
puts its token sign-in in front of Streamlit (trainers/cli/ui_gate.py).
"""

from __future__ import annotations

import streamlit as st


def oidc_configured() -> bool:
    """Whether the app's secrets hold an ``[auth]`` section (no secrets file at all: no)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - Streamlit raises its own error types when no secrets file exists
        return False


def require_sign_in() -> None:
    """With OIDC configured and nobody signed in: only a sign-in button, then stop the script."""
    if not oidc_configured() or st.user.is_logged_in:
        return
    st.title("Trainer Workbench")
    st.write("Sign in to continue.")
    st.button("Sign in", key="oidc_sign_in", on_click=st.login, type="primary")
    st.stop()
