"""Sections of the run dashboard (Streamlit): the charts, the per-class views, the system panel, console and files.

Figures are rebuilt only when their data changed: each is kept per browser session with the reader's version of the
data it was drawn from (epoch-level charts follow ``epochs_version``, step charts ``version``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app import charts, class_charts, dataset_info, doctor_views, exports, run_views
from app.chart_style import LEGEND_MAX, Mark
from trainers.doctor import Finding, severity_count
from trainers.doctor.predictions import evidence_stamp
from trainers.run_files import DATA_FILE, RECIPE_FILE
from trainers.statuses import Severity
from trainers.telemetry import per_class
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.run_reader import RunReader

HEATMAP_BOX_PX = 900  # the heatmap scrolls inside a box this tall, however many classes
SORT_LABELS = {
    "f1": "F1 (worst first)",
    "frequency": "train count (rarest first)",
    "change": "recent change",
    "id": "id",
}


def cached_figure(key: str, version: Any, build: Callable[[], Any]):
    """The figure for ``key`` drawn from data ``version``; built again only when the version changed."""
    store = st.session_state.setdefault("_dash_figures", {})
    hit = store.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    fig = build()
    store[key] = (version, fig)
    return fig


def forget_figures(keep_prefix: str) -> None:
    """Drop the cached figures of other runs (the run picker changed)."""
    store = st.session_state.get("_dash_figures", {})
    for key in [k for k in store if not k.startswith(keep_prefix)]:
        del store[key]


def train_counts(run_dir: Path, n_classes: int) -> list[int] | None:
    """Train label counts per class from the run's own data.yaml (cached by the dataset inspector), if readable."""
    info = dataset_info.inspect_dataset(run_dir / DATA_FILE, splits=("train",))
    counts = info.counts.get("train") if not info.error else None
    return list(counts.instances) if counts is not None and len(counts.instances) == n_classes else None


APPLY_HELP = "open New run with this run's recipe and this fix (this run stays as it is)"


def marks(found: list[Finding]) -> tuple[Mark, ...]:
    """The doctor's findings as chart marks (critical and warning ones that say where they start)."""
    return tuple(
        Mark(f.id.rsplit(".", 1)[-1].replace("_", " "), Severity(f.severity).chart_colour, f.epoch, f.steps)
        for f in doctor_views.chart_marks(found)
    )


def run_findings(log: RunLog, reader: RunReader, name: str, run_dir: Path) -> tuple[list[Finding] | None, bool]:
    """The doctor's findings so far (None before the first epoch) and whether the dataset rules were part of them;
    diagnosed again only when the epochs or the evidence folder changed (a validation's evidence lands just after its
    epoch event), or while the dataset scan is still running."""
    version = (reader.epochs_version, evidence_stamp(run_dir))
    found, with_dataset = cached_figure(f"{name}/findings", version, lambda: doctor_views.findings(log, run_dir))
    if not with_dataset:  # the dataset scan is still running: diagnose again on the next refresh
        st.session_state["_dash_figures"].pop(f"{name}/findings", None)
    return found, with_dataset


def findings_section(
    found: list[Finding], counts: dict[str, int], with_dataset: bool, run_dir: Path
) -> tuple[Mark, ...]:
    """What the doctor finds in the run so far, most severe first, each with its evidence, its fix and (when the fix
    is a recipe setting) Apply fix: New run prefilled with the fixed recipe. ``counts``: the header's findings by
    severity (:class:`trainers.runs.facts.RunFacts`). Returns the chart marks."""
    head = ", ".join(severity_count(s, n) for s, n in counts.items() if n) or "nothing to report so far"
    note = "" if with_dataset else " (checking the dataset...)"
    serious = [f for f in found if f.severity != Severity.INFO]
    with st.expander(f"Doctor: {head}{note}", expanded=bool(serious), icon=":material/stethoscope:"):
        seen: dict[str, int] = {}
        for f in found:
            slug = f.id.replace(".", "_")
            seen[slug] = seen.get(slug, 0) + 1
            if seen[slug] > 1:  # two findings of one id (several rules failing: doctor.rule_error) need two keys
                slug = f"{slug}_{seen[slug]}"
            box = st.container(border=True, key=f"finding_{slug}")
            text, action = box.columns([5, 1])
            severity = Severity(f.severity)
            text.markdown(
                f":{severity.colour}-badge[{severity.label}] **{f.title}**  \n{f.evidence}  \n**Fix:** {f.fix}"
            )
            if f.recipe_change:
                if action.button("Apply fix", key=f"apply_fix_{slug}", icon=":material/build:", help=APPLY_HELP):
                    _apply_fix(run_dir, f)
            if link := f.numbers.get("dataset_link"):  # the images it names, on the Dataset page's grid
                action.page_link("app_pages/datasets.py", label="Show images", icon=":material/photo_library:",
                                 query_params=link, help="these images on the Dataset page")  # fmt: skip
    return marks(found)


