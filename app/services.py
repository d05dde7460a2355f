"""UI services that do not import Streamlit: recipe building from form values, dataset checks, the per-run event
cache, run summaries with ETA, console tails, artifacts and class-weight exports.

Everything here is plain Python (unit-testable without a browser) and light: it never imports torch or
ultralytics. Training happens in a subprocess started by :mod:`trainers.launcher`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from app.charts import DETECTION_METRICS, RunLog
from trainers import launcher
from trainers.errors import RecipeError, RunError, WorkbenchError
from trainers.recipe import METRICS, VAL_LOSSES, Recipe
from trainers.runs import (
    ACTIVE_STATUSES,
    CONSOLE_FILE,
    TELEMETRY_FILE,
    ensure_name_free,
    list_runs,
    read_status,
    validate_run_name,
)
from trainers.weights import NORMALIZATIONS as NORMALIZATIONS  # re-exported for the pages
from trainers.weights import SCHEMES as SCHEMES
from trainers.weights import ZERO_COUNT as ZERO_COUNT

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO_ROOT / "assets" / "demo" / "data.yaml"
DEMO_MODEL = REPO_ROOT / "assets" / "demo_base.pt"
UI_RECIPES_DIR = ".ui-recipes"  # in the runs root; hidden, so list_runs skips it

BUILTIN_MODELS = (
    *(f"yolo26{s}.yaml" for s in "nslmx"),
    *(f"yolo11{s}.yaml" for s in "nslmx"),
    "rtdetr-l.yaml", "rtdetr-x.yaml", "rtdetr-resnet50.yaml", "rtdetr-resnet101.yaml",
)  # fmt: skip
OPTIMIZERS = ("auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp")
SCHEME_LABELS = {
    "inverse_frequency": "inverse frequency",
    "power": "power (1/n^p)",
    "effective_number": "effective number (beta)",
    "sqrt_inverse": "sqrt inverse",
}
BEST_METRICS = (*METRICS, *dict.fromkeys(x for losses in VAL_LOSSES.values() for x in losses))

# The seven customizations, in composition order (trainers.recipe.CUSTOMIZATIONS), with their one-line explanation.
CUSTOMIZATION_HELP = {
    "per_class_f1": "Per-class precision, recall, F1 and AP every epoch, for every class (zeros included).",
    "class_weights": "Weight each class in the classification loss, so rare classes count more.",
    "best_metric": "Choose the validation metric that picks best.pt (and drives early stopping).",
    "freeze": "Freeze layers (the backbone by default) for the first epochs, then unfreeze them.",
    "layer_lr": "Train the backbone at a fraction of the head's learning rate.",
    "sync_bn": "Synchronise BatchNorm statistics across GPUs (no effect on one device).",
    "grad_clip": "Clip the total gradient norm before each optimizer step (0 disables clipping).",
}
CUSTOMIZATION_TITLES = {
    "per_class_f1": "Per-class F1",
    "class_weights": "Class weights",
    "best_metric": "Best-model metric",
    "freeze": "Freeze, then unfreeze",
    "layer_lr": "Per-layer learning rate",
    "sync_bn": "SyncBatchNorm",
    "grad_clip": "Gradient clipping",
}


# ---- form values -> recipe -----------------------------------------------------------------------------------------
@dataclass
class FormValues:
    """Everything the New run page asks for; field ``x`` is the widget with key ``nr_x``.

    The defaults are the page's defaults: the bundled demo dataset and base checkpoint, so Start works as is.
    """

    model_source: str = "demo"  # demo | builtin | local
    builtin: str = "yolo26n.yaml"
    model_path: str = ""
    trust_pt: bool = False
    data_source: str = "demo"  # demo | path
    data_path: str = ""
    epochs: int = 10
    imgsz: int = 128  # the demo images are 128 px
    batch: int = 16
    device: str = "auto"
    optimizer: str = "auto"
    lr0: float = 0.01
    seed: int = 0
    patience: int = 100
    # YAML mapping of other ultralytics training arguments. nbs=batch makes every batch an optimizer step, so the
    # LR and gradient-norm charts get a point per batch on small datasets (stock nbs=64 steps every 4th batch of 16).
    extra_train: str = "nbs: 16"
    name: str = ""
    # customizations: on/off and parameters
    per_class_f1_on: bool = True
    class_weights_on: bool = False
    cw_mode: str = "scheme"  # scheme | explicit
    cw_scheme: str = "inverse_frequency"
    cw_power: float = 0.5
    cw_beta: float = 0.999
    cw_cap_on: bool = False
    cw_cap: float = 10.0
    cw_normalize: str = "mean"
    cw_zero_count: str = "max"
    cw_weights: str = ""  # comma-separated, one per class
    best_metric_on: bool = False
    bm_metric: str = "fitness"
    bm_mode: str = "auto"  # auto | max | min
    freeze_on: bool = False
    fz_layers: str = "backbone"
    fz_epochs: int = 3
    fz_forever: bool = False
    layer_lr_on: bool = False
    llr_ratio: float = 0.1
    sync_bn_on: bool = False
    grad_clip_on: bool = False
    gc_max_norm: float = 10.0

    @classmethod
    def from_state(cls, state: Mapping[str, Any], prefix: str = "nr_") -> FormValues:
        """Read the form from (session) state; missing keys keep their defaults."""
        return cls(**{f.name: state[prefix + f.name] for f in fields(cls) if prefix + f.name in state})

    def to_state(self, prefix: str = "nr_") -> dict[str, Any]:
        return {prefix + k: v for k, v in asdict(self).items()}


@dataclass
class RecipeDraft:
    """The recipe the form describes, or why it cannot be built.

    Attributes:
        recipe: The validated recipe; None while there are errors.
        raw: The recipe as a plain dict (also when invalid, for the preview).
        errors: Field path (``model``, ``trust``, ``data``, ``train.epochs``, ``customizations.layer_lr...``,
            ``name``) to one-line messages that start with the field.
        name: The run name asked for (None: generated by the launcher).
    """

    recipe: Recipe | None
    raw: dict[str, Any]
    errors: dict[str, list[str]]
    name: str | None = None

    @property
    def ok(self) -> bool:
        return self.recipe is not None and not self.errors

    @property
    def yaml(self) -> str:
        """The recipe YAML (the validated one when valid, else the raw form values)."""
        if self.recipe is not None:
            return self.recipe.to_yaml()
        return yaml.safe_dump(self.raw, sort_keys=False, default_flow_style=False)

    def error_fields(self, *paths: str) -> list[str]:
        """The error keys at these field paths or below them (``train`` matches ``train.epochs``)."""
        return [key for key in self.errors if any(key == p or key.startswith(p + ".") for p in paths)]

    def messages(self, *paths: str) -> list[str]:
        """Messages for these field paths and their sub-fields."""
        return [m for key in self.error_fields(*paths) for m in self.errors[key]]


_FIELD_RE = re.compile(r"^((?:model|data|train|customizations)(?:\.[\w\-]+)*)")
_SPLIT_RE = re.compile(r"; (?=(?:model|data|train|customizations)\b)")


def split_recipe_error(message: str) -> list[tuple[str, str]]:
    """Split a :class:`RecipeError` message into ``(field path, message)`` pairs.

    ``"recipe: customizations.layer_lr.backbone_ratio: Input should be greater than 0; train.epochs must be ..."``
    gives ``[("customizations.layer_lr.backbone_ratio", "customizations.layer_lr.backbone_ratio: Input ..."),
    ("train.epochs", "train.epochs must be ...")]``. A part that names no field is filed under ``""``.
    """
    text = message.split(": ", 1)[1] if message.startswith("recipe: ") else message
    out = []
    for part in _SPLIT_RE.split(text):
        m = _FIELD_RE.match(part)
        out.append((m.group(1) if m else "", part.strip()))
    return out


def parse_float_list(text: str) -> list[float]:
    """``"1, 2.5 3"`` -> ``[1.0, 2.5, 3.0]`` (commas and/or spaces, brackets allowed).

    Raises:
        ValueError: Naming the first item that is not a number.
    """
    items = [x for x in re.split(r"[,\s]+", text.strip().strip("[]")) if x]
    out = []
    for x in items:
        try:
            out.append(float(x))
        except ValueError:
            raise ValueError(f"'{x}' is not a number") from None
    return out


def parse_layers(text: str) -> str | int | list[int]:
    """Freeze layers: ``backbone``, a number of leading layers (``10``) or indices (``0, 1, 2``)."""
    t = text.strip()
    if t.lower() == "backbone":
        return "backbone"
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    items = [x for x in re.split(r"[,\s]+", t.strip("[]")) if x]
    if items and all(re.fullmatch(r"-?\d+", x) for x in items):
        return [int(x) for x in items]
    raise ValueError(f"'{text}' is not 'backbone', a number of leading layers or a list of layer indices like 0, 1, 2")


def model_path(form: FormValues) -> tuple[str | None, dict[str, str]]:
    """The recipe's ``model`` value and the errors (``model``, ``trust``) of the model choice."""
    errors: dict[str, str] = {}
    if form.model_source == "builtin":
        return form.builtin, errors
    if form.model_source == "demo":
        if not DEMO_MODEL.is_file():
            errors["model"] = f"model: the demo base checkpoint {DEMO_MODEL} is missing; choose a built-in model"
            return None, errors
        return str(DEMO_MODEL), errors
    raw = form.model_path.strip()
    if not raw:
        errors["model"] = "model: enter the path of a local .pt checkpoint"
        return None, errors
    p = Path(raw).expanduser()
    if p.suffix.lower() != ".pt":
        errors["model"] = f"model: '{raw}' must be a .pt checkpoint (for a model YAML, choose a built-in model)"
    elif not p.is_file():
        errors["model"] = f"model: {p}: file not found"
    if not form.trust_pt:
        errors["trust"] = (
            "model: .pt files are Python pickles that can run code when loaded; tick 'I trust this file' to use it"
        )
    return (str(p.resolve()) if p.is_file() else raw), errors


