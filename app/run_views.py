"""Runs as the UI shows them (no Streamlit): the per-run telemetry cache, rows of the Runs page with ETA, console
tails. Everything is read from the run folders, so it survives a browser refresh or a UI restart.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import WorkbenchError
from trainers.metrics import metric_label
from trainers.run_files import CONSOLE_FILE
from trainers.runs import launcher
from trainers.runs.actions import last_action_line
from trainers.runs.compare import ranked, winners
from trainers.runs.facts import Progress, eta_seconds, progress  # noqa: F401 (the header's facts: one place)
from trainers.runs.folder import list_runs, resume_refusal
from trainers.runs.status import read_status
from trainers.statuses import ACTIVE_STATUSES
from trainers.telemetry.run_reader import RunReader

# ---- the event cache -----------------------------------------------------------------------------------------------
_CACHE: OrderedDict[str, RunReader] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_RUNS = 8  # runs followed at once; each holds its folded events and the step store's bounded caches


def run_events(run_dir: str | os.PathLike[str]) -> RunReader:
    """The process-wide event cache of a run (shared by all sessions; survives page changes, not a UI restart)."""
    key = str(Path(run_dir).resolve())
    with _CACHE_LOCK:
        cache = _CACHE.pop(key, None) or RunReader(key)
        _CACHE[key] = cache
        while len(_CACHE) > CACHE_RUNS:
            _CACHE.popitem(last=False)
    return cache


def forget_run(run_dir: str | os.PathLike[str]) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(str(Path(run_dir).resolve()), None)


# ---- run summaries -------------------------------------------------------------------------------------------------
@dataclass
class RunRow:
    """One run as the Runs page shows it."""

    name: str
    path: str
    status: str
    epoch: int
    epochs: int | None
    eta_s: float | None
    best: str
    error: str | None
    created: str | None
    resume_refusal: str | None = None  # why Resume is refused (never finished an epoch, completed, still running)
    sweep: str | None = None  # the sweep it is a variant of (status.json ``sweep``)
    sweep_values: dict[str, Any] | None = None  # its grid values
    where: str = "local"  # the backend: local, or ray (a Ray job)
    early_stop: str | None = None  # why the sweep stopped it early
    best_metric: dict[str, Any] | None = None  # status.json's ``{"name", "value"}``
    last_action: str | None = None  # who last started/stopped/resumed it, and when (trainers.runs.actions)

    @property
    def best_label(self) -> str:
        """``Best mAP50-95``: the metric's name goes in the label, so the value alone never gets cut off."""
        return f"Best {metric_label((self.best_metric or {}).get('name'))}".strip()

    @property
    def best_value(self) -> str:
        value = (self.best_metric or {}).get("value")
        return f"{float(value):.3f}" if isinstance(value, (int, float)) else "-"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> float:
        return min(1.0, max(0.0, self.epoch / self.epochs)) if self.epochs else 0.0


def format_count(n: int) -> str:
    """A count that fits a header metric: ``9,999``, ``123k``, ``2.10M`` (a 2.1M-step run showed "2,100...")."""
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1e3:.0f}k"
    return f"{n / 1e6:.2f}M"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def format_metric(best: Mapping[str, Any] | None) -> str:
    """``{"name": "mAP50-95", "value": 0.41}`` -> ``mAP50-95 0.410`` (the label of :func:`metric_label`)."""
    if not best or best.get("value") is None:
        return "-"
    return f"{metric_label(best.get('name'))} {float(best['value']):.3f}"


def run_rows(root: str | os.PathLike[str]) -> list[RunRow]:
    """Every run in the runs root, newest first, with live status (dead processes settled) and ETA for active runs."""
    rows = []
    for s in list_runs(root):
        try:  # active runs are settled if their process died; RunSummary has no `error`, so read the status anyway
            status = launcher.refresh_status(s.path) if s.status in ACTIVE_STATUSES else read_status(s.path)
        except WorkbenchError:
            status = {}
        state = status.get("status", s.status)
        best = status.get("best_metric", s.best_metric)
        epochs = status.get("epochs", s.epochs)
        eta = None
        if state in ACTIVE_STATUSES:
            eta = eta_seconds(run_events(s.path).poll(), epochs)
        rows.append(
            RunRow(
                name=s.name, path=s.path, status=str(state), epoch=int(status.get("epoch", s.epoch) or 0),
                epochs=epochs, eta_s=eta, best=format_metric(best), best_metric=best,
                error=status.get("error"), created=s.created,
                resume_refusal=resume_refusal(s.path, status) if status else "status unreadable",
                sweep=status.get("sweep"), sweep_values=status.get("sweep_values"),
                where=str(status.get("backend") or "local"), early_stop=status.get("early_stop"),
                last_action=last_action_line(status),
            )
        )  # fmt: skip
    return grouped_by_sweep(rows)


def grouped_by_sweep(rows: list[RunRow]) -> list[RunRow]:
    """The rows with each sweep's variants together (in variant order), where its newest variant would be listed."""
    out: list[RunRow] = []
    done: set[str] = set()
    for row in rows:
        if row.sweep is None:
            out.append(row)
        elif row.sweep not in done:
            done.add(row.sweep)
            members = [r for r in rows if r.sweep == row.sweep]
            out += sorted(members, key=lambda r: (len(r.name), r.name))  # sweep-2 before sweep-10
    return out


def sweep_winners(rows: list[RunRow]) -> dict[str, list[str]]:
    """Each sweep's winners: its best variants by the metric they chose best.pt by (none until two have a value)."""
    sweeps = dict.fromkeys(r.sweep for r in rows if r.sweep)
    return {s: winners({r.name: r.best_metric for r in rows if r.sweep == s})[0] for s in sweeps}


def best_first(rows: list[RunRow]) -> list[RunRow]:
    """The rows with each sweep's variants ordered best first, in the metric's direction; other runs stay put."""
    out: list[RunRow] = []
    for row in rows:
        if row.sweep is None:
            out.append(row)
        elif not any(r.sweep == row.sweep for r in out):
            members = {r.name: r for r in rows if r.sweep == row.sweep}
            out += [members[n] for n in ranked({n: r.best_metric for n, r in members.items()})]
    return out


def sweep_header(rows: list[RunRow], sweep: str) -> str:
    """``Sweep **lr**: 4 variants (2 completed, 2 running); grid: backbone_ratio, max_norm``."""
    members = [r for r in rows if r.sweep == sweep]
    counts: dict[str, int] = {}
    for r in members:
        counts[r.status] = counts.get(r.status, 0) + 1
    keys = list(dict.fromkeys(k for r in members for k in (r.sweep_values or {})))
    states = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"Sweep **{sweep}**: {len(members)} variants ({states}); grid: {', '.join(keys) or '-'}"


# ---- console and artifacts -----------------------------------------------------------------------------------------
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def console_tail(run_dir: str | os.PathLike[str], lines: int = 60, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of the run's console.log (progress-bar redraws collapsed to their last state)."""
    path = Path(run_dir) / CONSOLE_FILE
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = _ANSI_RE.sub("", data.decode("utf-8", "replace"))  # colours and cursor moves of progress bars
    if size > max_bytes:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    out = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        out.append(parts[-1] if parts else "")
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out[-lines:])


def runs_with_status(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, status)`` of every run, newest first (status.json only; cheap)."""
    try:
        return [(s.name, s.status) for s in list_runs(root)]
    except WorkbenchError:
        return []
