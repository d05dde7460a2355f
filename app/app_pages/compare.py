"""Compare: overlay a metric and the per-class F1 of selected runs, with a summary table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, class_charts, run_views
from app.state import current_runs_root, init_state
from trainers.telemetry.run_log import RunLog

init_state()
root = current_runs_root()
ss = st.session_state

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

logs = {name: run_views.run_events(root / name).poll() for name in ss.cmp_runs}
statuses = dict(runs)

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
with b:
    if classes:
        st.selectbox("Class", classes, key="cmp_class")
        st.plotly_chart(class_charts.compare_f1_figure(logs, ss.cmp_class), key="chart_compare_f1", width="stretch")
    else:
        st.info("None of these runs has per-class F1 yet (turn on the per_class_f1 customization).")


def _last(log: RunLog, key: str) -> float | None:
    values = [v for v in log.epoch_metric(key) if v is not None]
    return round(values[-1], 4) if values else None


def _last_f1(log: RunLog, class_name: str) -> float | None:
    values = [v for v in log.per_class("f1").get(class_name, []) if v is not None]
    return round(values[-1], 4) if values else None


summary = pd.DataFrame(
    [
        {
            "run": name,
            "status": statuses.get(name, "?"),
            "epochs": len(log.epochs),
            "best epoch": log.best_epoch,
            "mAP50-95": _last(log, "metrics/mAP50-95(B)"),
            "mAP50": _last(log, "metrics/mAP50(B)"),
            "mean F1": _last(log, "mean_f1"),
            **{f"F1 {c}": _last_f1(log, c) for c in classes},
        }
        for name, log in logs.items()
    ]
)
st.subheader("Last epoch")
st.dataframe(summary, hide_index=True, key="cmp_summary")