def data_path(form: FormValues) -> tuple[str | None, str | None]:
    """The recipe's ``data`` value and the error of the dataset choice (before the dataset itself is checked)."""
    if form.data_source == "demo":
        if not DEMO_DATA.is_file():
            return None, f"data: the demo dataset {DEMO_DATA} is missing; enter the path of a data.yaml"
        return str(DEMO_DATA), None
    raw = form.data_path.strip()
    if not raw:
        return None, "data: enter the path of a data.yaml"
    p = Path(raw).expanduser()
    return str(p.resolve()) if p.exists() else raw, None


def build_recipe(form: FormValues, dataset: DatasetInfo | None = None, runs_root: Path | None = None) -> RecipeDraft:
    """Turn the form into a validated recipe, or the errors by field path.

    The same :class:`~trainers.recipe.Recipe` validation as the CLI, plus what only the UI knows: the model and
    dataset files exist, a local ``.pt`` is trusted, explicit class weights match the dataset's class count, and the
    run name is free.

    Args:
        form: The form values.
        dataset: The checked dataset (its error and class count are used), if the page has it.
        runs_root: To check that the run name is free.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    model, model_errors = model_path(form)
    for key, msg in model_errors.items():
        errors[key].append(msg)
    data, data_error = data_path(form)
    if data_error:
        errors["data"].append(data_error)
    elif dataset is not None and dataset.error:
        errors["data"].append(f"data: {dataset.error}")

    train: dict[str, Any] = {
        "epochs": form.epochs,
        "imgsz": form.imgsz,
        "batch": form.batch,
        "optimizer": form.optimizer,
        "lr0": form.lr0,
        "seed": form.seed,
        "patience": form.patience,
    }
    if form.device not in ("", "auto"):
        train["device"] = form.device
    if form.extra_train.strip():
        try:
            extra = yaml.safe_load(form.extra_train)
        except yaml.YAMLError as e:
            extra = None
            errors["train"].append(f"train: other arguments are not valid YAML ({getattr(e, 'problem', e)})")
        else:
            if not isinstance(extra, dict):
                errors["train"].append("train: other arguments must be a YAML mapping like 'cos_lr: true'")
                extra = None
        for k, v in (extra or {}).items():
            if k in train:
                errors[f"train.{k}"].append(f"train.{k}: set it in its own field above, not in other arguments")
            else:
                train[k] = v

    custom: dict[str, Any] = {}
    if form.per_class_f1_on:
        custom["per_class_f1"] = {}
    if form.class_weights_on:
        custom["class_weights"] = _class_weights_block(form, dataset, errors)
    if form.best_metric_on:
        custom["best_metric"] = {"metric": form.bm_metric, "mode": None if form.bm_mode == "auto" else form.bm_mode}
    if form.freeze_on:
        try:
            layers: Any = parse_layers(form.fz_layers)
        except ValueError as e:
            errors["customizations.freeze.layers"].append(f"customizations.freeze.layers: {e}")
            layers = "backbone"
        custom["freeze"] = {"layers": layers, "frozen_epochs": None if form.fz_forever else form.fz_epochs}
    if form.layer_lr_on:
        custom["layer_lr"] = {"backbone_ratio": form.llr_ratio}
    if form.sync_bn_on:
        custom["sync_bn"] = {}
    if form.grad_clip_on:
        custom["grad_clip"] = {"max_norm": form.gc_max_norm}

    raw = {"model": model or form.model_path or "", "data": data or "", "train": train, "customizations": custom}
    # Validate with placeholders where the UI already reported a problem, so each field is reported once.
    probe = {**raw, "model": model or "placeholder.pt", "data": data or "placeholder.yaml"}
    recipe = None
    try:
        recipe = Recipe.from_dict(probe)
    except RecipeError as e:
        for path, msg in split_recipe_error(str(e)):
            if not any(k == path or path.startswith(k + ".") for k in errors if errors[k]):
                errors[path].append(msg)

    name = form.name.strip() or None
    if name is not None:
        try:
            validate_run_name(name, what="run name")
            if runs_root is not None:
                ensure_name_free(runs_root, name)
        except RunError as e:
            errors["name"].append(str(e))
    errors = {k: v for k, v in errors.items() if v}
    if errors:
        return RecipeDraft(recipe=None, raw=raw, errors=errors, name=name)
    assert recipe is not None
    return RecipeDraft(recipe=recipe, raw=recipe.to_dict(), errors={}, name=name)


def _class_weights_block(form: FormValues, dataset: DatasetInfo | None, errors: dict[str, list[str]]) -> dict:
    path = "customizations.class_weights.weights"
    if form.cw_mode == "explicit":
        try:
            weights = parse_float_list(form.cw_weights)
        except ValueError as e:
            errors[path].append(f"{path}: {e}")
            return {"weights": None}
        if not weights:
            errors[path].append(f"{path}: enter one weight per class, separated by commas")
        elif dataset is not None and dataset.names and len(weights) != len(dataset.names):
            errors[path].append(
                f"{path} has {len(weights)} values but the dataset has {len(dataset.names)} classes "
                f"({', '.join(dataset.names)}); give one weight per class"
            )
        return {"weights": weights or None}
    return {
        "scheme": form.cw_scheme,
        "power": form.cw_power,
        "beta": form.cw_beta,
        "cap": form.cw_cap if form.cw_cap_on else None,
        "normalize": form.cw_normalize,
        "zero_count": form.cw_zero_count,
    }


def recipe_stem(form: FormValues) -> str:
    """A name for the recipe file (the launcher names the run after it): the run name, else the dataset's folder."""
    if form.name.strip():
        return form.name.strip()
    if form.data_source == "demo":
        return "demo"
    p = Path(form.data_path.strip())
    return (p.parent.name if p.name in ("data.yaml", "data.yml") else p.stem) or "run"


