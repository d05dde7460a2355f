"""Run dashboard: live charts of one run while it trains, from its telemetry (read incrementally, only new data).

Per-class F1 (the mean and up to 20 chosen classes, a sorted class x epoch heatmap that scrolls, a per-class table),
mAP50 / mAP50-95 / P / R, train and val losses, the LR of each named parameter group and the gradient norm per step
(pre-clip total, clip threshold, share clipped, per-group norms), best-epoch and unfreeze markers and frozen epochs
shaded, system readings, a failure banner with the error, the console tail, stop/resume/start again and downloads.
The run comes from ``?run=<name>`` (so a browser refresh keeps it) or the picker. Sections: app/dashboard_parts.py.
"""

from __future__ import annotations

import streamlit as st

from app import dashboard_parts, evidence_section, run_notes_panel, run_views
from app.live_refresh import live_refresh
from app.state import current_runs_root, init_state
from trainers.errors import WorkbenchError
from trainers.runs import launcher
from trainers.runs.facts import run_facts
from trainers.runs.folder import resume_refusal
from trainers.statuses import ACTIVE_STATUSES, RunStatus

REFRESH_S = 2.0

init_state()
root = current_runs_root()
ss = st.session_state

st.title("Run dashboard")
names = [name for name, _ in run_views.runs_with_status(root)]
if not names:
    st.info("No runs yet. Start one on the New run page.")
    st.page_link("app_pages/new_run.py", label="New run", icon=":material/add_circle:")
    st.stop()

# The ?run= query parameter wins when it changes (a link from the Runs page, a refreshed or shared URL).
wanted = st.query_params.get("run")
if wanted in names and ss.get("dash_run_from_url") != wanted:
    ss.dash_run = wanted
    ss.dash_run_from_url = wanted
if ss.get("dash_run") not in names:
    ss.dash_run = ss.selected_run if ss.get("selected_run") in names else names[0]

top = st.columns([4, 1.4, 1.4, 1.4])
top[0].selectbox("Run", names, key="dash_run")
top[1].toggle(
    "Live refresh", key="dash_live", help=f"re-read new telemetry every {REFRESH_S:g} s while the run is active"
)
top[2].toggle("Log LR", key="dash_lr_log", help="log-scale y axis of the learning-rate chart")
top[3].toggle("Log grad norm", key="dash_gn_log", help="log-scale y axis of the gradient-norm chart")
name = ss.dash_run
dashboard_parts.forget_figures(f"{name}/")
ss.selected_run = name
st.query_params["run"] = name
ss.dash_run_from_url = name
run_dir = root / name


def _act(action: str) -> None:
    try:
        if action == "stop":
            launcher.stop_run(run_dir)
            ss.dash_flash = ("success", "Stop requested: the run saves and ends at the next batch.")
        elif action == "again":
            new = launcher.start_again(run_dir)
            ss.dash_run = ss.selected_run = new.name
            ss.dash_flash = ("success", f"Started {new.name} with the recipe of {run_dir.name}.")
        else:
            launcher.resume_run_detached(run_dir)
            ss.dash_flash = ("success", "Resuming from the last checkpoint.")
    except WorkbenchError as e:
        ss.dash_flash = ("error", str(e))


def _status() -> dict:
    try:
        return launcher.refresh_status(run_dir)
    except WorkbenchError as e:
        return {"status": "unknown", "error": str(e)}


was_active = _status().get("status") in ACTIVE_STATUSES


@st.fragment
def dashboard() -> None:
    st_now = _status()
    state = str(st_now.get("status", "unknown"))
    if (state in ACTIVE_STATUSES) != was_active:
        st.rerun()  # the run ended (or was resumed): a full rerun renders it and starts or stops the refresh
    reader = run_views.run_events(run_dir)
    log = reader.poll()

    # ---- header: status, progress, controls -------------------------------------------------------------------
    found, with_dataset = dashboard_parts.run_findings(log, reader, name, run_dir)
    now = run_facts(st_now, log, found)  # what `workbench runs --json` lists for the run, from the same function
    cols = st.columns([1.0, 1.5, 1.5, 1.4, 1.2, 1.3, 1.3])  # epoch, ETA: room for "307/350" (test_browser_layout)
    cols[0].markdown("**Status**")
    cols[0].badge(state, color=RunStatus.colour_of(state))
    epochs, best_epoch, best = now.epochs, now.best_epoch, now.best_metric or {}
    cols[1].metric("Epoch", f"{now.epoch}/{epochs or '?'}")
    cols[2].metric("ETA", run_views.format_duration(now.eta_s))
    cols[3].metric(
        f"Best {run_views.metric_label(best.get('name'))}".strip(),
        f"{best['value']:.3f}" if isinstance(best.get("value"), (int, float)) else "-",
        help=f"{run_views.format_metric(best)}, epoch {best_epoch} (best.pt)" if best_epoch else None,
    )
    cols[4].metric("Steps", run_views.format_count(now.steps), help=f"{now.steps:,} optimizer steps")
    cols[5].metric("Clipped", f"{now.clipped_share:.1%}" if now.clipped_share is not None else "-")
    with cols[6]:
        if state in ACTIVE_STATUSES:
            st.button("Stop", key="run_stop", on_click=_act, args=("stop",), icon=":material/stop:")
        else:
            refusal = resume_refusal(run_dir, st_now)
            st.button(
                "Resume", key="run_resume", on_click=_act, args=("resume",), icon=":material/replay:",
                disabled=refusal is not None, help=refusal or "continue from weights/last.pt",
            )  # fmt: skip
            st.button(
                "Start again", key="run_again", on_click=_act, args=("again",), icon=":material/restart_alt:",
                help="a new run with this run's recipe (this one stays as it is)",
            )  # fmt: skip
    if epochs:
        st.progress(min(1.0, now.epoch / epochs))
    run_notes_panel.dashboard_notes(run_dir, name)  # the note and tags, with their editor
    flash = ss.pop("dash_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])

    failure = log.failure or ({"error": st_now.get("error")} if state == RunStatus.FAILED else None)
    if failure:
        st.error(f"**Run failed:** {failure.get('error') or 'no error message recorded'}", icon=":material/error:")
        if failure.get("traceback"):
            with st.expander("Traceback"):
                st.code("\n".join(failure["traceback"]), language="text")
    elif state == RunStatus.STOPPED:
        st.info(f"Stopped after epoch {now.epoch}. Resume continues from the last checkpoint.", icon=":material/pause:")
    if not log.n_events:
        st.info(
            "Waiting for the first telemetry events (the training process is starting).", icon=":material/hourglass:"
        )

    # ---- charts ---------------------------------------------------------------------------------------------
    mark = dashboard_parts.findings_section(found, now.findings, with_dataset, run_dir) if found is not None else ()
    dashboard_parts.per_class_section(log, reader, name, run_dir, mark)
    evidence_section.evidence_section(run_dir, name)
    dashboard_parts.training_charts(log, reader, name, ss.dash_lr_log, ss.dash_gn_log, mark)
    dashboard_parts.system_panel(log)
    dashboard_parts.console_and_files(run_dir, name, state == RunStatus.FAILED)
    live_refresh(REFRESH_S if was_active and ss.dash_live else None, "dash_live_refresh")  # last: after this draw


dashboard()
