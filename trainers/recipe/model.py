"""The recipe: one typed, validated description of a training run, round-tripping to YAML.

The UI, the CLI and the tests all build runs through :class:`Recipe`, and the composed trainer carries the validated
object (``trainer.recipe``), so a setting can be followed from the form to the hook that uses it. Errors are raised
as :class:`~trainers.errors.RecipeError` with one :class:`~trainers.errors.Problem` (field path, message, fix) per
thing wrong.

Example::

    model: yolo26n.yaml
    data: assets/demo/data.yaml
    train: {epochs: 10, imgsz: 128, batch: 16}
    customizations:
      per_class_f1: {}
      grad_clip: {max_norm: 5.0}

A customization is on when its block is present (``{}`` or ``null`` turns it on with defaults). Which blocks exist,
their settings and their defaults come from the customization table (:mod:`trainers.customizations`). This module
never imports torch or ultralytics: the UI validates recipes on every keystroke.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from trainers import customizations as table
from trainers.datasets.ultralytics_datasets import packaged_yaml
from trainers.errors import Problem, RecipeError
from trainers.train_args import check_train_args

BUILTIN_MODEL_RE = re.compile(r"^(yolo26|yolo11|yolov8|yolov9|yolov10|yolo12|rtdetr)[-\w]*\.(yaml|pt)$", re.I)


class Customizations(Mapping[str, table.Settings]):
    """The enabled customizations: recipe key -> typed settings, in the table's listing order.

    ``recipe.customizations.grad_clip`` is the :class:`GradClip` settings, or None when the block is off (any key of
    the table works; another name raises ``AttributeError``). ``"grad_clip" in recipe.customizations`` tells
    whether it is on.
    """

    __slots__ = ("_blocks",)

    def __init__(self, blocks: Mapping[str, table.Settings] | None = None):
        blocks = dict(blocks or {})
        order = table.keys()
        self._blocks = {k: blocks[k] for k in order if k in blocks}

    def __getattr__(self, key: str) -> table.Settings | None:
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in table.keys():
            raise AttributeError(f"no customization named {key!r}; the table has {', '.join(table.keys())}")
        return self._blocks.get(key)

    def __getitem__(self, key: str) -> table.Settings:
        return self._blocks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Customizations) and self._blocks == other._blocks

    def __hash__(self) -> int:
        return hash(tuple(self._blocks.items()))

    def __repr__(self) -> str:
        return f"Customizations({self._blocks!r})"

    def __reduce__(self):
        return Customizations, (self._blocks,)

    def enabled(self) -> list[str]:
        """Keys of the enabled customizations, in listing order (the composition order is the table's ``rank``)."""
        return list(self._blocks)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{key: settings as plain data}`` with every parameter explicit."""
        return {k: v.model_dump(mode="json") for k, v in self._blocks.items()}

    @classmethod
    def validate(cls, value: Any) -> Customizations:
        """Validate a ``customizations:`` mapping against the table; every problem is reported with its path."""
        if isinstance(value, Customizations):
            return value
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise PydanticCustomError(
                "workbench", "{message}", {"message": "customizations: must be a mapping of block name to settings"}
            )
        blocks: dict[str, table.Settings] = {}
        errors: list[InitErrorDetails] = []
        for key, settings in value.items():
            if key not in table.keys():
                errors.append(
                    InitErrorDetails(type="extra_forbidden", loc=(str(key),), input=settings)  # names allowed keys
                )
                continue
            try:  # `grad_clip:` with no value parses as None: presence of the key means "on, with defaults"
                blocks[key] = table.row(key).settings.model_validate({} if settings is None else settings)
            except ValidationError as e:
                errors += [_relocated(err, (key, *err["loc"])) for err in e.errors()]
        if errors:
            raise ValidationError.from_exception_data("customizations", errors)
        return cls(blocks)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda c: c.to_dict())
        )


def _relocated(err: Any, loc: tuple) -> InitErrorDetails:
    """A pydantic error re-raised under another location, keeping its type, message and context."""
    details = InitErrorDetails(type=err["type"], loc=loc, input=err.get("input"))
    if err.get("ctx"):
        details["ctx"] = err["ctx"]
    return details


class EvidenceSettings(BaseModel):
    """What each validation keeps as evidence (docs/telemetry.md, "Evidence"): the sample of val images whose
    ground-truth and predicted boxes are kept; the confusion counts and PR curves are always kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: int = Field(16, ge=0, le=256, description="val images whose boxes are kept at each validation (0: none)")


class NotifySettings(BaseModel):
    """Where a run's alerts go (docs/recipe.md, "Alerts"): one JSON message per event, Slack-compatible ``text`` plus
    the structured fields; delivered by :mod:`trainers.runs.notify`, never blocking training."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(..., description="http(s) URL the messages are POSTed to (a Slack incoming webhook works)")
    on: tuple[Literal["end", "critical"], ...] = Field(
        ("end", "critical"), description="end: the run ended, however it ended; critical: a critical doctor finding"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://hooks.slack.com/...")
        return v

    @field_validator("on")
    @classmethod
    def _on(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("name at least one of end, critical (or remove the notify block)")
        return tuple(dict.fromkeys(v))


class Recipe(BaseModel):
    """What the user chose: model, dataset, ultralytics training arguments and customizations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(..., description="built-in YAML (yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml) or a local .pt")
    data: str = Field(..., description="path to a data.yaml")
    train: dict[str, Any] = Field(default_factory=dict, description="ultralytics training arguments")
    customizations: Customizations = Field(default_factory=Customizations)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings, description="per-validation evidence kept")
    notify: NotifySettings | None = Field(None, description="alerts on run end and critical findings (off: None)")

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> dict[str, Any]:
        # `evidence` is written only when it differs from its defaults: recipes that never set it stay as they were
        data = handler(self)
        if self.evidence == EvidenceSettings():
            data.pop("evidence", None)
        if self.notify is None:  # likewise `notify`, which is off unless set
            data.pop("notify", None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _run_defaults(cls, data: Any) -> Any:
        # Some defaults depend on the run (freeze.frozen_epochs: a share of train.epochs): filled in where a block
        # leaves the field out, before the blocks are validated, so the recipe carries them explicitly.
        if not isinstance(data, Mapping) or not isinstance(data.get("customizations"), Mapping):
            return data
        train = data.get("train") if isinstance(data.get("train"), Mapping) else {}
        blocks = {
            key: {**table.row(key).settings.run_defaults(train), **(block or {})}
            if key in table.keys() and (block is None or isinstance(block, Mapping))
            else block
            for key, block in data["customizations"].items()
        }
        return {**data, "customizations": blocks}

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().endswith((".yaml", ".yml", ".pt")):
            raise ValueError(f"'{v}' must be a model YAML (e.g. yolo26n.yaml, rtdetr-l.yaml) or a .pt checkpoint")
        return v

    @field_validator("data")
    @classmethod
    def _data(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().endswith((".yaml", ".yml")):
            raise ValueError(f"'{v}' must be a data.yaml file")
        return v

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_train_args(v)

    @model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        # Rules that need more than one block live with their customization (its table row's `check`).
        problems = [
            p
            for key, settings in self.customizations.items()
            if table.row(key).check is not None
            for p in table.row(key).check(settings, self)
        ]
        if problems:
            raise ValidationError.from_exception_data(
                "Recipe",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("workbench", "{message}", {"message": p.message, "fix": p.fix}),
                        loc=tuple(p.field.split(".")) if p.field else (),
                        input=None,
                    )
                    for p in problems
                ],
            )
        return self

    @property
    def family(self) -> str | None:
        """'rtdetr' or 'yolo' when the model name tells; None for a local .pt (known once it is loaded)."""
        name = Path(self.model).name.lower()
        if "rtdetr" in name:
            return "rtdetr"
        if name.endswith((".yaml", ".yml")) or BUILTIN_MODEL_RE.match(name):
            return "yolo"
        return None

    # ---- YAML round trip -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (enabled customizations only, with every parameter explicit)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "recipe") -> Recipe:
        if not isinstance(data, dict):
            raise RecipeError(Problem("", f"{source}: must be a mapping with keys model, data, train, customizations"))
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise RecipeError(problems_from(e), source) from None

    @classmethod
    def from_yaml(cls, text: str, source: str = "recipe") -> Recipe:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            detail = getattr(e, "problem", None) or e
            raise RecipeError(Problem("", f"{source}: not valid YAML{where}: {detail}")) from None
        return cls.from_dict(data, source)

    def resolve_paths(self, base_dir: str | Path) -> Recipe:
        """Return a copy whose relative local paths (data, .pt/.yaml model files) are resolved against base_dir.

        Built-in model names (``yolo26n.yaml``) and official checkpoint names (``yolo11n.pt``) are left as they are,
        and so are ultralytics' dataset names (``coco8.yaml``): :mod:`trainers.runs.model_zoo` finds them in the
        weights and datasets folders. A file of that name next to the recipe wins.
        """
        base = Path(base_dir)
        data = self.data
        if not Path(data).is_absolute() and ((base / data).exists() or packaged_yaml(data) is None):
            data = str((base / data).resolve())
        model = self.model
        local = base / model
        if not Path(model).is_absolute() and (local.exists() or not BUILTIN_MODEL_RE.match(Path(model).name)):
            model = str(local.resolve())
        return self.model_copy(update={"data": data, "model": model})


