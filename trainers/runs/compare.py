"""Compare runs: the recipe settings that differ between them, as dotted keys, where each run ended up (the metrics of
the weights it kept), and which run won.

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

from trainers.metrics import MAP50, MAP50_95, MEAN_F1, find_metric
from trainers.recipe import Recipe
from trainers.recipe.dotted import diff as recipe_diff
from trainers.telemetry.run_log import RunLog

FINAL_METRICS = {"map50": MAP50.key, "map50_95": MAP50_95.key, "mean_f1": MEAN_F1.key}  # RunResult field -> key


def kept_metrics(log: RunLog) -> tuple[dict[str, float | None], str | None]:
    """The :data:`FINAL_METRICS` of the weights a run kept (best.pt), and which evaluation they come from.

    The final evaluation of best.pt (``final_eval`` in the telemetry) when the run has one; else the epoch best.pt
    was saved at (a stopped run's best.pt); else the last epoch. Never the last epoch beside the best one: the last
    epoch's weights are not the ones a run hands over.
    """
    by_epoch = {e.get("epoch"): e for e in log.epochs}
    if log.final_eval is not None:
        chosen, source = log.final_eval, f"final evaluation of best.pt (epoch {log.best_epoch or '?'})"
    elif log.best_epoch in by_epoch:
        chosen, source = by_epoch[log.best_epoch], f"best epoch {log.best_epoch}"
    elif log.epochs:
        chosen, source = log.epochs[-1], f"last epoch {log.epochs[-1].get('epoch')}"
    else:
        return dict.fromkeys(FINAL_METRICS), None
    values = {}
    for field_name, key in FINAL_METRICS.items():
        value = (chosen.get("metrics") or {}).get(key) if key not in chosen else chosen.get(key)
        values[field_name] = float(value) if isinstance(value, (int, float)) else None
    return values, source


def winners(bests: Mapping[str, Mapping[str, Any] | None]) -> tuple[list[str], str]:
    """The best runs by the metric they chose best.pt by (all of them on a tie), and one line saying so.

    ``bests``: run name -> its ``best_metric`` (``{"name", "value"}``, status.json's). Higher is better unless the
    metric catalogue says ``min`` (a loss). No winner when fewer than two runs have a value, or when they chose best.pt
    by different metrics (those values do not compare).
    """
    scored = {n: b for n, b in bests.items() if b and isinstance(b.get("value"), (int, float))}
    names = sorted({str(b.get("name")) for b in scored.values()})
    if len(scored) < 2:
        return [], "no winner yet: fewer than two runs have a best metric"
    if len(names) > 1:
        return [], f"no winner: these runs choose best.pt by different metrics ({', '.join(names)})"
    row = find_metric(names[0])
    sign = -1.0 if row is not None and row.direction == "min" else 1.0
    top = max(sign * float(b["value"]) for b in scored.values())
    best = [n for n, b in scored.items() if sign * float(b["value"]) == top]
    label = row.label if row is not None else names[0]
    side = "lowest" if sign < 0 else "highest"
    return best, f"{' and '.join(best)}: the {side} {label} ({sign * top:.4f}) of {len(scored)} runs"


def ranked(bests: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The run names best first by their best metric (in the catalogue's direction; ties keep their order), runs
    without a value, or with another metric than the most common one, after them in their order."""
    scored = {n: b for n, b in bests.items() if b and isinstance(b.get("value"), (int, float))}
    names = [str(b.get("name")) for b in scored.values()]
    if not names:
        return list(bests)
    common = max(dict.fromkeys(names), key=names.count)
    row = find_metric(common)
    sign = -1.0 if row is not None and row.direction == "min" else 1.0
    first = sorted((n for n, b in scored.items() if b.get("name") == common), key=lambda n: -sign * scored[n]["value"])
    return first + [n for n in bests if n not in first]


@dataclass(frozen=True)
class RunResult:
    """Where a run ended up: its status, epochs, best epoch and metric, and the metrics of the weights it kept
    (:func:`kept_metrics`; ``metrics_from`` says which evaluation they come from)."""

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
    metrics_from: str | None = None

    @classmethod
    def from_log(cls, name: str, log: RunLog, status: str | None = None) -> RunResult:
        """The result of a run from its folded telemetry (``status``: status.json's, when the caller read it)."""
        kept, source = kept_metrics(log)
        end = log.run_end or {}
        return cls(
            name=name,
            status=status or log.status,
            epochs_done=len(log.epochs),
            epochs_planned=log.epochs_planned,
            best_epoch=log.best_epoch,
            best_metric=end.get("best_metric") or _saved_best(log),
            stop_reason=end.get("stop_reason"),
            metrics_from=source,
            **kept,
        )


def _saved_best(log: RunLog) -> dict[str, Any] | None:
    """A run without a run_end yet (still running): the chosen metric of the epoch best.pt was last saved at."""
    saved = next((e for e in reversed(log.epochs) if e.get("epoch") == log.best_epoch), None)
    best = (saved or {}).get("best_metric")
    return dict(best) if isinstance(best, Mapping) else None


@dataclass(frozen=True)
class Comparison:
    """The runs compared, the settings that differ (:func:`recipe_diff`) and each run's result."""

    runs: list[str]
    diff: dict[str, list[Any]]
    results: list[RunResult]

    @property
    def winners(self) -> tuple[list[str], str]:
        """:func:`winners` of these runs' best metrics."""
        return winners({r.name: r.best_metric for r in self.results})

    def to_dict(self) -> dict[str, Any]:
        """``{"runs": [names], "diff": {key: [values]}, "results": [{name, status, map50, ...}]}``."""
        return {"runs": list(self.runs), "diff": dict(self.diff), "results": [asdict(r) for r in self.results]}

    def text(self) -> str:
        """Two tables, as ``workbench compare`` prints them: the differing settings (``off``: the block is off), then
        each run's status, epochs, best epoch and metric and the metrics of its kept weights, the winner starred."""
        import json

        def cell(value: Any) -> str:
            return "off" if value is None else value if isinstance(value, str) else json.dumps(value)

        def metric(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f}"

        rows = [[key, *map(cell, values)] for key, values in self.diff.items()]
        first = _table(rows, ["SETTING", *self.runs]) if rows else "the recipes are the same"
        best, why = self.winners
        results = [
            [("* " if r.name in best else "") + r.name, r.status, f"{r.epochs_done}/{r.epochs_planned or '-'}",
             str(r.best_epoch or "-"),
             f"{r.best_metric['name']}={metric(r.best_metric.get('value'))}" if r.best_metric else "-",
             metric(r.map50), metric(r.map50_95), metric(r.mean_f1), r.metrics_from or "-"]
            for r in self.results
        ]  # fmt: skip
        header = ["RUN", "STATUS", "EPOCHS", "BEST EPOCH", "BEST", "MAP50", "MAP50-95", "MEAN F1", "METRICS OF"]
        return f"{first}\n\n{_table(results, header)}\n\n{'winner (*): ' if best else ''}{why}"


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