def _apply_fix(run_dir: Path, finding: Finding) -> None:
    from app.recipe_form import PREFIX

    try:
        fix = doctor_views.fix_as_new_run(run_dir, finding)
    except Exception as e:  # noqa: BLE001 (a WorkbenchError or RecipeError: say it, never a traceback)
        st.error(f"Cannot apply the fix: {e}", icon=":material/error:")
        return
    ss = st.session_state
    for key in [k for k in ss if str(k).startswith(PREFIX)]:
        del ss[key]  # the whole form is the fixed recipe, nothing left from an earlier visit
    ss.update(fix.form.to_state())
    ss["nr_prefilled"] = (
        f"Prefilled from run **{run_dir.name}** with the fix for: {finding.title}. "
        f"Changed: {doctor_views.change_text(fix.changes)}. Start makes a new run; {run_dir.name} stays as it is."
    )
    st.switch_page("app_pages/new_run.py")


def training_charts(
    log: RunLog, reader: RunReader, name: str, lr_log: bool, gn_log: bool, mark: tuple[Mark, ...] = ()
) -> None:
    """Losses, LR per group and gradient norms (the detection metrics sit next to the F1 chart)."""
    ev, sv = (reader.epochs_version, mark), (reader.version, reader.epochs_version, mark)
    st.plotly_chart(cached_figure(f"{name}/losses", ev, lambda: charts.loss_figure(log, mark)), key="chart_losses")
    a, b = st.columns(2)
    a.plotly_chart(
        cached_figure(f"{name}/lr/{lr_log}", sv, lambda: charts.lr_figure(log, log_y=lr_log, marks=mark)),
        key="chart_lr",
    )
    b.plotly_chart(
        cached_figure(f"{name}/gn/{gn_log}", sv, lambda: charts.grad_norm_figure(log, log_y=gn_log, marks=mark)),
        key="chart_grad_norm",
    )