def launch(draft: RecipeDraft, root: Path, stem: str = "run") -> Path:
    """Write the recipe under ``<root>/.ui-recipes/`` and start it with :func:`trainers.launcher.start_run`.

    Returns:
        The new run folder.

    Raises:
        RecipeError: If the draft is not valid.
        WorkbenchError: From the launcher (name in use, cannot spawn).
    """
    if not draft.ok or draft.recipe is None:
        raise RecipeError("recipe: " + "; ".join(m for msgs in draft.errors.values() for m in msgs))
    folder = Path(root) / UI_RECIPES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip(".-") or "run"
    path = folder / f"{safe}.yaml"
    n = 1
    while path.exists():  # keep every launched recipe; the run's own copy is <run>/recipe.yaml
        n += 1
        path = folder / f"{safe}-{n}.yaml"
    path.write_text(draft.recipe.to_yaml(), encoding="utf-8")
    try:
        return launcher.start_run(path, root, name=draft.name)
    except Exception:
        path.unlink(missing_ok=True)
        raise


# ---- datasets ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetInfo:
    """A checked dataset: class names and label counts per split, or the one-line error."""

    path: str
    names: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)  # split -> trainers.label_counts.ClassCounts
    error: str | None = None

    @property
    def nc(self) -> int:
        return len(self.names)


