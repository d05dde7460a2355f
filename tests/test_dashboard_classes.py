"""The dashboard's per-class picker and table on an 80-class run (AppTest; issue 18 item 5).

The picker's default is the classes shown, at every refresh: a browser that lost the picker's value (a refresh cut
short on a loaded server, tests/test_browser_live_classes.py) shows the default and sends it back, so a default of []
emptied the F1 chart ("0 of 80 classes and the mean") while the run was followed live.
"""

from __future__ import annotations

import random

from tests.test_app_pages import open_page
from tests.test_browser_live_classes import RUN, SHOWN, emit, f1_epoch, live_run
from trainers.telemetry import per_class


def picker(at):
    """The picker's value and the classes its default names (what a browser without its value shows)."""
    ms = at.multiselect(key=f"dash_classes_{RUN}")
    return list(ms.value), [ms.options[i] for i in ms.proto.default]


def test_the_picker_default_is_the_classes_shown_at_every_refresh(runs_root):
    run, rng = live_run(runs_root), random.Random(1)
    for n in (1, 2):
        emit(run, f1_epoch(n, rng))
    at = open_page("dashboard", query={"run": RUN})
    value, default = picker(at)
    assert len(value) == SHOWN and default == value
    for n in (3, 4):  # new epochs reorder the classes (worst F1 first): what is shown stays
        emit(run, f1_epoch(n, rng))
        at.run()
        assert picker(at) == (value, value)

    mine = value[:3] + [c for c in at.multiselect(key=f"dash_classes_{RUN}").options if c not in value][:2]
    at.multiselect(key=f"dash_classes_{RUN}").set_value(mine).run()
    emit(run, f1_epoch(5, rng))
    at.run()
    assert picker(at) == (mine, mine)
    assert "5 of 80 classes" in _f1_title(at)

    at.switch_page("app_pages/runs.py").run()  # the picker is not drawn there: Streamlit drops its widget state
    at.switch_page("app_pages/dashboard.py").run()
    assert picker(at) == (mine, mine)  # the choice is kept under a key of its own


def _f1_title(at) -> str:
    import json

    for el in at.get("plotly_chart"):
        if el.proto.id.endswith("chart_f1"):
            return json.loads(el.proto.spec)["layout"]["title"]["text"]
    raise AssertionError("no F1 chart")


def test_the_table_says_over_how_many_epochs_f1_changed(runs_root):
    run, rng = live_run(runs_root), random.Random(2)
    for n in range(1, per_class.CHANGE_EPOCHS + 3):
        emit(run, f1_epoch(n, rng))
        at = open_page("dashboard", query={"run": RUN})
        (table,) = at.dataframe
        columns = list(table.value.columns)
        span = min(per_class.CHANGE_EPOCHS, n - 1)  # epoch n minus epoch n - span
        want = f"F1 change ({span} epoch{'s' * (span != 1)})" if span else "F1 change"
        assert want in columns, (n, columns)