def per_class_section(log: RunLog, reader: RunReader, name: str, run_dir: Path, mark: tuple[Mark, ...] = ()) -> None:
    """Per-class views that stay readable for 80-365 classes: a picker (default: the worst, rarest and most changed),
    F1 lines of the chosen classes and the mean, a sorted heatmap that scrolls, and a per-class table with CSV."""
    ss = st.session_state
    rows = per_class.class_rows(log, train_counts(run_dir, len(log.names)) if log.names else None)
    ev = (reader.epochs_version, mark)
    metrics = cached_figure(f"{name}/metrics", ev, lambda: charts.metrics_figure(log, mark))
    if not rows:
        a, b = st.columns(2)
        a.plotly_chart(class_charts.f1_figure(log, marks=mark), key="chart_f1")
        b.plotly_chart(metrics, key="chart_metrics")
        return
    sort_key = f"dash_sort_{name}"
    ss.setdefault(sort_key, "f1")
    chosen = per_class.default_classes(rows)
    ordered = [r.name for r in per_class.sort_rows(rows, ss[sort_key])]
    left, right = st.columns([3, 1])
    # The classes shown are kept under a key of their own and handed to the picker as its default, never written to
    # the widget's key: on a loaded server the browser can miss the value the script wrote (seen in Chromium: the
    # picker drawn empty from its first refresh while the server held 20 classes), and it then shows the widget's
    # default and sends it back. Without a default that was [], and the chart read "0 of 80 classes and the mean".
    choice_key = f"dash_shown_classes_{name}"
    known = set(ordered)
    choice = [c for c in ss.get(choice_key, chosen) if c in known]
    picked = tuple(
        left.multiselect(
            "Classes on the F1 chart", ordered, default=choice, key=f"dash_classes_{name}",
            max_selections=LEGEND_MAX - 1,
            help="type to search; the default is the worst F1, the rarest in train and the largest recent change",
        )
    )  # fmt: skip
    ss[choice_key] = list(picked)
    right.selectbox("Sort classes by", list(SORT_LABELS), key=sort_key, format_func=SORT_LABELS.get)
    if len(rows) > len(chosen) and list(picked) == list(chosen):
        reasons = {}
        for cls, why in chosen.items():
            reasons.setdefault(why, []).append(cls)
        st.caption("Shown by default: " + "; ".join(f"{why}: {', '.join(c)}" for why, c in reasons.items()))
    a, b = st.columns(2)
    a.plotly_chart(
        cached_figure(f"{name}/f1/{picked}", ev, lambda: class_charts.f1_figure(log, list(picked), mark)),
        key="chart_f1",
    )
    b.plotly_chart(metrics, key="chart_metrics")
    # full width, fixed row height: 365 classes scroll inside the box instead of stretching the page
    with st.container(height=min(HEATMAP_BOX_PX, class_charts.heatmap_height(len(rows)) + 30), border=False):
        st.plotly_chart(
            cached_figure(
                f"{name}/heat/{ss[sort_key]}", reader.epochs_version, lambda: class_charts.f1_heatmap(log, ordered)
            ),
            key="chart_f1_heatmap",
        )
    with st.expander(f"Per-class table ({len(rows)} classes)"):
        table = pd.DataFrame([r.as_dict() for r in per_class.sort_rows(rows, ss[sort_key])])
        span = per_class.change_epochs(log)  # a 4-epoch run's change spans 3 epochs, not CHANGE_EPOCHS
        table = table.rename(
            columns={"change": f"F1 change ({span} epoch{'s' * (span != 1)})" if span else "F1 change"}
        )
        st.dataframe(table, hide_index=True, key="dash_class_table", height=min(600, 38 + 35 * len(table)))
        st.download_button(
            "Per-class table (CSV)", table.to_csv(index=False), file_name=f"{name}-per-class.csv", mime="text/csv",
            key="download_per_class", icon=":material/download:", on_click="ignore",
        )  # fmt: skip


def system_panel(log: RunLog) -> None:
    """The last epoch's system readings: data wait vs compute, CPU, memory, GPU."""
    system = next((e.get("system") for e in reversed(log.epochs) if e.get("system")), None)
    if not system:
        return
    with st.container(border=True, key="dash_system"):
        st.markdown(f"**System** (epoch {log.epochs[-1].get('epoch')})")
        cols = st.columns(5)
        share = system.get("data_share")
        cols[0].metric("Waiting for data", f"{share:.0%}" if share is not None else "-", help="of the batch time")
        cols[1].metric("Data / compute", f"{system.get('data_s', 0):.1f} s / {system.get('compute_s', 0):.1f} s")
        cols[2].metric("CPU", f"{system.get('cpu_percent', 0):.0f}%", help="of one core, training process")
        cols[3].metric("RAM", f"{system.get('rss_mb', 0) / 1000:.2f} GB")
        gpu = system.get("gpu_mem_mb")
        util = system.get("gpu_util")
        gpu_text = "-" if gpu is None else f"{gpu / 1000:.1f} GB" + (f", {util:.0f}%" if util is not None else "")
        cols[4].metric("GPU memory", gpu_text)


def console_and_files(run_dir: Path, name: str, failed: bool) -> None:
    """The console tail, the recipe and the downloads."""
    with st.expander("Console (last lines)", expanded=failed):
        st.code(run_views.console_tail(run_dir) or "(empty)", language="text")
    recipe_file = run_dir / RECIPE_FILE
    if recipe_file.is_file():
        with st.expander("Recipe"):
            st.code(recipe_file.read_text(encoding="utf-8"), language="yaml", wrap_lines=True)  # long paths wrap
    files = exports.artifacts(run_dir)
    if files:
        st.markdown("**Downloads**")
        cols = st.columns(len(files))
        for col, (label, path, mime) in zip(cols, files, strict=True):
            col.download_button(
                label, lambda p=path: exports.read_bytes(p), file_name=f"{name}-{label}",
                mime=mime, key=f"download_{label}", icon=":material/download:", on_click="ignore",
            )  # fmt: skip
