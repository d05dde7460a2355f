"""Runs: every run in the runs root with its status, epoch progress, ETA, best metric and the training doctor's
findings by severity; open, stop, resume, delete (with a confirmation) and download its files. Everything is read from
the run folders, so the list survives a browser refresh or a UI restart; it refreshes itself while a run is active or
a dataset scan is pending.
"""

from __future__ import annotations

import streamlit as st

from app import exports, model_export_jobs, model_export_panel, run_filter_bar, run_findings, run_notes_panel, run_views
from app.archived_runs_panel import show as show_archived_runs
from app.compare_views import WINNER_MARK
from app.live_refresh import live_refresh
from app.state import current_runs_root, init_state
from app.who import current_user, record_done
from trainers.errors import WorkbenchError
from trainers.runs import launcher
from trainers.runs.archive import archive_run
from trainers.statuses import RunStatus

REFRESH_S = 3.0

init_state()
root = current_runs_root()
ss = st.session_state


@st.cache_data(max_entries=5000, show_spinner=False)
def findings(path: str, version: tuple) -> run_findings.FindingsCount | None:
    """The run's findings count, computed again only when ``version`` (status.json, telemetry, dataset facts) moved."""
    return run_findings.findings_count(path)


def _act(action: str, path: str, name: str) -> None:
    """Button callback: run a launcher action and leave a message for the next render."""
    try:
        if action == "stop":
            launcher.stop_run(path)
            record_done(path, "stop")
            ss.runs_flash = ("success", f"Stop requested for {name}: it saves and ends at the next batch.")
        elif action == "resume":
            launcher.resume_run_detached(path)
            record_done(path, "resume")
            ss.runs_flash = ("success", f"Resuming {name} from its last checkpoint.")
        elif action == "again":
            new = launcher.start_again(path)
            record_done(new, "start")
            ss.runs_flash = ("success", f"Started {new.name} with the recipe of {name}.")
        elif action == "delete":
            archive_run(path, current_user())  # delete = archive: restorable from Show archived
            run_views.forget_run(path)
            run_findings.forget(path)
            ss.runs_confirm_delete = None
            ss.runs_flash = ("success", f"Archived {name}; Show archived restores it.")
        elif action == "ask_delete":
            ss.runs_confirm_delete = name
        elif action == "cancel_delete":
            ss.runs_confirm_delete = None
    except WorkbenchError as e:
        ss.runs_flash = ("error", str(e))


st.title("Runs")
st.caption(f"Runs in `{root}`")
rows = run_views.run_rows(root)
if rows:
    run_filter_bar.filter_bar(rows)  # status, tag, model, dataset, text: session state and ?query params
counts = {  # queues the doctor's scans of the rows the page draws first
    r.name: findings(r.path, run_findings.version(r.path)) for r in run_filter_bar.kept(rows)[: run_filter_bar.limit()]
}
live = any(r.active for r in rows) or run_findings.scanning() or model_export_jobs.running(root)


@st.fragment
def run_list() -> None:
    _run_list()
    live_refresh(REFRESH_S if live else None, "runs_live_refresh")  # drawn last: the next refresh after this one


