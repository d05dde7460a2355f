"""Per-epoch summaries of the step series, written into each ``epoch`` event (``epoch.steps``; docs/telemetry.md).

The training process keeps the epoch's step columns (a few thousand floats per column) and summarizes them when the
epoch ends, so the doctor, the CLI and the Runs page can reason about every step of a run from the small events log
alone, without opening the step store. Pure numpy; the UI imports it.

Step columns are named ``step``, ``epoch``, ``t``, ``grad_norm`` (pre-clip total), ``grad_norm/<group>``,
``lr/<group>``, ``loss/<name>``, ``clipped`` (0/1) and ``max_norm`` (NaN with no clipping: grad_clip.max_norm 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

QUANTILES = (50, 90, 99)


def _stats(values: np.ndarray, quantiles: bool = False) -> dict[str, Any]:
    """min/max/mean/last over the finite values (None when there are none), and the count of non-finite ones."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"nonfinite": int(values.size - finite.size), "min": None, "max": None, "mean": None}
    if finite.size:
        out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()))
        if quantiles:
            out.update({f"p{q}": float(v) for q, v in zip(QUANTILES, np.percentile(finite, QUANTILES), strict=True)})
    out["last"] = float(values[-1]) if values.size and np.isfinite(values[-1]) else None
    return out


def summarize_steps(columns: Mapping[str, np.ndarray], steps_taken: int | None = None) -> dict[str, Any] | None:
    """The ``epoch.steps`` summary of one epoch's step columns (None when no step was recorded).

    Args:
        columns: The epoch's step columns (see the module docstring), all the same length.
        steps_taken: Optimizer steps the epoch really took (more than recorded when a stride thins them).

    Returns:
        ``{"n", "recorded", "first", "last", "grad_norm": {min, max, mean, last, p50, p90, p99, nonfinite},
        "clipped": share, "max_norm", "loss": {name: stats}, "grad_norms": {group: stats}, "lr": {group: stats}}``.
    """
    step = np.asarray(columns.get("step", ()))
    if not step.size:
        return None
    out: dict[str, Any] = {
        "n": int(steps_taken if steps_taken is not None else step.size),
        "recorded": int(step.size),
        "first": int(step[0]),
        "last": int(step[-1]),
        "grad_norm": _stats(columns["grad_norm"], quantiles=True) if "grad_norm" in columns else None,
        "clipped": float(np.mean(columns["clipped"])) if "clipped" in columns else None,
    }
    max_norm = np.asarray(columns.get("max_norm", [np.nan]), dtype=np.float64)
    out["max_norm"] = float(max_norm[-1]) if np.isfinite(max_norm[-1]) else None
    for prefix, key in (("loss/", "loss"), ("grad_norm/", "grad_norms"), ("lr/", "lr")):
        out[key] = {name[len(prefix) :]: _stats(v) for name, v in columns.items() if name.startswith(prefix)}
    return out


class EpochSteps:
    """The current epoch's step columns, grown chunk by chunk as the training process flushes them."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {}
        self.taken = 0  # optimizer steps taken this epoch (recorded or not)

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        for name, values in columns.items():
            self._chunks.setdefault(name, []).append(np.asarray(values))

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(chunks) for name, chunks in self._chunks.items()}

    def summary(self) -> dict[str, Any] | None:
        return summarize_steps(self.columns(), self.taken or None)

    def reset(self) -> None:
        self._chunks.clear()
        self.taken = 0
