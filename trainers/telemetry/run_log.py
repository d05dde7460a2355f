"""A run's telemetry folded for reading: the model the dashboard, the CLI, the doctor and the training process share.

The events (``run_start``, ``epoch``, ``freeze``/``unfreeze``, ``run_end``) are kept as they are, and what a resumed
attempt redid is dropped (:func:`drop_superseded`): a resumed process appends a ``run_start`` with ``start_epoch: k``
and everything earlier attempts wrote about epochs ``>= k`` is superseded. This is the one place that rule is applied
to events; the step store applies the same rule to steps by step number (docs/step-store.md).

Per-step series are in :attr:`RunLog.steps` (:class:`~trainers.telemetry.step_data.StepData`): the step store when
the run has one (:mod:`trainers.telemetry.run_reader` attaches it), else ``step`` events folded from the log itself
(logs written before the store existed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from trainers.statuses import RunStatus
from trainers.telemetry.step_data import MemorySteps, StepData


# ---- superseded events ---------------------------------------------------------------------------------------------
def drop_superseded(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop events of an interrupted epoch that a resumed run redid.

    A resumed process appends a ``run_start`` with ``start_epoch: k`` (1-based): it restarts epoch ``k`` from the
    last checkpoint. ``step``, ``epoch``, ``freeze`` and ``unfreeze`` events with ``epoch >= k`` written *before*
    that ``run_start`` belong to the interrupted attempt and are superseded by what follows it.

    Args:
        events: Events in file order.

    Returns:
        The events that stand, in file order.
    """
    kept: list[Mapping[str, Any]] = []
    for ev in events:
        if ev.get("event") == "run_start" and kept:
            k = _int(ev.get("start_epoch"), 1)
            kept = [e for e in kept if not (e.get("event") in _EPOCH_SCOPED and _int(e.get("epoch"), 0) >= k)]
        kept.append(ev)
    return kept


_EPOCH_SCOPED = ("step", "epoch", "freeze", "unfreeze")


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _last_saved(kept: list, new: list[dict]) -> list:
    """``[last epoch that saved best.pt]`` after ``new`` epochs (``[]``: none yet)."""
    return [*kept, *(e["epoch"] for e in new if e.get("best_saved") and _int(e.get("epoch"), 0) > 0)][-1:]