def inspect_dataset(path: str | os.PathLike[str], splits: Sequence[str] = ("train", "val")) -> DatasetInfo:
    """Load a data.yaml and count its labels (cached by path and modification time of the YAML).

    Never raises for bad input: the :class:`~trainers.errors.DatasetError` message is returned in ``error``.
    """
    p = Path(path).expanduser()
    try:
        mtime = p.stat().st_mtime_ns if p.is_file() else (p / "data.yaml").stat().st_mtime_ns
    except OSError:
        mtime = None
    return _inspect(str(p), tuple(splits), mtime)


@functools.lru_cache(maxsize=32)
def _inspect(path: str, splits: tuple[str, ...], _mtime: int | None) -> DatasetInfo:
    from trainers.data_yaml import load_dataset
    from trainers.label_counts import count_labels

    try:
        ds = load_dataset(path)
        counts = {s: count_labels(ds, s) for s in splits if s in ds.splits}
    except WorkbenchError as e:
        return DatasetInfo(path=path, error=str(e))
    except OSError as e:  # unreadable files the loader did not anticipate
        return DatasetInfo(path=path, error=f"{path}: {e}")
    return DatasetInfo(path=str(ds.yaml_path), names=list(ds.names), counts=counts)


# ---- devices -------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def list_gpus() -> list[str]:
    """CUDA GPUs as ``"0: NVIDIA H200"``, from ``nvidia-smi -L`` (not torch: the UI must not import it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        m = re.match(r"GPU (\d+): (.+?)(?: \(UUID.*)?$", line.strip())
        if m:
            gpus.append(f"{m.group(1)}: {m.group(2)}")
    return gpus


def device_options(gpus: Sequence[str]) -> list[str]:
    """``auto``, ``cpu``, each GPU index, and all GPUs together when there are several."""
    ids = [g.split(":", 1)[0] for g in gpus]
    return ["auto", "cpu", *ids, *([",".join(ids)] if len(ids) > 1 else [])]


# ---- the event cache -----------------------------------------------------------------------------------------------
class RunEvents:
    """Incremental reader of one run's telemetry: keeps the byte offset and the folded log, reads only new bytes.

    Thread-safe (Streamlit serves each browser session in its own thread). A log that shrank or was replaced is
    read again from the start.
    """

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.path = Path(run_dir) / TELEMETRY_FILE
        self.offset = 0
        self.log = RunLog()
        self._ino: int | None = None
        self._snapshot: RunLog | None = None
        self._lock = threading.Lock()

    def poll(self) -> RunLog:
        """Read what was appended since the last poll; return a snapshot of the whole log (safe to read)."""
        from trainers.telemetry import read_events

        with self._lock:
            try:
                st = self.path.stat()
                size, ino = st.st_size, st.st_ino
            except FileNotFoundError:
                size, ino = 0, None
            if size < self.offset or (self._ino is not None and ino is not None and ino != self._ino):
                self.offset, self.log, self._snapshot = 0, RunLog(), None
            self._ino = ino
            if size > self.offset:
                events, self.offset = read_events(self.path, self.offset)
                if events:
                    self.log.extend(events)
                    self._snapshot = None
            if self._snapshot is None:
                self._snapshot = self.log.snapshot()
            return self._snapshot


_CACHE: OrderedDict[str, RunEvents] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_RUNS = 8  # folded logs kept in memory (a 300k-step log takes about 50 MB)


def run_events(run_dir: str | os.PathLike[str]) -> RunEvents:
    """The process-wide event cache of a run (shared by all sessions; survives page changes, not a UI restart)."""
    key = str(Path(run_dir).resolve())
    with _CACHE_LOCK:
        cache = _CACHE.pop(key, None) or RunEvents(key)
        _CACHE[key] = cache
        while len(_CACHE) > CACHE_RUNS:
            _CACHE.popitem(last=False)
    return cache


def forget_run(run_dir: str | os.PathLike[str]) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(str(Path(run_dir).resolve()), None)


# ---- run summaries -------------------------------------------------------------------------------------------------
@dataclass
class RunRow:
    """One run as the Runs page shows it."""

    name: str
    path: str
    status: str
    epoch: int
    epochs: int | None
    eta_s: float | None
    best: str
    error: str | None
    created: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> float:
        return min(1.0, max(0.0, self.epoch / self.epochs)) if self.epochs else 0.0


def eta_seconds(log: RunLog, epochs: int | None, now: float | None = None) -> float | None:
    """Time left: the mean duration of the last (up to 5) epochs times the epochs left, minus the current one's time.

    Returns:
        Seconds (>= 0), or None before the first epoch ends or when the epoch count is unknown.
    """
    epochs = epochs or log.epochs_planned
    timed = [e for e in log.epochs if isinstance(e.get("epoch_time"), (int, float)) and e["epoch_time"] > 0]
    if not epochs or not timed:
        return None
    last = log.epochs[-1]
    left = epochs - int(last.get("epoch", 0))
    if left <= 0:
        return 0.0
    per_epoch = sum(e["epoch_time"] for e in timed[-5:]) / len(timed[-5:])
    now = time.time() if now is None else now
    elapsed = max(0.0, now - float(last.get("t", now)))
    return max(0.0, left * per_epoch - min(elapsed, per_epoch))


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def format_metric(best: Mapping[str, Any] | None) -> str:
    """``{"name": "metrics/mAP50-95(B)", "value": 0.41}`` -> ``mAP50-95 0.410``."""
    if not best or best.get("value") is None:
        return "-"
    name = str(best.get("name") or "")
    return f"{DETECTION_METRICS.get(name, name)} {float(best['value']):.3f}"


def run_rows(root: str | os.PathLike[str]) -> list[RunRow]:
    """Every run in the runs root, newest first, with live status (dead processes settled) and ETA for active runs."""
    rows = []
    for s in list_runs(root):
        try:  # active runs are settled if their process died; RunSummary has no `error`, so read the status anyway
            status = launcher.refresh_status(s.path) if s.status in ACTIVE_STATUSES else read_status(s.path)
        except WorkbenchError:
            status = {}
        state = status.get("status", s.status)
        epochs = status.get("epochs", s.epochs)
        eta = None
        if state in ACTIVE_STATUSES:
            eta = eta_seconds(run_events(s.path).poll(), epochs)
        rows.append(
            RunRow(
                name=s.name, path=s.path, status=str(state), epoch=int(status.get("epoch", s.epoch) or 0),
                epochs=epochs, eta_s=eta, best=format_metric(status.get("best_metric", s.best_metric)),
                error=status.get("error"), created=s.created,
            )
        )  # fmt: skip
    return rows


# ---- console and artifacts -----------------------------------------------------------------------------------------
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def console_tail(run_dir: str | os.PathLike[str], lines: int = 60, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of the run's console.log (progress-bar redraws collapsed to their last state)."""
    path = Path(run_dir) / CONSOLE_FILE
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = _ANSI_RE.sub("", data.decode("utf-8", "replace"))  # colours and cursor moves of progress bars
    if size > max_bytes:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    out = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        out.append(parts[-1] if parts else "")
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out[-lines:])


