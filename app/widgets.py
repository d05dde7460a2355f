"""Streamlit widgets shared by the pages: a customization setting drawn from its settings field spec."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.settings_form import FieldSpec


def setting_widget(spec: FieldSpec, key: str, on_change: Callable[[], None] | None = None) -> None:
    """Draw one settings field under widget key ``key`` (and ``<key>__none`` for its null checkbox).

    Number inputs get no min/max on purpose: Streamlit would silently keep the old value for an out-of-range entry;
    the recipe's validation reports it under the field instead.
    """
    ss = st.session_state
    none_key = f"{key}__none"
    is_none = spec.none_box and bool(ss.get(none_key))
    common = {"key": key, "help": spec.help or None, "on_change": on_change}
    if spec.kind == "select":
        if ss.get(key) not in spec.choices:
            ss[key] = spec.default
        st.selectbox(spec.label, spec.choices, format_func=spec.label_of, **common)
    elif spec.kind == "checkbox":
        st.checkbox(spec.label, **common)
    elif spec.kind in ("number", "integer"):
        fmt = {"format": "%.4g"} if spec.kind == "number" else {"step": 1}
        st.number_input(spec.label, disabled=is_none, **fmt, **common)
    else:  # text, float_list, layers
        st.text_input(spec.label, **common)
    if spec.none_box:
        st.checkbox(spec.none_label.capitalize(), key=none_key, on_change=on_change)