# ---- the folded log ------------------------------------------------------------------------------------------------
@dataclass
class RunLog:
    """A run's telemetry folded for charting; build with :meth:`from_events`, grow with :meth:`extend`.

    Attributes:
        names: Class names by id (from the latest ``run_start``).
        run_starts: Every ``run_start`` (one per process: the first start and each resume).
        epochs: Standing per-epoch events (not ``final_eval``), ordered by epoch, one per epoch.
        final_eval: The ``final_eval`` epoch event (validation of best.pt), if any.
        freezes: Standing ``freeze`` events. unfreezes: standing ``unfreeze`` events.
        run_end: The ``run_end`` of the latest attempt (None while it runs).
        n_events: Events folded so far.
        steps: The per-step series (the step store, or ``step`` events of an older log).
    """

    names: list[str] = field(default_factory=list)
    run_starts: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    final_eval: dict | None = None
    freezes: list[dict] = field(default_factory=list)
    unfreezes: list[dict] = field(default_factory=list)
    run_end: dict | None = None
    n_events: int = 0
    steps: StepData = field(default_factory=MemorySteps, repr=False)
    epochs_rev: int = 0  # bumped when standing epochs are replaced or dropped (not when one is appended)
    derived: dict = field(default_factory=dict, repr=False)  # per-class matrices, grown with the epochs; shared

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> RunLog:
        """Fold events (in file order) into a new log."""
        log = cls()
        log.extend(events)
        return log

    # ---- folding ---------------------------------------------------------------------------------------------
    def extend(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Fold more events, in file order, as read incrementally from the log (same result as one big call)."""
        events = events if isinstance(events, list) else list(events)
        try:
            kinds = list(map(itemgetter("event"), events))
        except KeyError:
            kinds = [ev.get("event") for ev in events]
        # Runs of consecutive steps are folded in one columnar batch; the few other events one by one.
        others = np.flatnonzero(np.array(kinds, dtype=object) != "step").tolist()
        start = 0
        for i in [*others, len(events)]:
            if i > start:
                self._append_steps(events[start:i])
                self.n_events += i - start
            if i < len(events):
                self._other(events[i])
                self.n_events += 1
            start = i + 1

    def _other(self, ev: Mapping[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "run_start":
            self._start(ev)
        elif kind == "epoch":
            self._epoch(ev)
        elif kind == "freeze":
            self.freezes.append(dict(ev))
        elif kind == "unfreeze":
            self.unfreezes.append(dict(ev))
        elif kind == "run_end":
            self.run_end = dict(ev)
        # unknown event types are counted and otherwise ignored (docs/telemetry.md: readers skip them)

    def _start(self, ev: Mapping[str, Any]) -> None:
        if self.run_starts:  # a resume: drop what the interrupted attempt wrote about epochs it redoes
            k = _int(ev.get("start_epoch"), 1)
            kept = [e for e in self.epochs if _int(e.get("epoch"), 0) < k]
            if len(kept) != len(self.epochs):
                self.epochs, self.epochs_rev = kept, self.epochs_rev + 1
            self.freezes = [e for e in self.freezes if _int(e.get("epoch"), 0) < k]
            self.unfreezes = [e for e in self.unfreezes if _int(e.get("epoch"), 0) < k]
            if isinstance(self.steps, MemorySteps) and self.steps.n_steps:
                self.steps.keep(self.steps.column("epoch") < k)
        self.run_starts.append(dict(ev))
        self.run_end = None
        if isinstance(ev.get("names"), list):
            self.names = [str(n) for n in ev["names"]]

    def _epoch(self, ev: Mapping[str, Any]) -> None:
        if ev.get("final_eval"):
            self.final_eval = dict(ev)
            return
        e = _int(ev.get("epoch"), 0)
        if any(x.get("epoch") == e for x in self.epochs):  # an epoch logged again replaces the earlier record
            self.epochs = [x for x in self.epochs if x.get("epoch") != e]
            self.epochs_rev += 1
        self.epochs.append(dict(ev))
        if len(self.epochs) > 1 and self.epochs[-2].get("epoch", 0) > e:
            self.epochs.sort(key=lambda x: _int(x.get("epoch"), 0))
            self.epochs_rev += 1

    def _append_steps(self, steps: Sequence[Mapping[str, Any]]) -> None:
        # Columnar, C-level passes (itemgetter + numpy.fromiter): 300k steps fold in about half a second.
        # Step losses are not folded: the charts draw losses per epoch (train and val side by side).
        if not isinstance(self.steps, MemorySteps):
            return  # the run has a step store; stray step events are not mixed in
        n = len(steps)
        core = _table(steps, _CORE_FIELDS)
        values = {name: core[:, i] for i, name in enumerate(_CORE_FIELDS)}
        for prefix, key in (("lr/", "lr"), ("grad_norm/", "grad_norms")):
            dicts = _dicts(steps, key)
            try:
                names = list(dict.fromkeys(chain(dicts[0], dicts[-1])))
                same = set(map(len, dicts)) == {len(names)}
            except TypeError:  # a null or non-object value: sanitize (slow, never written by the trainer)
                dicts = [d if isinstance(d, dict) else {} for d in dicts]
                names, same = [], False
            if not same:  # keys differ between steps: take the union
                names = list(dict.fromkeys(chain.from_iterable(dicts)))
            table = _table(dicts, names)
            values.update({prefix + name: table[:, i] for i, name in enumerate(names)})
        self.steps.append(n, values)

    def snapshot(self) -> RunLog:
        """An independent copy (for reading while another thread extends the original)."""
        return RunLog(
            names=list(self.names),
            run_starts=list(self.run_starts),
            epochs=list(self.epochs),
            final_eval=self.final_eval,
            freezes=list(self.freezes),
            unfreezes=list(self.unfreezes),
            run_end=self.run_end,
            n_events=self.n_events,
            steps=self.steps.copy() if isinstance(self.steps, MemorySteps) else self.steps,  # the store is shared
            epochs_rev=self.epochs_rev,
            derived=self.derived,  # entries are never changed in place: a snapshot's view stays valid
        )

    # ---- reading ---------------------------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return self.steps.n_steps

    @property
    def groups(self) -> list[str]:
        """Parameter-group names, from the latest ``run_start`` then any others seen in steps."""
        declared = self.run_starts[-1].get("param_groups") if self.run_starts else None
        return list(dict.fromkeys([*(declared or []), *self.steps.groups]))

    def _grown(self, key: Any, fold: Callable[[list, list[dict]], list]) -> list:
        """A per-epoch series kept in ``derived``: ``fold(values, new_epochs)`` extends it by the epochs appended since
        it was computed (from scratch when standing epochs were replaced), so a refresh after one new epoch folds one
        epoch, not the run. Returns a copy (callers may change it)."""
        n = len(self.epochs)
        cached = self.derived.get(key)
        valid = cached is not None and cached[0] == self.epochs_rev and cached[1] <= n
        done, values = (cached[1], cached[2]) if valid else (0, [])
        if not valid or done < n:
            values = fold(list(values), self.epochs[done:])
            self.derived[key] = (self.epochs_rev, n, values)
        return list(values)

    @property
    def epoch_numbers(self) -> list[int]:
        return self._grown("epoch_numbers", lambda v, new: v + [_int(e.get("epoch"), 0) for e in new])

    def epoch_metric(self, key: str) -> list[float | None]:
        """``key`` of every standing epoch: a ``metrics`` name (``metrics/mAP50(B)``) or a top-level field."""
        return self._grown(
            ("metric", key), lambda v, new: v + [_num(e.get("metrics", {}).get(key) if key not in e else e.get(key))
                                                 for e in new]
        )  # fmt: skip

    def metric_keys(self) -> list[str]:
        new_keys = lambda new: (k for e in new for k in e.get("metrics") or {})  # noqa: E731
        return self._grown("metric_keys", lambda v, new: list(dict.fromkeys(chain(v, new_keys(new)))))

    @property
    def best_epoch(self) -> int | None:
        """The epoch best.pt comes from: the run_end's, else the latest epoch that saved best.pt."""
        if self.run_end is not None and _int(self.run_end.get("best_epoch"), 0) > 0:
            return self.run_end["best_epoch"]
        saved = self._grown("best_saved", _last_saved)  # kept with the epochs: the charts ask several times a refresh
        return saved[-1] if saved else None

    @property
    def unfreeze_epoch(self) -> int | None:
        return (_int(self.unfreezes[-1].get("epoch"), 0) or None) if self.unfreezes else None

    @property
    def epochs_planned(self) -> int | None:
        return (_int(self.run_starts[-1].get("epochs"), 0) or None) if self.run_starts else None

    @property
    def status(self) -> str:
        """``running`` (or ``empty`` before anything is written), else the latest run_end's status."""
        if self.run_end is not None:
            return str(self.run_end.get("status", RunStatus.FAILED))
        return str(RunStatus.RUNNING if self.n_events else RunStatus.EMPTY)

    def per_class(self, key: str = "f1") -> dict[str, list[float | None]]:
        """Class name -> ``key`` (f1, precision, recall, ap50, ap) per standing epoch (None where it has none)."""
        names = list(self.names)
        for e in self.epochs:
            for row in e.get("per_class") or []:
                if row.get("name") not in names:
                    names.append(row.get("name"))
        table: dict[str, list[float | None]] = {n: [] for n in names}
        for e in self.epochs:
            by_name = {row.get("name"): row for row in e.get("per_class") or []}
            for n in names:
                table[n].append(_num((by_name.get(n) or {}).get(key)))
        return table

    def clip_share(self) -> float | None:
        """Fraction of standing steps whose pre-clip gradient norm exceeded the clip threshold (None: no steps)."""
        return self.steps.mean("clipped")

    @property
    def completed_steps(self) -> int:
        """Global optimizer steps of the epochs that finished (a resume redoes the steps of an interrupted epoch).

        Epoch events say it (``step``: the global step when the epoch ended); older logs only through their steps.
        """
        if self.epochs and _int(self.epochs[-1].get("step"), -1) >= 0:
            return int(self.epochs[-1]["step"])
        done = max(self.epoch_numbers, default=0)
        if not isinstance(self.steps, MemorySteps) or not self.n_steps or not done:
            return 0
        steps = self.steps.column("step")[self.steps.column("epoch") <= done]
        return int(np.nanmax(steps)) if steps.size else 0

    @property
    def failure(self) -> dict | None:
        """The failed run_end (with ``error`` and ``traceback``) of the latest attempt, else None."""
        return self.run_end if self.run_end is not None and self.run_end.get("status") == RunStatus.FAILED else None


_CORE_FIELDS = ("epoch", "step", "grad_norm", "clipped", "max_norm")  # of a step event, as step-store columns


def _dicts(steps: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """``step[key]`` of every step (None where missing)."""
    try:
        return list(map(itemgetter(key), steps))
    except KeyError:
        return [s.get(key) for s in steps]


def _table(rows: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """``rows x names`` float array of ``row[name]``; missing keys and non-numbers become NaN, booleans 0/1."""
    n, k = len(rows), len(names)
    if not k:
        return np.empty((n, 0))
    get = itemgetter(*names)
    try:  # fast path: every row has every name and every value is a number (one pass over the rows)
        values = map(get, rows)
        return np.fromiter(chain.from_iterable(values) if k > 1 else values, dtype=float, count=n * k).reshape(n, k)
    except (KeyError, TypeError, ValueError):
        pass
    if k > 1:  # column by column, so that only the columns with nulls take the slower paths
        return np.column_stack([_table(rows, [name])[:, 0] for name in names])
    try:
        return np.array(list(map(get, rows)), dtype=float).reshape(n, 1)  # nulls become NaN
    except (KeyError, TypeError, ValueError):
        pass
    name = names[0]
    return np.array(
        [_num(r.get(name), bool_ok=True) if isinstance(r, dict) else None for r in rows], dtype=float
    ).reshape(n, 1)


def _num(v: Any, bool_ok: bool = False) -> float | None:
    if isinstance(v, bool):
        return float(v) if bool_ok else None
    return float(v) if isinstance(v, (int, float)) else None


def as_log(source: RunLog | Iterable[Mapping[str, Any]]) -> RunLog:
    """A :class:`RunLog` from a log or from events."""
    return source if isinstance(source, RunLog) else RunLog.from_events(source)
