"""Sweeps: a base recipe and a grid of dotted recipe keys to value lists, started as ``workbench sweep`` in a
detached process (here or on the Ray cluster), and a live table of every sweep's variants.

The sweep is checked exactly as the CLI checks it (:func:`trainers.sweeps.sweep_file.load_sweep`): a problem is one
line naming
the key, and nothing starts. The variants are ordinary runs (``<name>-<n>``), also on the Runs page under the
sweep's header, each with its own dashboard.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st
import yaml

from app import run_views
from app.compare_views import WINNER_MARK
from app.live_refresh import live_refresh
from app.state import current_runs_root, default_cpus, init_state
from trainers.errors import WorkbenchError
from trainers.runs.compare import winners
from trainers.runs.folder import new_run_name
from trainers.statuses import ACTIVE_STATUSES, RunStatus
from trainers.sweeps.runner import default_parallel, early_end, start_detached
from trainers.sweeps.sweep_file import read_records, record_doc

REFRESH_S = 3.0
DEFAULT_BASE = str(Path(__file__).resolve().parents[2] / "assets" / "recipes" / "demo-quick.yaml")
DEFAULT_GRID = pd.DataFrame(
    {"key": ["customizations.layer_lr.backbone_ratio", "customizations.grad_clip.max_norm"],
     "values": ["[0.05, 0.3]", "[5.0, 10.0]"]}
)  # fmt: skip

init_state()
root = current_runs_root()
ss = st.session_state
CLUSTER = os.environ.get("WORKBENCH_CLUSTER", "")
ss.setdefault("sw_base", DEFAULT_BASE)
ss.setdefault("sw_run_on", "cluster" if CLUSTER else "local")
ss.setdefault("sw_cluster", CLUSTER)
ss.setdefault("sw_parallel", default_parallel(ss.sw_run_on == "cluster"))
ss.setdefault("sw_pending", {})  # sweeps started here that their process has not recorded yet: name -> record


def _run_on_changed() -> None:
    ss.sw_parallel = default_parallel(ss.sw_run_on == "cluster")  # the CLI's default for where it runs


ss.setdefault("sw_cpus", default_cpus())


def grid_of(table: pd.DataFrame) -> tuple[dict, str | None]:
    """The editor's rows as a grid (key -> list of values), or the first row that is not a YAML list."""
    grid = {}
    for i, row in enumerate(table.to_dict("records"), start=1):
        key, text = str(row.get("key") or "").strip(), str(row.get("values") or "").strip()
        if not key and not text:
            continue
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            values = None
        if not key or not isinstance(values, list):
            return {}, f"grid row {i} ({key or 'no key'}): values must be a YAML list, like [0.05, 0.3]"
        grid[key] = values
    return grid, None


st.title("Sweeps")
st.caption(f"Each variant of the grid is an ordinary run in `{root}`, named `<sweep>-<n>`.")
with st.container(border=True):
    st.text_input("Base recipe (YAML path)", key="sw_base")
    st.caption("Grid: a dotted recipe key per row and its values as a YAML list. A key under a customization that "
               "the base leaves off turns it on with the value.")  # fmt: skip
    edited = st.data_editor(DEFAULT_GRID, num_rows="dynamic", width="stretch", key="sweeps_grid")
    c1, c2, c3, c4 = st.columns(4)
    c1.text_input("Sweep name (optional)", key="sw_name", placeholder="generated from the time")
    c2.number_input("Variants at a time", min_value=1, step=1, key="sw_parallel",
                    help=f"default: {default_parallel(False)} on this machine, {default_parallel(True)} on a cluster "
                    "(Ray queues the rest)")  # fmt: skip
    c3.number_input("Early stop at epoch (0: off)", min_value=0, value=0, step=1, key="sw_es_epoch",
                    help="stop a variant there unless it is in the best half of those that got there")  # fmt: skip
    c4.radio("Run on", ["local", "cluster"], key="sw_run_on", horizontal=True, on_change=_run_on_changed,
             format_func={"local": "this machine", "cluster": "cluster (Ray jobs)"}.get)  # fmt: skip
    if ss.sw_run_on == "cluster":
        c1, c2 = st.columns([3, 1])
        c1.text_input("Ray job API address", key="sw_cluster", placeholder="http://HEAD:8265")
        c2.number_input("CPUs per variant", min_value=1, step=1, key="sw_cpus",
                        help="CPUs each variant's Ray job reserves; torch trains with that many threads")  # fmt: skip
    grid, problem = grid_of(edited)
    if problem:
        st.error(problem)
    start = st.button("Start sweep", type="primary", key="sweeps_start", disabled=bool(problem))
    if start:
        name = ss.sw_name.strip() or new_run_name("sweep", root)
        doc = {"base": ss.sw_base.strip(), "grid": grid, "parallel": int(ss.sw_parallel)}
        if ss.sw_es_epoch:
            doc["early_stop"] = {"epoch": int(ss.sw_es_epoch), "keep": 0.5}
        cluster = (ss.sw_cluster.strip() or None) if ss.sw_run_on == "cluster" else None
        try:
            if ss.sw_run_on == "cluster" and not cluster:
                raise WorkbenchError("Run on cluster: enter the Ray job API address, e.g. http://HEAD:8265")
            sweep = start_detached(doc, root, name, cluster=cluster, cpus=int(ss.sw_cpus) if cluster else None)
        except WorkbenchError as e:
            st.error(str(e))
        else:
            ss.sw_pending[name] = record_doc(sweep, cluster, int(ss.sw_parallel))
            st.success(f"Started sweep {name}: its variants appear below and on the Runs page as they start.")