ARTIFACTS = (
    ("best.pt", "weights/best.pt", "application/octet-stream"),
    ("last.pt", "weights/last.pt", "application/octet-stream"),
    ("recipe.yaml", "recipe.yaml", "application/x-yaml"),
    ("telemetry.jsonl", TELEMETRY_FILE, "application/x-ndjson"),
    ("results.csv", "results.csv", "text/csv"),
)


def artifacts(run_dir: str | os.PathLike[str]) -> list[tuple[str, Path, str]]:
    """The downloadable files that exist: ``(label, path, mime)``."""
    return [(label, Path(run_dir) / rel, mime) for label, rel, mime in ARTIFACTS if (Path(run_dir) / rel).is_file()]


def read_bytes(path: Path) -> bytes:
    """Deferred download data (read only when the user clicks)."""
    return Path(path).read_bytes()


# ---- class weights -------------------------------------------------------------------------------------------------
def class_weights(
    counts: Any, scheme: str, *, power: float = 0.5, beta: float = 0.999, cap: float | None = None,
    normalize: str = "mean", zero_count: str = "max",
) -> list[float]:  # fmt: skip
    """Per-class weights from box counts with :func:`trainers.weights.compute_weights`, exactly as training does.

    Args:
        counts: A :class:`trainers.label_counts.ClassCounts` (its ``instances`` are used) or the box count per class.

    Raises:
        WorkbenchError: A parameter out of range, or ``zero_count='error'`` with a class that has no labels.
    """
    from trainers.weights import compute_weights

    instances = getattr(counts, "instances", counts)
    return compute_weights(
        instances, scheme, power=power, beta=beta, cap=cap, normalize=normalize, zero_count=zero_count
    )


def weights_yaml(names: Sequence[str], weights: Sequence[float], source: str = "") -> str:
    """A ``customizations.class_weights`` block with explicit weights, ready to paste into a recipe."""
    header = f"# class weights for {source}\n" if source else ""
    header += "# " + ", ".join(f"{i}: {n}" for i, n in enumerate(names)) + "\n"
    body = {"customizations": {"class_weights": {"weights": [round(float(w), 6) for w in weights]}}}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None)


def weights_json(names: Sequence[str], weights: Sequence[float], **meta: Any) -> str:
    return json.dumps({**meta, "names": list(names), "weights": [float(w) for w in weights]}, indent=2)


def runs_with_status(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, status)`` of every run, newest first (status.json only; cheap)."""
    try:
        return [(s.name, s.status) for s in list_runs(root)]
    except WorkbenchError:
        return []
