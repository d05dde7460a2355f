"""Session-state defaults shared by the pages, and keeping form values when the user switches pages.

Every page calls :func:`init_state` first, so a page also renders on its own (``AppTest.from_file`` on a page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from app.recipe_form import FormValues, customization_state, specs, toggle_key, widget_key
from trainers import customizations as table
from trainers.errors import Problem, WorkbenchError
from trainers.metrics import MAP50_95
from trainers.runs.folder import runs_root

# Class-weight calculator widgets (key -> default): its scheme fields are the New run form's class_weights widgets
# (``nr_class_weights__*``) under the ``cw_`` prefix, so their defaults come from the same settings model.
CALCULATOR_DEFAULTS: dict[str, Any] = {
    "cw_data_source": "demo",
    "cw_data_path": "",
    "cw_data_name": "",
    "cw_split": "train",
    "cw_log": False,
    **{
        "cw_" + k.removeprefix("nr_class_weights__"): v
        for k, v in customization_state(FormValues()).items()
        if k.startswith("nr_class_weights__")
    },
}
OTHER_DEFAULTS: dict[str, Any] = {
    "selected_run": None,  # the run the dashboard opens (also in the ?run= query parameter)
    "dash_lr_log": False,
    "dash_gn_log": False,
    "dash_live": True,
    "cmp_metric": MAP50_95.label,
}
# Value widgets whose state must survive page switches (Streamlit drops the state of widgets it did not render).
# Buttons, download buttons and data editors cannot be written to, so they never use these prefixes/keys.
PERSISTENT_PREFIXES = ("nr_", "cw_")
PERSISTENT_KEYS = ("dash_run", "dash_lr_log", "dash_gn_log", "dash_live", "cmp_runs", "cmp_metric", "cmp_class")


def defaults() -> dict[str, Any]:
    return {**FormValues().to_state(), **CALCULATOR_DEFAULTS, **OTHER_DEFAULTS}


def init_state() -> None:
    """Set every default that is not set yet (idempotent, cheap)."""
    for key, value in defaults().items():
        st.session_state.setdefault(key, value)


def refit_defaults() -> None:
    """Keep the run-dependent defaults of the customizations still switched off in step with the New run form (frozen
    epochs follow the epochs), so one switched on starts at a value that fits; once on, its widgets are the user's."""
    ss = st.session_state
    form = FormValues.from_state(ss)
    for key in table.keys():
        if not ss.get(toggle_key(key)):
            for name, value in table.row(key).settings.run_defaults({"epochs": form.epochs}).items():
                spec = next(s for s in specs(key) if s.name == name)
                ss[widget_key(key, name)], none = spec.to_widget(value)
                if spec.none_box:
                    ss[widget_key(key, f"{name}__none")] = none


def default_cpus() -> int:
    """The CPUs a cluster run's Ray job asks for unless changed on the page: the CLI's default
    (``$WORKBENCH_CLUSTER_CPUS``, else 1), as a whole number."""
    from trainers.runs.placement import cpus_request

    try:
        return max(1, round(cpus_request()))
    except WorkbenchError:  # a bad $WORKBENCH_CLUSTER_CPUS: the CLI says so; the page starts at 1
        return 1


def keep_widget_state() -> None:
    """Re-save form values so that Streamlit does not drop them while their page is not shown.

    Streamlit's documented way: a key written by the script is no longer tied to a widget that was not rendered.
    """
    for key in list(st.session_state.keys()):
        if key.startswith(PERSISTENT_PREFIXES) or key in PERSISTENT_KEYS:
            st.session_state[key] = st.session_state[key]


def current_runs_root() -> Path:
    """The runs root (``$WORKBENCH_RUNS_DIR`` or ``./runs``); stops the page with an error if it is unusable."""
    try:
        return runs_root()
    except WorkbenchError as e:
        st.error(str(e))
        st.stop()
        raise  # unreachable: st.stop() raises


def show_problems(problems: list[Problem]) -> None:
    """Inline errors under a field: what is wrong, and the fix on its own line."""
    for p in problems:
        st.error(p.message + (f"  \n**Fix:** {p.fix}" if p.fix else ""), icon=":material/error:")