def _run_list() -> None:
    current = run_views.run_rows(root)
    if (any(r.active for r in current) or run_findings.scanning() or model_export_jobs.running(root)) != live:
        st.rerun()  # a run, a scan or an export started or ended: rerun the page so the refresh interval follows
    flash = ss.pop("runs_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    if not current:
        st.info("No runs yet. Start one on the New run page.")
        st.page_link("app_pages/new_run.py", label="New run", icon=":material/add_circle:")
        return
    best = run_views.sweep_winners(current)
    if best:
        st.toggle(
            "Sweep variants: best first", key="runs_best_first",
            help=f"{WINNER_MARK}: the best variant of its sweep, by the metric the sweep chose best.pt by",
        )  # fmt: skip
        if ss.get("runs_best_first"):
            current = run_views.best_first(current)
    current, n_kept = run_filter_bar.shown(current)  # under a count line: "12 of 500 runs"; the first 50 drawn
    counts.update({r.name: findings(r.path, run_findings.version(r.path)) for r in current})  # the rows shown only
    previous_sweep = None
    for row in current:
        if row.sweep and row.sweep != previous_sweep:  # the variants of a sweep are listed together, under a header
            st.markdown(run_views.sweep_header(current, row.sweep))
        previous_sweep = row.sweep
        with st.container(border=True, key=f"runs_row_{row.name}"):
            name_col, status_col, progress_col, eta_col, best_col, findings_col = st.columns(
                [2.2, 1.2, 1.8, 0.8, 1.4, 2.2]
            )
            won = row.name in best.get(row.sweep or "", [])
            name_col.markdown(f"**{row.name}**" + (f" {WINNER_MARK} best of its sweep" if won else ""))
            if row.created:
                name_col.caption(row.created.replace("T", " ")[:19])
            if row.sweep_values:
                name_col.caption(" · ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row.sweep_values.items()))
            if row.last_action:
                name_col.caption(row.last_action)
            if row.where == "ray":
                name_col.caption(":material/cloud: on the Ray cluster")
            status_col.badge(row.status, color=RunStatus.colour_of(row.status))
            epochs = row.epochs or "?"
            progress_col.progress(row.progress, text=f"epoch {row.epoch}/{epochs}")
            eta_col.metric(
                "ETA", run_views.format_duration(row.eta_s) if row.active else "-", label_visibility="visible"
            )
            best_col.metric(row.best_label, row.best_value, help=row.best)  # the name in the label: never cut off
            found = counts.get(row.name)
            findings_col.markdown(
                ":small[Findings]", help="the training doctor's findings; Open shows them with their fixes"
            )
            findings_col.markdown(found.badges() if found else "-")
            if found and found.dataset_pending:
                findings_col.caption("checking the dataset…")
            # the actions on a line of their own under the columns (all five fit at 1400 px), in a horizontal flex row
            # that sizes each button to its label (equal columns truncated "Resume")
            actions = st.container(horizontal=True, gap="small")
            actions.page_link(
                "app_pages/dashboard.py", label="Open", icon=":material/monitoring:", query_params={"run": row.name}
            )
            if row.active:
                actions.button("Stop", key=f"runs_stop_{row.name}", on_click=_act, args=("stop", row.path, row.name))
            else:
                actions.button(
                    "Resume", key=f"runs_resume_{row.name}", on_click=_act, args=("resume", row.path, row.name),
                    disabled=row.resume_refusal is not None, help=row.resume_refusal or "continue from last.pt",
                )  # fmt: skip
                actions.button(
                    "Start again", key=f"runs_again_{row.name}", on_click=_act, args=("again", row.path, row.name),
                    help="a new run with this run's recipe",
                )  # fmt: skip
            files = exports.artifacts(row.path)
            if files:
                with actions.popover("Files", icon=":material/download:", help="download this run's files"):
                    for label, path, mime in files:
                        st.download_button(
                            label, lambda p=path: exports.read_bytes(p), file_name=f"{row.name}-{label}",
                            mime=mime, key=f"runs_download_{row.name}_{label}", icon=":material/download:",
                            on_click="ignore",
                        )  # fmt: skip
            model_export_panel.export_popover(actions, row, root)
            run_notes_panel.row_notes(name_col, actions, row)
            actions.button(
                "Archive", key=f"runs_delete_{row.name}", on_click=_act, args=("ask_delete", row.path, row.name),
                disabled=row.active, help="stop the run first" if row.active else None,
            )  # fmt: skip
            if row.error:
                st.caption(f":red[{row.error}]")
            if ss.get("runs_confirm_delete") == row.name:
                st.warning(f"Archive run **{row.name}**? It leaves the list; Show archived restores it.")
                y, n, _ = st.columns([1, 1, 6])
                y.button(
                    "Yes, archive", key=f"runs_confirm_{row.name}", type="primary", on_click=_act,
                    args=("delete", row.path, row.name),
                )  # fmt: skip
                n.button(
                    "Cancel", key=f"runs_cancel_{row.name}", on_click=_act, args=("cancel_delete", row.path, row.name)
                )
    run_filter_bar.more_button(n_kept)


run_list()
show_archived_runs(root)
