"""The recipe: one typed, validated description of a training run, round-tripping to YAML.

The UI, the CLI and the tests all build runs through :class:`Recipe`. Errors are raised as one-line
:class:`~trainers.errors.RecipeError` messages that start with the dotted field path.

Example::

    model: yolo26n.yaml
    data: assets/demo/data.yaml
    train: {epochs: 10, imgsz: 128, batch: 16}
    customizations:
      per_class_f1: {}
      grad_clip: {max_norm: 5.0}

A customization is on when its block is present (``{}`` or ``null`` turns it on with defaults).
This module never imports torch or ultralytics: the UI validates recipes on every keystroke.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainers.errors import RecipeError

# The written-down order in which customizations compose (outermost first in the MRO). See trainers/compose.py.
CUSTOMIZATIONS = ("per_class_f1", "class_weights", "best_metric", "freeze", "layer_lr", "sync_bn", "grad_clip")

BUILTIN_MODEL_RE = re.compile(r"^(yolo26|yolo11|yolov8|yolov9|yolov10|yolo12|rtdetr)[-\w]*\.(yaml|pt)$", re.I)
METRICS = {  # recipe name -> ultralytics metrics key (None: computed by us)
    "fitness": "fitness",
    "mAP50-95": "metrics/mAP50-95(B)",
    "mAP50": "metrics/mAP50(B)",
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
    "f1": "metrics/F1(B)",
}
VAL_LOSSES = {
    "yolo": ("val/box_loss", "val/cls_loss", "val/dfl_loss", "val/l1_loss"),  # YOLO26 has l1, YOLO11 dfl
    "rtdetr": ("val/giou_loss", "val/cls_loss", "val/l1_loss"),
}
# Training arguments the workbench owns: the run directory, the model/data and the freeze schedule.
RESERVED_TRAIN_KEYS = {
    "model": "set the top-level 'model' key",
    "data": "set the top-level 'data' key",
    "project": "the run directory is chosen with --runs-dir/--name",
    "name": "the run directory is chosen with --runs-dir/--name",
    "exist_ok": "runs are never overwritten",
    "save_dir": "the run directory is chosen with --runs-dir/--name",
    "resume": "use 'workbench resume RUN'",
    "mode": "the workbench always trains",
    "freeze": "use the customizations.freeze block (it can also unfreeze later)",
}


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerClassF1(_Block):
    """Per-class precision/recall/F1/AP50/AP every epoch, every class including zeros; F1 into results.csv."""


class ClassWeights(_Block):
    """Per-class weights in the classification loss: an explicit list, or derived from train label counts."""

    weights: list[float] | None = Field(None, description="explicit weight per class id; overrides the scheme")
    scheme: Literal["inverse_frequency", "power", "effective_number", "sqrt_inverse"] = "inverse_frequency"
    power: float = Field(0.5, ge=0, description="exponent of the 'power' scheme, like ultralytics cls_pw")
    beta: float = Field(0.999, gt=0, lt=1, description="beta of the 'effective_number' scheme (Cui et al. 2019)")
    cap: float | None = Field(None, gt=0, description="upper bound applied to the final weights")
    normalize: Literal["mean", "min", "none"] = "mean"
    zero_count: Literal["max", "one", "error"] = "max"

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("must list one weight per class, got an empty list")
            bad = [w for w in v if not (w >= 0 and w < float("inf"))]
            if bad:
                raise ValueError(f"weights must be finite and >= 0, got {bad[0]}")
            if not any(w > 0 for w in v):
                raise ValueError("at least one weight must be > 0 (all zeros would switch the classification loss off)")
        return v


class BestMetric(_Block):
    """Which validation metric picks best.pt (and drives early stopping, so the two agree)."""

    metric: str = "fitness"
    mode: Literal["max", "min"] | None = Field(None, description="default: 'min' for val/* losses, else 'max'")

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        allowed = [*METRICS, *sorted({x for losses in VAL_LOSSES.values() for x in losses})]
        if v not in allowed:
            raise ValueError(f"unknown metric '{v}'; allowed: {', '.join(allowed)}")
        return v

    @property
    def direction(self) -> str:
        """'max' or 'min', with the default resolved."""
        return self.mode or ("min" if self.metric.startswith("val/") else "max")


class Freeze(_Block):
    """Freeze layers at the start and unfreeze them after ``frozen_epochs`` epochs (``null``: never)."""

    layers: int | list[int] | Literal["backbone"] = "backbone"
    frozen_epochs: int | None = Field(5, ge=1, description="epochs to keep the layers frozen; null keeps them frozen")

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: int | list[int] | str) -> int | list[int] | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 (number of leading layers), a list of layer indices or 'backbone', got {v}")
        if isinstance(v, list):
            if not v or any(i < 0 for i in v) or len(set(v)) != len(v):
                raise ValueError(f"must be a non-empty list of distinct layer indices >= 0, got {v}")
        return v


class LayerLR(_Block):
    """Backbone learning rate as a ratio of the head's; groups split head/backbone x weight/bn/bias."""

    backbone_ratio: float = Field(0.1, gt=0, le=100)


