"""The doctor's rules: one registry row per rule (id, severity, thresholds, why), and what a rule is given.

A rule is a function ``check(ctx: Context) -> Finding | None`` registered with :func:`rule`. Its thresholds are named
module constants of its family's module (:mod:`~trainers.doctor.training`, :mod:`~trainers.doctor.classes`,
:mod:`~trainers.doctor.data`), listed in its row so docs/doctor.md and the tests can name them. Rules read the epoch
events only (each carries its ``steps`` summary and ``system`` readings), never the step store, so a diagnosis costs
the same for a 300-step and a 3M-step run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.doctor.finding import Finding, Severity
from trainers.train_args import train_value

if TYPE_CHECKING:
    from trainers.doctor.dataset_facts import DatasetFacts
    from trainers.telemetry.run_log import RunLog


@dataclass(frozen=True)
class Rule:
    """One registry row.

    Attributes:
        id: ``<family>.<name>``, the id of the findings it makes.
        severity: The severity of its findings.
        title: What it looks for, in a few words (docs and the UI's rule list).
        thresholds: Name of each module constant it uses -> its value.
        why: Why those thresholds (one or two sentences; docs/doctor.md prints it).
        check: The rule itself.
        live: Whether the ``doctor_stop`` customization also runs it after every epoch of a training run.
        needs_dataset: Whether it needs the dataset facts (skipped when ``diagnose`` gets none).
        needs_evidence: Whether it reads the run folder's per-epoch evidence (skipped when ``diagnose`` gets no run
            folder).
    """

    id: str
    severity: Severity
    title: str
    thresholds: Mapping[str, Any]
    why: str
    check: Callable[[Context], Finding | None]
    live: bool = False
    needs_dataset: bool = False
    needs_evidence: bool = False


RULES: dict[str, Rule] = {}


def rule(
    id: str,  # noqa: A002 (the finding's field is called id)
    severity: Severity,
    title: str,
    thresholds: Mapping[str, Any],
    why: str,
    *,
    live: bool = False,
    needs_dataset: bool = False,
    needs_evidence: bool = False,
) -> Callable[[Callable[[Context], Finding | None]], Callable[[Context], Finding | None]]:
    """Register the decorated function as the rule ``id``."""

    def register(check: Callable[[Context], Finding | None]) -> Callable[[Context], Finding | None]:
        if id in RULES:
            raise ValueError(f"doctor rule {id!r} is already registered")
        RULES[id] = Rule(id, severity, title, dict(thresholds), why, check, live, needs_dataset, needs_evidence)
        return check

    return register


@dataclass
class Context:
    """What a rule is given: the folded log, the dataset facts (or None), the recipe the run was trained with and the
    run folder (or None), whose ``evidence/`` the prediction rules read.

    Derived values are computed once per diagnosis and shared by the rules (``cached_property``).
    """

    log: RunLog
    dataset: DatasetFacts | None = None
    run_dir: Path | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def start(self) -> dict[str, Any]:
        """The latest ``run_start`` (``{}`` before one is read)."""
        return self.log.run_starts[-1] if self.log.run_starts else {}

    @cached_property
    def recipe(self) -> dict[str, Any]:
        """The recipe as the run recorded it (``Recipe.to_dict()``: every customization setting explicit)."""
        recipe = self.start.get("recipe")
        return recipe if isinstance(recipe, dict) else {}

    @cached_property
    def train(self) -> dict[str, Any]:
        return self.recipe.get("train") or {}

    @cached_property
    def customizations(self) -> dict[str, Any]:
        return self.recipe.get("customizations") or {}

    def train_value(self, key: str) -> Any:
        """The value the run used for training argument ``key`` (the recipe's, else ultralytics' default)."""
        return train_value(self.train, key)

    @property
    def epochs(self) -> list[dict[str, Any]]:
        """The standing epoch events (not the final evaluation), in epoch order."""
        return self.log.epochs

    @cached_property
    def names(self) -> list[str]:
        return list(self.log.names)

    @cached_property
    def stepped(self) -> list[dict[str, Any]]:
        """The epochs that carry a ``steps`` summary with a grad-norm block, in epoch order."""
        return [e for e in self.epochs if isinstance(e.get("steps"), dict) and e["steps"].get("grad_norm")]


# ---- helpers shared by the rule modules --------------------------------------------------------------------------
def num(value: Any) -> float | None:
    """``value`` as a finite float, else None (null, NaN, bool, text)."""
    kind = type(value)
    if kind is float:  # the common case first: rules call this for every epoch's numbers on each dashboard refresh
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric(epoch: Mapping[str, Any], key: str) -> float | None:
    """A ``metrics`` value of an epoch event (None where missing or null)."""
    return num((epoch.get("metrics") or {}).get(key))


def step_range(epoch: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(first, last)`` global steps of an epoch event, from its steps summary."""
    steps = epoch.get("steps") or {}
    first, last = steps.get("first"), steps.get("last")
    return (int(first), int(last)) if isinstance(first, int) and isinstance(last, int) else None


def nice(x: float) -> float:
    """``x`` rounded to the nearest 1, 2, 2.5 or 5 times a power of ten (221.8 -> 200.0, 0.04 -> 0.05)."""
    if not x > 0 or not math.isfinite(x):
        return x
    power = 10.0 ** math.floor(math.log10(x))
    candidates = [m * power for m in (1, 2, 2.5, 5, 10)]
    best = min(candidates, key=lambda c: abs(c - x))
    return float(f"{best:.6g}")


def fmt(x: float | None) -> str:
    """A number for evidence text: 212, 1360, 0.937, 6.2e+06, 4e-05."""
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.2g}"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def epochs_text(epochs: Sequence[int]) -> str:
    """``epoch 3`` or ``epochs 3-7`` (a contiguous range) or ``epochs 2, 5``."""
    epochs = list(epochs)
    if not epochs:
        return "no epoch"
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return "epochs " + ", ".join(map(str, epochs))
