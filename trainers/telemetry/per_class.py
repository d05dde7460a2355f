"""Per-class numbers of a run for 80-365 classes: a class x epoch matrix, one row per class, and which classes to
show by default (the worst, the rarest and the most changed), for the dashboard, Compare, the CLI export and the doctor.

Pure numpy over :class:`~trainers.telemetry.run_log.RunLog` epoch events (``epoch.per_class``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainers.metrics import PER_CLASS_COLUMNS
from trainers.telemetry.run_log import RunLog

KEYS = PER_CLASS_COLUMNS  # the per-class metrics of an epoch event's per_class rows
SHOWN = 20  # classes drawn by default next to the mean, so a legend stays readable (<= 25 entries)
CHANGE_EPOCHS = 5  # "change": F1 now minus F1 this many epochs ago
SORTS = ("f1", "frequency", "change", "id")


def matrix(log: RunLog, key: str = "f1") -> tuple[list[str], list[int], np.ndarray]:
    """``(class names, epoch numbers, values)``: ``values[c, e]`` is class ``c``'s ``key`` at the ``e``-th standing
    epoch, NaN where the epoch has no value for it.

    Grown with the run: the log keeps the matrix it built (``log.derived``) and a refresh after one new epoch adds one
    column, so a dashboard refresh costs O(classes), not O(epochs x classes).
    """
    n = len(log.epochs)
    cached = log.derived.get(("per_class", key))
    if cached is not None and cached[0] == log.epochs_rev and cached[1] <= n:
        _, done, names, values = cached
    else:
        done, names, values = 0, list(log.names), np.empty((len(log.names), 0))
    if done == n and names == _all_names(log, names, done):
        return names, log.epoch_numbers, values
    names = _all_names(log, names, done)
    values = np.vstack([values, np.full((len(names) - values.shape[0], values.shape[1]), np.nan)])
    index = {name: i for i, name in enumerate(names)}
    new = np.full((len(names), n - done), np.nan)
    for j, e in enumerate(log.epochs[done:]):
        for row in e.get("per_class") or []:
            v = row.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                new[index[row.get("name")], j] = v
    values = np.hstack([values, new])
    log.derived[("per_class", key)] = (log.epochs_rev, n, names, values)
    return names, log.epoch_numbers, values


def _all_names(log: RunLog, names: list[str], done: int) -> list[str]:
    """``names`` plus any class seen only in per-class rows of the epochs after ``done`` (no run_start names)."""
    seen = set(names)
    extra = [
        str(row.get("name"))
        for e in log.epochs[done:]
        for row in e.get("per_class") or []
        if str(row.get("name")) not in seen and not seen.add(str(row.get("name")))
    ]
    return names + extra if extra else names


@dataclass(frozen=True)
class ClassRow:
    """One class at the last epoch: its metrics, train label count, presence in val and recent change of F1."""

    id: int
    name: str
    train_count: int | None
    present: bool
    precision: float | None
    recall: float | None
    f1: float | None
    ap50: float | None
    ap: float | None
    change: float | None  # F1 at the last epoch minus F1 CHANGE_EPOCHS epochs earlier (or the first epoch)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def class_rows(log: RunLog, train_counts: Sequence[int] | None = None, last_n: int = CHANGE_EPOCHS) -> list[ClassRow]:
    """One :class:`ClassRow` per class, in id order (empty before the first epoch)."""
    if not log.epochs:
        return []
    names, _, f1 = matrix(log, "f1")
    last = {row.get("name"): row for row in log.epochs[-1].get("per_class") or []}
    then = max(0, len(log.epochs) - 1 - last_n)
    rows = []
    for i, name in enumerate(names):
        row = last.get(name, {})
        now, before = f1[i, -1], f1[i, then]
        rows.append(
            ClassRow(
                id=int(row.get("id", i)),
                name=name,
                train_count=int(train_counts[i]) if train_counts is not None and i < len(train_counts) else None,
                present=bool(row.get("present", False)),
                **{k: _num(row.get(k)) for k in KEYS},
                change=float(now - before) if np.isfinite(now) and np.isfinite(before) and then < f1.shape[1] - 1
                else None,
            )
        )  # fmt: skip
    return rows


def change_epochs(log: RunLog, last_n: int = CHANGE_EPOCHS) -> int:
    """How many epochs :attr:`ClassRow.change` spans: ``last_n``, fewer while the run has not had that many more
    epochs than its first (3 at epoch 4, 0 at epoch 1)."""
    return min(last_n, max(len(log.epochs) - 1, 0))


def sort_rows(rows: Sequence[ClassRow], by: str = "f1") -> list[ClassRow]:
    """Rows by F1 (worst first), by frequency (rarest first), by change (largest move first) or by id."""
    if by == "id":
        return sorted(rows, key=lambda r: r.id)
    if by == "f1":
        return sorted(rows, key=lambda r: (not r.present, _or(r.f1, 2.0), r.id))
    if by == "frequency":
        return sorted(rows, key=lambda r: (_or(r.train_count, float("inf")), r.id))
    if by == "change":
        return sorted(rows, key=lambda r: (-abs(_or(r.change, 0.0)), r.id))
    raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {by!r}")


def default_classes(rows: Sequence[ClassRow], k: int = SHOWN) -> dict[str, str]:
    """The classes drawn by default (at most ``k``) and why each: the worst F1 among classes present in val, the
    rarest in train, the largest recent change, taken in turn. All classes when there are no more than ``k``."""
    if len(rows) <= k:
        return {r.name: "all classes" for r in rows}
    queues = {
        "lowest F1": [r for r in sort_rows(rows, "f1") if r.present],
        "rarest in train": sort_rows(rows, "frequency") if any(r.train_count is not None for r in rows) else [],
        "largest change": [r for r in sort_rows(rows, "change") if r.change],
    }
    picked: dict[str, str] = {}
    while len(picked) < k and any(queues.values()):
        for reason, queue in queues.items():
            while queue and queue[0].name in picked:
                queue.pop(0)
            if queue and len(picked) < k:
                picked[queue.pop(0).name] = reason
    return picked


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _or(v, default):
    return default if v is None else v