class SyncBN(_Block):
    """Convert BatchNorm to SyncBatchNorm when training on more than one GPU (no-op otherwise)."""


class GradClip(_Block):
    """Clip the total gradient norm to ``max_norm`` before each optimizer step (0 disables; stock is 10.0)."""

    max_norm: float = Field(10.0, ge=0)


class Customizations(_Block):
    per_class_f1: PerClassF1 | None = None
    class_weights: ClassWeights | None = None
    best_metric: BestMetric | None = None
    freeze: Freeze | None = None
    layer_lr: LayerLR | None = None
    sync_bn: SyncBN | None = None
    grad_clip: GradClip | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_on(cls, data: Any) -> Any:
        # `per_class_f1:` with no value parses as None in YAML; presence of the key means "on, with defaults".
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    def enabled(self) -> list[str]:
        """Names of the enabled customizations in composition order."""
        return [name for name in CUSTOMIZATIONS if getattr(self, name) is not None]


class Recipe(BaseModel):
    """What the user chose: model, dataset, ultralytics training arguments and customizations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(..., description="built-in YAML (yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml) or a local .pt")
    data: str = Field(..., description="path to a data.yaml")
    train: dict[str, Any] = Field(default_factory=dict, description="ultralytics training arguments")
    customizations: Customizations = Field(default_factory=Customizations)

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
        c = self.customizations
        if c.class_weights is not None and float(self.train.get("cls_pw") or 0) > 0:
            raise ValueError(
                "customizations.class_weights: train.cls_pw would weight the classes a second time; "
                "remove train.cls_pw or the class_weights block"
            )
        epochs = self.train.get("epochs", 100)
        if c.freeze is not None and c.freeze.frozen_epochs is not None and c.freeze.frozen_epochs >= epochs:
            raise ValueError(
                f"customizations.freeze.frozen_epochs ({c.freeze.frozen_epochs}) must be less than train.epochs "
                f"({epochs}) to ever unfreeze; use null to keep the layers frozen"
            )
        if c.best_metric is not None and c.best_metric.metric.startswith("val/"):
            fam = self.family
            if fam is not None and c.best_metric.metric not in VAL_LOSSES[fam]:
                raise ValueError(
                    f"customizations.best_metric.metric: '{c.best_metric.metric}' is not a {fam} loss; "
                    f"allowed losses: {', '.join(VAL_LOSSES[fam])}"
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
        d = self.model_dump(mode="json")
        d["customizations"] = {k: v for k, v in d["customizations"].items() if v is not None}
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "recipe") -> Recipe:
        if not isinstance(data, dict):
            raise RecipeError(f"{source}: must be a mapping with keys model, data, train, customizations")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise RecipeError(f"{source}: {format_validation_error(e)}") from None

    @classmethod
    def from_yaml(cls, text: str, source: str = "recipe") -> Recipe:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise RecipeError(f"{source}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
        return cls.from_dict(data, source)

    def resolve_paths(self, base_dir: str | Path) -> Recipe:
        """Return a copy whose relative local paths (data, .pt/.yaml model files) are resolved against base_dir.

        Built-in model names (``yolo26n.yaml``) are left as they are: ultralytics resolves them from its package.
        """
        base = Path(base_dir)
        data = str((base / self.data).resolve()) if not Path(self.data).is_absolute() else self.data
        model = self.model
        local = base / model
        if not Path(model).is_absolute() and (local.exists() or not BUILTIN_MODEL_RE.match(Path(model).name)):
            model = str(local.resolve())
        return self.model_copy(update={"data": data, "model": model})


def load_recipe(path: str | Path) -> Recipe:
    """Read, validate and path-resolve a recipe file (relative paths are relative to the recipe's folder)."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: cannot read recipe ({e.__class__.__name__})") from None
    return Recipe.from_yaml(text, source=str(path)).resolve_paths(p.resolve().parent)


def format_validation_error(e: ValidationError) -> str:
    """One line: ``field.path: message`` for each problem, joined with '; '."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("function-", "literal[")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            msg = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        elif err["type"] == "missing":
            msg = "required"
        elif (
            "input" in err
            and err["type"] not in {"value_error", "assertion_error"}
            and not isinstance(err["input"], dict)
        ):
            msg = f"{msg} (got {err['input']!r})"
        # Messages from our own validators already start with the full field path ("train.epochs must ...").
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(f"{loc}.") else msg)
    return "; ".join(dict.fromkeys(parts))


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        nxt = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


# ---- ultralytics training arguments, checked without importing ultralytics ----------------------------------------
@functools.lru_cache(maxsize=1)
def ultralytics_arg_types() -> tuple[dict[str, Any], dict[str, set[str]]]:
    """Default training args and ultralytics' own typed-key sets, read from its files (no import, no torch)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return {}, {}
    pkg = Path(next(iter(spec.submodule_search_locations)))
    defaults = yaml.safe_load((pkg / "cfg" / "default.yaml").read_text(encoding="utf-8")) or {}
    kinds: dict[str, set[str]] = {}
    try:
        tree = ast.parse((pkg / "cfg" / "__init__.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name in {"CFG_FLOAT_KEYS", "CFG_FRACTION_KEYS", "CFG_INT_KEYS", "CFG_BOOL_KEYS"}:
                    kinds[name] = {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    except (OSError, SyntaxError):
        pass  # fall back to the types of the default values
    return defaults, kinds


def check_train_args(train: dict[str, Any]) -> dict[str, Any]:
    """Validate ultralytics training arguments by name, type and range, as ultralytics' own check_cfg would."""
    defaults, kinds = ultralytics_arg_types()
    for k, v in train.items():
        if not isinstance(k, str):
            raise ValueError(f"key {k!r} must be a string")
        if k in RESERVED_TRAIN_KEYS:
            raise ValueError(f"train.{k} is set by the workbench: {RESERVED_TRAIN_KEYS[k]}")
        if defaults and k not in defaults:
            close = [d for d in defaults if d.startswith(k[:3])][:4]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"train.{k} is not an ultralytics training argument{hint}")
        if v is None:
            continue
        num = isinstance(v, (int, float)) and not isinstance(v, bool)
        if k in kinds.get("CFG_BOOL_KEYS", ()) and not isinstance(v, bool):
            raise ValueError(f"train.{k} must be true or false, got {v!r}")
        if k in kinds.get("CFG_FRACTION_KEYS", ()):
            if not num or not 0.0 <= v <= 1.0:
                raise ValueError(f"train.{k} must be a number between 0.0 and 1.0, got {v!r}")
        elif k in kinds.get("CFG_FLOAT_KEYS", ()) and not num:
            raise ValueError(f"train.{k} must be a number, got {v!r}")
        elif k in kinds.get("CFG_INT_KEYS", ()) and not (isinstance(v, int) and not isinstance(v, bool)):
            raise ValueError(f"train.{k} must be an integer, got {v!r}")
    if "epochs" in train and (not isinstance(train["epochs"], int) or train["epochs"] < 1):
        raise ValueError(f"train.epochs must be an integer >= 1, got {train['epochs']!r}")
    if "imgsz" in train and isinstance(train["imgsz"], int) and train["imgsz"] < 32:
        raise ValueError(f"train.imgsz must be >= 32, got {train['imgsz']}")
    if train.get("task", "detect") != "detect":
        raise ValueError(f"train.task must be 'detect' (the workbench trains detectors), got {train['task']!r}")
    return train
