"""Compare runs: the recipe settings that differ between them, as dotted keys, and where each run ended up.

``workbench compare`` prints it and the Compare page shows it. A setting is a recipe leaf (``train.lr0``,
``customizations.grad_clip.max_norm``; a customization without settings is one leaf, ``{}`` when on); the diff is
:func:`trainers.recipe.dotted.diff` (here as ``recipe_diff``): a training argument a recipe leaves out counts as
ultralytics' default, a customization that is off has ``None`` for each of its settings. Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainers.metrics import MAP50, MAP50_95, MEAN_F1
from trainers.recipe import Recipe
from trainers.recipe.dotted import diff as recipe_diff
from trainers.telemetry.run_log import RunLog

FINAL_METRICS = {"map50": MAP50.key, "map50_95": MAP50_95.key, "mean_f1": MEAN_F1.key}  # RunResult field -> key


@dataclass(frozen=True)
class RunResult:
    """Where a run ended up: its status, epochs, best epoch and metric, and the last epoch's metrics."""

    name: str
    status: str
    epochs_done: int
    epochs_planned: int | None
    best_epoch: int | None
    best_metric: dict[str, Any] | None
    map50: float | None
    map50_95: float | None
    mean_f1: float | None
    stop_reason: str | None = None

    @classmethod
    def from_log(cls, name: str, log: RunLog, status: str | None = None) -> RunResult:
        """The result of a run from its folded telemetry (``status``: status.json's, when the caller read it)."""
        last = {}
        for field_name, key in FINAL_METRICS.items():
            values = [v for v in log.epoch_metric(key) if v is not None]
            last[field_name] = values[-1] if values else None
        end = log.run_end or {}
        return cls(
            name=name,
            status=status or log.status,
            epochs_done=len(log.epochs),
            epochs_planned=log.epochs_planned,
            best_epoch=log.best_epoch,
            best_metric=end.get("best_metric"),
            stop_reason=end.get("stop_reason"),
            **last,
        )


@dataclass(frozen=True)
class Comparison:
    """The runs compared, the settings that differ (:func:`recipe_diff`) and each run's result."""

    runs: list[str]
    diff: dict[str, list[Any]]
    results: list[RunResult]

    def to_dict(self) -> dict[str, Any]:
        """``{"runs": [names], "diff": {key: [values]}, "results": [{name, status, map50, ...}]}``."""
        return {"runs": list(self.runs), "diff": dict(self.diff), "results": [asdict(r) for r in self.results]}

    def text(self) -> str:
        """Two tables, as ``workbench compare`` prints them: the differing settings (``off``: the block is off), then
        each run's status, epochs, best epoch and metric and last-epoch metrics."""
        import json

        def cell(value: Any) -> str:
            return "off" if value is None else value if isinstance(value, str) else json.dumps(value)

        def metric(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f}"

        rows = [[key, *map(cell, values)] for key, values in self.diff.items()]
        first = _table(rows, ["SETTING", *self.runs]) if rows else "the recipes are the same"
        results = [
            [r.name, r.status, f"{r.epochs_done}/{r.epochs_planned or '-'}", str(r.best_epoch or "-"),
             f"{r.best_metric['name']}={metric(r.best_metric.get('value'))}" if r.best_metric else "-",
             metric(r.map50), metric(r.map50_95), metric(r.mean_f1)]
            for r in self.results
        ]  # fmt: skip
        header = ["RUN", "STATUS", "EPOCHS", "BEST EPOCH", "BEST", "MAP50", "MAP50-95", "MEAN F1"]
        return f"{first}\n\n{_table(results, header)}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def compare(
    logs: Mapping[str, RunLog],
    recipes: Mapping[str, Recipe | Mapping[str, Any]] | None = None,
    statuses: Mapping[str, str] | None = None,
) -> Comparison:
    """Compare runs already read (the Compare page has their logs): recipes default to each log's ``run_start``."""
    recipes = recipes or {}
    chosen = {
        n: recipes.get(n) or (log.run_starts[-1].get("recipe") if log.run_starts else {}) for n, log in logs.items()
    }
    results = [RunResult.from_log(n, log, (statuses or {}).get(n)) for n, log in logs.items()]
    return Comparison(list(logs), recipe_diff(chosen), results)


def compare_runs(run_dirs: list[str | os.PathLike[str]]) -> Comparison:
    """Compare run folders: each one's recipe.yaml (else its run_start's recipe), telemetry and status.json.

    Raises:
        RunError: A folder is not a run folder.
    """
    from trainers.doctor.diagnose import read_run_log
    from trainers.run_files import RECIPE_FILE
    from trainers.runs.status import read_status

    logs, recipes, statuses = {}, {}, {}
    for run_dir in map(Path, run_dirs):
        name = run_dir.name if run_dir.name not in logs else str(run_dir)
        logs[name] = read_run_log(run_dir)
        statuses[name] = read_status(run_dir).get("status")
        recipe_file = run_dir / RECIPE_FILE
        if recipe_file.is_file():
            try:
                recipes[name] = Recipe.from_yaml(recipe_file.read_text(encoding="utf-8"), source=str(recipe_file))
            except Exception:  # edited by hand since: the run_start's copy is what ran
                pass
    return compare(logs, recipes, statuses)
