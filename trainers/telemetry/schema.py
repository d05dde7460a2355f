"""The documented telemetry schema (``docs/telemetry.md``) as data, and a checker for one event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainers.metrics import PER_CLASS_COLUMNS
from trainers.statuses import ENDED
from trainers.telemetry.events import SCHEMA_VERSION


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# The type names used in the schema tables below and in docs/telemetry.md. "|null" because NaN/inf are written as null.
_NUM_OR_NULL = "number|null"
_TYPES: dict[str, Any] = {
    "int": _is_int,
    "int|null": lambda v: v is None or _is_int(v),
    "number": _is_num,
    _NUM_OR_NULL: lambda v: v is None or _is_num(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "str|null": lambda v: v is None or isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "object|null": lambda v: v is None or isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "list[str]|null": lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "list[int]": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
    "{str: number|null}": lambda v: isinstance(v, dict) and all(x is None or _is_num(x) for x in v.values()),
}

COMMON_FIELDS = {"v": "int", "event": "str", "t": "number"}
EVENT_FIELDS: dict[str, dict[str, str]] = {
    "run_start": {
        "recipe": "object",
        "names": "list[str]",
        "param_groups": "list[str]",
        "versions": "object",
        "device": "str",
        "pid": "int",
        "epochs": "int",
        "start_epoch": "int",
        "resumed": "bool",
        "world_size": "int",
    },
    "step": {
        "epoch": "int",
        "step": "int",
        "lr": "{str: number|null}",
        "grad_norm": _NUM_OR_NULL,
        "grad_norms": "{str: number|null}",
        "clipped": "bool",
        "max_norm": _NUM_OR_NULL,
        "loss": "{str: number|null}",
    },
    "epoch": {
        "epoch": "int",
        "final_eval": "bool",
        "metrics": "{str: number|null}",
        "per_class": "list",  # checked item by item below
        "mean_f1": _NUM_OR_NULL,
        "fitness": _NUM_OR_NULL,
        "best_fitness": _NUM_OR_NULL,
        "best_saved": "bool",
        "params": "object",
        "lr": "{str: number|null}",
        "epoch_time": _NUM_OR_NULL,
    },
    "freeze": {"epoch": "int", "layers": "list[int]", "params": "int"},
    "unfreeze": {"epoch": "int", "layers": "list[int]", "params": "int"},
    "run_end": {
        "status": "str",
        "best_epoch": "int|null",
        "best_metric": "object|null",
        "paths": "object",
        "error": "str|null",
        "traceback": "list[str]|null",
    },
}
VERSION_KEYS = ("workbench", "ultralytics", "torch", "python")
PER_CLASS_FIELDS = {
    "id": "int",
    "name": "str",
    **dict.fromkeys(PER_CLASS_COLUMNS, _NUM_OR_NULL),  # precision, recall, f1, ap50, ap
    "present": "bool",
}


def _check_fields(obj: Mapping[str, Any], spec: Mapping[str, str], where: str) -> list[str]:
    problems = []
    for key, kind in spec.items():
        if key not in obj:
            problems.append(f"{where}.{key}: required ({kind})")
        elif not _TYPES[kind](obj[key]):
            problems.append(f"{where}.{key}: must be {kind}, got {obj[key]!r:.60}")
    return problems


def validate_event(ev: Any, names: Iterable[str] | None = None) -> list[str]:
    """Check one event against the documented schema (``docs/telemetry.md``).

    Extra fields are allowed. An unknown event type is checked for the common fields only, since readers must
    ignore types they do not know.

    Args:
        ev: A decoded event.
        names: Class names by id (from ``run_start``); when given, an ``epoch`` event's ``per_class`` must list
            exactly these classes, in id order.

    Returns:
        One ``"<event>.<field>: <problem>"`` line per problem; empty when the event is valid.
    """
    if not isinstance(ev, dict):
        return [f"event: must be a JSON object, got {type(ev).__name__}"]
    kind = ev.get("event")
    where = kind if isinstance(kind, str) else "event"
    problems = _check_fields(ev, COMMON_FIELDS, where)
    if ev.get("v") != SCHEMA_VERSION and "v" in ev:
        problems.append(f"{where}.v: must be {SCHEMA_VERSION}, got {ev['v']!r}")
    spec = EVENT_FIELDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        return problems
    problems += _check_fields(ev, spec, where)

    if kind == "run_start":
        if isinstance(ev.get("versions"), dict):
            problems += [f"run_start.versions.{k}: required" for k in VERSION_KEYS if k not in ev["versions"]]
        if isinstance(ev.get("start_epoch"), int) and ev["start_epoch"] < 1:
            problems.append("run_start.start_epoch: must be >= 1 (epochs are 1-based)")
    elif kind == "step":
        for key in ("epoch", "step"):
            if _is_int(ev.get(key)) and ev[key] < 1:
                problems.append(f"step.{key}: must be >= 1 (1-based)")
    elif kind == "epoch":
        if _is_int(ev.get("epoch")) and ev["epoch"] < 1:
            problems.append("epoch.epoch: must be >= 1 (1-based)")
        if isinstance(ev.get("params"), dict):
            problems += _check_fields(ev["params"], {"trainable": "int", "frozen": "int"}, "epoch.params")
        per_class = ev.get("per_class")
        if isinstance(per_class, list):
            for i, row in enumerate(per_class):
                if not isinstance(row, dict):
                    problems.append(f"epoch.per_class[{i}]: must be an object")
                    continue
                problems += _check_fields(row, PER_CLASS_FIELDS, f"epoch.per_class[{i}]")
            if names is not None:
                expected = [[i, n] for i, n in enumerate(names)]
                got = [[row.get("id"), row.get("name")] for row in per_class if isinstance(row, dict)]
                if got != expected:
                    problems.append(
                        f"epoch.per_class: must list every class in id order ({len(expected)} classes), "
                        f"got {len(got)} rows"
                    )
    elif kind == "run_end":
        if isinstance(ev.get("status"), str) and ev["status"] not in ENDED:
            problems.append(f"run_end.status: must be one of {', '.join(ENDED)}, got {ev['status']!r}")
        if isinstance(ev.get("best_metric"), dict):
            problems += _check_fields(ev["best_metric"], {"name": "str", "value": _NUM_OR_NULL}, "run_end.best_metric")
        if isinstance(ev.get("paths"), dict):
            problems += _check_fields(
                ev["paths"], {"best": "str|null", "last": "str|null", "results": "str|null"}, "run_end.paths"
            )
    return problems