def listed_sweeps() -> list[dict]:
    """The recorded sweeps, and those started here that their process has not recorded yet, newest first."""
    records = read_records(root)
    recorded = {r.get("name") for r in records}
    for name in [n for n in ss.sw_pending if n in recorded]:
        del ss.sw_pending[name]
    return [*reversed(ss.sw_pending.values()), *records]


records = listed_sweeps()
rows = run_views.run_rows(root) if records else []


@st.fragment
def sweep_tables() -> None:
    busy = ss.sw_pending or any(r.sweep and r.active for r in rows)
    _sweep_tables()
    live_refresh(REFRESH_S if busy else None, "sweeps_live_refresh")  # drawn last: the next refresh after this one


def _sweep_tables() -> None:
    records = listed_sweeps()  # again at each refresh: a sweep's record appears once its process has written it
    by_name = {r.name: r for r in run_views.run_rows(root)} if records else {}
    if not records:
        st.info("No sweeps yet.")
        return
    for record in records:
        st.subheader(f"Sweep {record['name']}")
        st.caption(f"base `{record.get('base')}` · {record.get('parallel')} at a time · "
                   f"{'on ' + record['cluster'] if record.get('cluster') else 'on this machine'}")  # fmt: skip
        if record["name"] in ss.sw_pending and (why := early_end(root, record["name"])):
            st.error(f"Sweep {record['name']} ended before starting its variants: {why}")
        variants = record.get("variants", [])
        best, why_best = winners({v["run"]: getattr(by_name.get(v["run"]), "best_metric", None) for v in variants})
        table = []
        for v in variants:
            r = by_name.get(v["run"])
            shown = {"winner": WINNER_MARK if v["run"] in best else "", "run": v["run"], "status": "waiting",
                     "epoch": "-", "best": "-", "best value": None}  # fmt: skip
            if r is not None:
                early = " (early)" if r.status == RunStatus.STOPPED and r.early_stop else ""
                value = (r.best_metric or {}).get("value")
                shown.update(status=r.status + early, epoch=f"{r.epoch}/{r.epochs or '?'}", best=r.best,
                             **{"best value": value if isinstance(value, (int, float)) else None})  # fmt: skip
            table.append({**shown, **{k.rsplit(".", 1)[-1]: str(x) for k, x in v["values"].items()}})
        st.dataframe(
            pd.DataFrame(table), hide_index=True, key=f"sweeps_table_{record['name']}",
            column_config={"best value": st.column_config.NumberColumn(format="%.4f", help="click to sort")},
        )  # fmt: skip
        st.caption(f"{WINNER_MARK} winner: {why_best}" if best else why_best)
        if any(t["status"] in ACTIVE_STATUSES for t in table):
            st.caption("live: refreshes every few seconds")


sweep_tables()
