"""Compare: what differs between the selected runs' recipes, where each ended up, a metric and a class overlaid, and
the per-class F1 of every run as one class x run heatmap; the train loss, mAP50-95 and LR always overlaid, and one
sample image as each run predicted it, side by side (app/compare_overlays.py)."""

from __future__ import annotations

import streamlit as st

from app import charts, class_charts, compare_overlays, compare_views, run_views
from app.dashboard_parts import HEATMAP_BOX_PX
from app.state import current_runs_root, init_state
from trainers.errors import WorkbenchError
from trainers.runs.compare import Comparison, compare_runs

init_state()
root = current_runs_root()
ss = st.session_state


@st.cache_data(max_entries=64, show_spinner=False)
def comparison(paths: tuple[str, ...], version: tuple) -> Comparison:
    """:func:`compare_runs` of the runs, computed again only when a file it reads changed (``version``)."""
    return compare_runs(list(paths))


st.title("Compare runs")
runs = run_views.runs_with_status(root)
names = [name for name, _ in runs]
if not names:
    st.info("No runs yet. Start one on the New run page.")
    st.page_link("app_pages/new_run.py", label="New run", icon=":material/add_circle:")
    st.stop()

if "cmp_runs" not in ss:
    ss.cmp_runs = names[:2]
ss.cmp_runs = [r for r in ss.cmp_runs if r in names]  # runs deleted since
st.multiselect("Runs", names, key="cmp_runs", placeholder="Choose runs to compare")
if not ss.cmp_runs:
    st.info("Choose at least one run.")
    st.stop()

paths = tuple(str(root / name) for name in ss.cmp_runs)
try:
    compared = comparison(paths, compare_views.files_version(paths))
except WorkbenchError as e:  # a run deleted or unreadable between the listing and here
    st.error(str(e))
    st.stop()

st.subheader("What differs")
if len(ss.cmp_runs) < 2:
    st.info("Choose a second run to see which recipe settings differ.")
elif not compared.diff:
    st.info("Nothing differs: these runs have the same recipe settings.")
else:
    n = len(compared.diff)
    st.caption(f"{n} recipe setting{'s' * (n != 1)} differ{'s' * (n == 1)}; off: the customization is off.")
    st.table(compare_views.diff_table(compared))

st.subheader("Final metrics")
metric_format = st.column_config.NumberColumn(format="%.4f")
st.dataframe(
    compare_views.results_table(compared), hide_index=True, key="cmp_summary",
    column_config=dict.fromkeys((*compare_views.RESULT_METRICS, "best value"), metric_format),
)  # fmt: skip
best, why = compared.winners
st.caption(
    (f"{compare_views.WINNER_MARK} winner: {why}. " if best else f"{why[0].upper()}{why[1:]}. ")
    + "The metrics are those of the weights each run kept: the final evaluation of best.pt when the run has one."
)

logs = {name: run_views.run_events(root / name).poll() for name in ss.cmp_runs}
compare_overlays.overlay_section(logs)  # loss, mAP50-95 and LR overlaid, drawn without choosing
metrics = list(charts.COMPARE_METRICS)
for log in logs.values():
    metrics += [k for k in log.metric_keys() if k not in charts.DETECTION_METRICS and k not in metrics]
if ss.get("cmp_metric") not in metrics:
    ss.cmp_metric = metrics[0]
classes = list(dict.fromkeys(n for log in logs.values() for n in log.per_class("f1")))
if classes and ss.get("cmp_class") not in classes:
    ss.cmp_class = classes[0]

a, b = st.columns(2)
with a:
    st.selectbox("Metric", metrics, key="cmp_metric")
    st.plotly_chart(charts.compare_figure(logs, ss.cmp_metric), key="chart_compare_metric", width="stretch")
    key = charts.COMPARE_METRICS.get(ss.cmp_metric, ss.cmp_metric)
    if hidden := compare_views.identical_curves(compare_views.metric_curves(logs, key), ss.cmp_metric):
        st.caption(hidden)
with b:
    if classes:
        st.selectbox("Class", classes, key="cmp_class")
        st.plotly_chart(class_charts.compare_f1_figure(logs, ss.cmp_class), key="chart_compare_f1", width="stretch")
        f1 = {run: (log.epoch_numbers, log.per_class("f1").get(ss.cmp_class, [])) for run, log in logs.items()}
        if hidden := compare_views.identical_curves(f1, f"F1 of '{ss.cmp_class}'"):
            st.caption(hidden)
    else:
        st.info("None of these runs has per-class F1 yet (turn on the per_class_f1 customization).")

if classes:
    # one fixed-height row per class: 80-365 classes scroll inside the box instead of stretching the page
    with st.container(height=min(HEATMAP_BOX_PX, class_charts.heatmap_height(len(classes)) + 30), border=False):
        st.plotly_chart(compare_views.classes_figure(logs), key="chart_compare_classes", width="stretch")

compare_overlays.same_image_section(root, ss.cmp_runs)
