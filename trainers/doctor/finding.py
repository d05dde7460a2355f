"""A doctor finding: what looks wrong in a run, the numbers that say so, and what to change.

Plain data (a frozen dataclass of JSON-ready values), so the dashboard, the Runs page, ``workbench doctor --json``
and :func:`trainers.doctor.fixes.apply_fix` all read the same object. Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from trainers.statuses import SEVERITIES, Severity  # defined with the run statuses (label, colour); named here too

__all__ = ["SEVERITIES", "Finding", "Severity", "at_least", "count_by_severity", "findings_text", "severity_rank",
           "severity_count", "sort_findings"]  # fmt: skip


def severity_rank(severity: str) -> int:
    """0 for critical, 1 for warning, 2 for info (sorts the most severe first)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as severe as ``threshold`` or more (``at_least("critical", "warning")`` is True)."""
    return severity_rank(severity) <= severity_rank(threshold)


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found.

    Attributes:
        id: The rule's id (``training.divergence``); one finding per rule and run.
        severity: ``critical`` (the run is broken), ``warning`` (it trains worse than it could) or ``info``.
        title: One line naming what is wrong, with the run's own subject (``Class 'cross' stuck at F1 0``).
        evidence: The numbers, in words, with the epochs and steps they come from.
        fix: What to do, in plain words (and what ``recipe_change`` sets, when there is one).
        numbers: The evidence as data (name -> number, list or string), for tables and tests.
        epochs: Epochs the evidence comes from, the first being where it starts (a chart mark); may be empty.
        steps: ``(first, last)`` global optimizer steps of the epoch where it starts (a band on step charts), or None.
        recipe_change: Dotted recipe key -> new value (``{"customizations.grad_clip.max_norm": 200.0}``; a whole
            block as a dict), or None when the fix is not a recipe setting. ``apply_fix`` applies exactly this.
    """

    id: str
    severity: Severity
    title: str
    evidence: str
    fix: str
    numbers: dict[str, Any] = field(default_factory=dict)
    epochs: tuple[int, ...] = ()
    steps: tuple[int, int] | None = None
    recipe_change: dict[str, Any] | None = None

    @property
    def epoch(self) -> int | None:
        """The epoch where it starts (the chart mark), or None."""
        return self.epochs[0] if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the attribute names as keys (tuples become lists, non-finite numbers null)."""
        out = asdict(self)
        out["epochs"] = list(self.epochs)
        out["steps"] = list(self.steps) if self.steps is not None else None
        return _json_ready(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The finding :meth:`to_dict` wrote (e.g. read back from ``workbench doctor --json``)."""
        steps = data.get("steps")
        return cls(
            id=data["id"],
            severity=data["severity"],
            title=data["title"],
            evidence=data["evidence"],
            fix=data["fix"],
            numbers=dict(data.get("numbers") or {}),
            epochs=tuple(data.get("epochs") or ()),
            steps=(int(steps[0]), int(steps[1])) if steps else None,
            recipe_change=data.get("recipe_change"),
        )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by id: a stable order for the dashboard, the CLI and the tests."""
    return sorted(findings, key=lambda f: (severity_rank(f.severity), f.id))


def count_by_severity(findings: list[Finding]) -> dict[str, int]:
    """``{"critical": n, "warning": n, "info": n}`` (the Runs page's findings count)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


def severity_count(severity: str, n: int) -> str:
    """``1 warning``, ``2 warnings``, ``2 critical``, ``3 info``: how the CLI, the dashboard and the Runs page count."""
    return f"{n} {severity}{'s' if severity == 'warning' and n != 1 else ''}"


def findings_text(findings: list[Finding], run: str) -> str:
    """The findings as ``workbench doctor`` prints them: a count line, then each finding with its evidence and fix."""
    import json

    counts = ", ".join(severity_count(s, n) for s, n in count_by_severity(findings).items())
    lines = [f"run {run!r}: {len(findings)} finding{'s' * (len(findings) != 1)} ({counts})"]
    for f in findings:
        lines += ["", f"{f.severity.upper()}  {f.id}  {f.title}", f"  evidence: {f.evidence}", f"  fix: {f.fix}"]
        lines += [f"  recipe change: {key} = {json.dumps(value)}" for key, value in (f.recipe_change or {}).items()]
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value