def load_recipe(path: str | Path) -> Recipe:
    """Read, validate and path-resolve a recipe file (relative paths are relative to the recipe's folder)."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(Problem("", f"{path}: recipe file not found"))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(Problem("", f"{path}: cannot read recipe ({e.__class__.__name__})")) from None
    return Recipe.from_yaml(text, source=str(path)).resolve_paths(p.resolve().parent)


# ---- validation errors -> problems -------------------------------------------------------------------------------
def problems_from(e: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, each message naming its dotted field path."""
    problems = []
    for err in e.errors():
        loc = tuple(str(x) for x in err["loc"] if not str(x).startswith(("function-", "literal[")))
        path = ".".join(loc)
        ctx = err.get("ctx") or {}
        if err["type"] == "workbench":
            message, fix = ctx.get("message", err["msg"]), ctx.get("fix")
            if path and not message.startswith(path):
                message = f"{path}: {message}"
            problems.append(Problem(path, message, fix))
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            msg = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        elif err["type"] == "missing":
            msg = "required"
        elif (
            "input" in err
            and err["type"] not in {"value_error", "assertion_error"}
            and not isinstance(err["input"], dict)
        ):
            msg = f"{msg} (got {err['input']!r})"
        # Messages from our own validators may start with the full field path already ("train.epochs must ...").
        field = _message_field(msg) if _message_field(msg).startswith(path) else path
        problems.append(Problem(field, f"{path}: {msg}" if path and not msg.startswith(f"{path}.") else msg))
    return list(dict.fromkeys(problems))


def _message_field(msg: str) -> str:
    head = msg.split(" ", 1)[0].rstrip(":")
    return head if re.fullmatch(r"[\w\-]+(\.[\w\-/]+)+", head) else ""


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    """The keys allowed where an unknown key was found (``()``: the recipe's; ``("customizations",)``: the table)."""
    if loc == ():
        return list(Recipe.model_fields)
    if loc == ("customizations",):
        return list(table.keys())
    if len(loc) == 2 and loc[0] == "customizations" and loc[1] in table.keys():
        return list(table.row(loc[1]).settings.model_fields)
    return []
