"""The New run form as data (no Streamlit): form values -> a validated recipe, or the problems under each field.

Widget keys: ``nr_<field>`` for the general fields of :class:`FormValues`; for each customization of the table,
``nr_<key>_on`` (its toggle) and ``nr_<key>__<field>`` (its settings, see :mod:`app.settings_form`;
``nr_<key>__<field>__none`` for the "null" checkbox of a nullable field). Their defaults come from the settings
models, so a default is stated once. The same :class:`~trainers.recipe.Recipe` validation as the CLI decides; this
module adds what only the UI knows (the model source, the trust tick, a run name that is free).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from app import model_choices
from app.dataset_info import DatasetInfo
from app.settings_form import FieldSpec, field_specs
from trainers import customizations as table
from trainers.datasets.datasets_dir import dataset_yaml, datasets_root
from trainers.errors import Problem, RecipeError, RunError, WorkbenchError
from trainers.recipe import Recipe
from trainers.run_files import UI_RECIPES_DIR
from trainers.runs import checkpoint_check, launcher
from trainers.runs.folder import ensure_name_free, validate_run_name
from trainers.runs.run_names import run_stem
from trainers.train_args import train_default

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO_ROOT / "assets" / "demo" / "data.yaml"
DEMO_MODEL = REPO_ROOT / "assets" / "demo_base.pt"
PREFIX = "nr_"

BUILTIN_MODELS = (
    *(f"yolo26{s}.yaml" for s in model_choices.SCALES),  # n, s, m, l, x as the checkpoints (not n, s, l, m, x)
    *(f"yolo11{s}.yaml" for s in model_choices.SCALES),
    "rtdetr-l.yaml", "rtdetr-x.yaml", "rtdetr-resnet50.yaml", "rtdetr-resnet101.yaml",
)  # fmt: skip
OPTIMIZERS = ("auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSProp")
# Customizations the form starts with switched on. grad_clip is on at its default max_norm (a safety net far above
# YOLO's pre-clip norms): left off, the trainer is stock ultralytics, whose fixed threshold of 10 clips every YOLO
# step, and the doctor says so on every run the defaults start (issue 18: defaults that pass our own checks).
ON_BY_DEFAULT = ("per_class_f1", "grad_clip")


@dataclass
class FormValues:
    """The general fields of the New run page; field ``x`` is the widget with key ``nr_x``.

    The defaults are the page's: the bundled demo dataset and base checkpoint, so Start works as is. Training
    arguments the form does not choose itself (lr0, seed, patience) start at ultralytics' own defaults.
    """

    model_source: str = "demo"  # demo | pretrained | builtin | local
    pretrained: str = "yolo26n.pt"  # an official checkpoint (trainers.runs.model_zoo.CHECKPOINTS)
    allow_download: bool = False  # fetch what is not on disk at Start (offered only when the server allows it)
    builtin: str = "yolo26n.yaml"
    model_path: str = ""
    trust_pt: bool = False
    data_source: str = "demo"  # demo | imported | path
    data_path: str = ""
    data_name: str = ""  # an imported dataset: a folder of the datasets folder (trainers.datasets.datasets_dir)
    epochs: int = 10
    imgsz: int = 128  # the demo images are 128 px
    batch: int = 16
    device: str = "auto"
    optimizer: str = "auto"
    lr0: float = field(default_factory=lambda: float(train_default("lr0") or 0.01))
    seed: int = field(default_factory=lambda: int(train_default("seed") or 0))
    patience: int = field(default_factory=lambda: int(train_default("patience") or 100))
    # YAML mapping of other ultralytics training arguments. nbs=batch makes every batch an optimizer step, so the
    # LR and gradient-norm charts get a point per batch on small datasets (stock nbs=64 steps every 4th batch of 16).
    extra_train: str = "nbs: 16"
    name: str = ""
    customizations: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {field: widget value}, see below
    enabled: tuple[str, ...] = ON_BY_DEFAULT

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FormValues:
        """Read the form from (session) state; missing keys keep their defaults."""
        general = {f.name: state[PREFIX + f.name] for f in fields(cls) if f.init and PREFIX + f.name in state}
        general.pop("customizations", None)
        general.pop("enabled", None)
        form = cls(**general)
        defaults = customization_state(form)
        form.enabled = tuple(k for k in table.keys() if state.get(toggle_key(k), defaults[toggle_key(k)]))
        form.customizations = {
            row.key: {
                key: state.get(widget_key(row.key, key), defaults[widget_key(row.key, key)])
                for key in _widget_names(row)
            }
            for row in table.rows()
        }
        return form

    def to_state(self) -> dict[str, Any]:
        """Every widget key with its value (the defaults, for a fresh form)."""
        general = {PREFIX + k: v for k, v in asdict(self).items() if k not in ("customizations", "enabled")}
        return {**general, **customization_state(self)}


def toggle_key(key: str) -> str:
    return f"{PREFIX}{key}_on"


def widget_key(key: str, name: str) -> str:
    return f"{PREFIX}{key}__{name}"


def specs(key: str) -> list[FieldSpec]:
    """The settings widgets of customization ``key``."""
    return field_specs(table.row(key).settings)


def _widget_names(row: table.Customization) -> list[str]:
    names = []
    for spec in field_specs(row.settings):
        names.append(spec.name)
        if spec.none_box:
            names.append(f"{spec.name}__none")
    return names


def customization_state(form: FormValues) -> dict[str, Any]:
    """Widget values of every customization: the form's where it has them, else each settings model's default."""
    out: dict[str, Any] = {}
    for row in table.rows():
        out[toggle_key(row.key)] = row.key in form.enabled
        chosen = form.customizations.get(row.key, {})
        defaults = run_settings(row.key, form)
        for spec in field_specs(row.settings):
            widget, none = spec.to_widget(getattr(defaults, spec.name))
            out[widget_key(row.key, spec.name)] = chosen.get(spec.name, widget)
            if spec.none_box:
                out[widget_key(row.key, f"{spec.name}__none")] = chosen.get(f"{spec.name}__none", none)
    return out


def run_settings(key: str, form: FormValues) -> table.Settings:
    """Customization ``key``'s defaults for the form's run (frozen epochs fit its epochs: ``Settings.run_defaults``)."""
    settings = table.row(key).settings
    return settings(**settings.run_defaults({"epochs": form.epochs}))


@dataclass
class RecipeDraft:
    """The recipe the form describes, or why it cannot be built.

    Attributes:
        recipe: The validated recipe; None while there are problems.
        raw: The recipe as a plain dict (also when invalid, for the preview).
        problems: What is wrong, each with its field path (``model``, ``trust``, ``data``, ``train.epochs``,
            ``customizations.layer_lr.backbone_ratio``, ``name``), message and fix.
        name: The run name asked for (None: generated by the launcher).
    """

    recipe: Recipe | None
    raw: dict[str, Any]
    problems: list[Problem]
    name: str | None = None

    @property
    def ok(self) -> bool:
        return self.recipe is not None and not self.problems

    @property
    def yaml(self) -> str:
        """The recipe YAML (the validated one when valid, else the raw form values)."""
        if self.recipe is not None:
            return self.recipe.to_yaml()
        return yaml.safe_dump(self.raw, sort_keys=False, default_flow_style=False)

    def under(self, *paths: str) -> list[Problem]:
        """The problems about these field paths or fields below them (``train`` covers ``train.epochs``)."""
        return [p for p in self.problems if any(p.under(path) for path in paths)]


def model_path(form: FormValues) -> tuple[str | None, list[Problem]]:
    """The recipe's ``model`` value and the problems (``model``, ``trust``) of the model choice."""
    if form.model_source == "builtin":
        return form.builtin, []
    if form.model_source == "pretrained":
        return model_choices.pretrained(form.pretrained, form.allow_download)
    if form.model_source == "demo":
        if not DEMO_MODEL.is_file():
            return None, [
                Problem("model", f"model: the demo base checkpoint {DEMO_MODEL} is missing", "choose a built-in model")
            ]
        return str(DEMO_MODEL), []
    raw = form.model_path.strip()
    if not raw:
        return None, [Problem("model", "model: enter the path of a local .pt checkpoint")]
    problems = []
    p = Path(raw).expanduser()
    if p.suffix.lower() != ".pt":
        problems.append(
            Problem("model", f"model: '{raw}' must be a .pt checkpoint (for a model YAML, choose a built-in model)")
        )
    elif not p.is_file():
        if (hint := model_choices.official_name_hint(raw)) is not None:
            return raw, [hint]  # no file here to trust: the checkpoint is chosen under Pretrained
        problems.append(Problem("model", f"model: {p}: file not found"))
    elif (damaged := checkpoint_check.archive_problem(p)) is not None:  # looked at, never unpickled
        problems.append(Problem("model", damaged))
    if not form.trust_pt:
        problems.append(
            Problem(
                "trust",
                "model: .pt files are Python pickles that can run code when loaded",
                "tick 'I trust this file' to use it",
            )
        )
    elif not problems:  # trusted: load it in a throwaway process and check that it is a detection checkpoint
        found = checkpoint_check.probe(p)
        if "error" in found:
            problems.append(Problem("model", found["error"]))
    return (str(p.resolve()) if p.is_file() else raw), problems


# The dataset choices of the New run and Class weights pages, as the radio labels them; data_path reads the choice.
DATA_SOURCES = {"demo": "Bundled demo", "imported": "Imported dataset", "path": "A data.yaml path"}


def data_path(form: FormValues) -> tuple[str | None, Problem | None]:
    """The recipe's ``data`` value and the problem of the dataset choice (before the dataset itself is checked)."""
    if form.data_source == "demo":
        if not DEMO_DATA.is_file():
            return None, Problem(
                "data", f"data: the demo dataset {DEMO_DATA} is missing", "enter the path of a data.yaml"
            )
        return str(DEMO_DATA), None
    if form.data_source == "imported":
        return _imported_data(form.data_name.strip())
    raw = form.data_path.strip()
    if not raw:
        return None, Problem("data", "data: enter the path of a data.yaml")
    p = Path(raw).expanduser()
    if not p.exists() and (named := model_choices.named_dataset(raw, form.allow_download)) is not None:
        return named  # coco8.yaml: its folder in the datasets folder, or why not
    return str(p.resolve()) if p.exists() else raw, None


def _imported_data(name: str) -> tuple[str | None, Problem | None]:
    fix = "import a zip below, or run 'workbench import ZIP' (--datasets-dir: the folder 'workbench ui' was given)"
    if not name:
        return None, Problem("data", "data: choose an imported dataset", fix)
    try:
        path = dataset_yaml(datasets_root(), name)
    except WorkbenchError as e:
        return None, Problem("data", f"data: {e}")
    if not path.is_file():
        return None, Problem("data", f"data: no dataset {name!r} in {path.parent.parent}", fix)
    return str(path), None


def build_recipe(form: FormValues, dataset: DatasetInfo | None = None, runs_root: Path | None = None) -> RecipeDraft:
    """Turn the form into a validated recipe, or the problems by field path.

    The same :class:`~trainers.recipe.Recipe` validation as the CLI, plus what only the UI knows: the model and
    trust choice, the dataset check, explicit class weights against the dataset's classes, and a run name that is
    free. Each problem is reported once, under the field it is about.
    """
    model, problems = model_path(form)
    data, data_problem = data_path(form)
    if data_problem:
        problems.append(data_problem)
    elif dataset is not None and dataset.error:
        problems.append(Problem("data", f"data: {dataset.error}"))

    train, train_problems = _train_args(form)
    problems += train_problems
    custom: dict[str, Any] = {}
    for key in form.enabled:
        custom[key], block_problems = _block(key, form.customizations.get(key, {}), run_settings(key, form))
        problems += block_problems

    raw = {"model": model or form.model_path or "", "data": data or "", "train": train, "customizations": custom}
    # Validate with placeholders where the form already reported a problem, so each field is reported once.
    probe = {**raw, "model": model or "placeholder.pt", "data": data or "placeholder.yaml"}
    recipe = None
    try:
        recipe = Recipe.from_dict(probe)
    except RecipeError as e:
        problems += [p for p in e.problems if not any(p.under(q.field) for q in problems)]
    if recipe is not None and recipe.customizations.class_weights is not None and dataset and dataset.names:
        problem = recipe.customizations.class_weights.check_classes(dataset.names)
        if problem:
            problems.append(problem)

    name = form.name.strip() or None
    if name is not None:
        try:
            validate_run_name(name, what="run name")
            if runs_root is not None:
                ensure_name_free(runs_root, name)
        except RunError as e:
            problems.append(Problem("name", str(e)))
    if problems:
        return RecipeDraft(recipe=None, raw=raw, problems=list(dict.fromkeys(problems)), name=name)
    assert recipe is not None
    return RecipeDraft(recipe=recipe, raw=recipe.to_dict(), problems=[], name=name)


def _train_args(form: FormValues) -> tuple[dict[str, Any], list[Problem]]:
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
    problems = []
    if form.extra_train.strip():
        try:
            extra = yaml.safe_load(form.extra_train)
        except yaml.YAMLError as e:
            extra = None
            problems.append(Problem("train", f"train: other arguments are not valid YAML ({getattr(e, 'problem', e)})"))
        else:
            if not isinstance(extra, dict):
                problems.append(Problem("train", "train: other arguments must be a YAML mapping like 'cos_lr: true'"))
                extra = None
        for k, v in (extra or {}).items():
            if k in train:
                problems.append(
                    Problem(f"train.{k}", f"train.{k}: set it in its own field above, not in other arguments")
                )
            else:
                train[k] = v
    return train, problems


def _block(key: str, values: Mapping[str, Any], defaults: table.Settings) -> tuple[dict[str, Any], list[Problem]]:
    """A customization's recipe block from its widget values (``defaults`` where a widget has none)."""
    block: dict[str, Any] = {}
    problems = []
    for spec in specs(key):
        default_widget, default_none = spec.to_widget(getattr(defaults, spec.name))
        try:
            block[spec.name] = spec.to_value(
                values.get(spec.name, default_widget), bool(values.get(f"{spec.name}__none", default_none))
            )
        except ValueError as e:
            path = f"customizations.{key}.{spec.name}"
            problems.append(Problem(path, f"{path}: {e}"))
    return block, problems


def recipe_stem(form: FormValues) -> str:
    """A name for the recipe file (the launcher names the run after it): the run name, else ``<dataset>-<model>``."""
    data = data_path(form)[0] or (form.data_name if form.data_source == "imported" else form.data_path).strip()
    return form.name.strip() or run_stem(data, model_path(form)[0])


def save_ui_recipe(recipe: Recipe, root: Path, stem: str) -> Path:
    """Write ``recipe`` as a new file under ``<root>/.ui-recipes/`` (never overwriting one) and return its path."""
    folder = Path(root) / UI_RECIPES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip(".-") or "run"
    path = folder / f"{safe}.yaml"
    n = 1
    while path.exists():  # keep every launched recipe; the run's own copy is <run>/recipe.yaml
        n += 1
        path = folder / f"{safe}-{n}.yaml"
    path.write_text(recipe.to_yaml(), encoding="utf-8")
    return path


def launch(
    draft: RecipeDraft, root: Path, stem: str = "run", cluster: str | None = None, cpus: float | None = None
) -> Path:
    """Write the recipe under ``<root>/.ui-recipes/`` and start it with :func:`trainers.runs.launcher.start_run`
    (on ``cluster``, its Ray job asking for ``cpus``; None: the CLI's default).

    Returns:
        The new run folder.

    Raises:
        RecipeError: If the draft is not valid.
        WorkbenchError: From the launcher (name in use, cannot spawn).
    """
    if not draft.ok or draft.recipe is None:
        raise RecipeError(draft.problems, "recipe")
    path = save_ui_recipe(draft.recipe, root, stem)
    try:
        on = {"cluster": cluster, "cpus": cpus} if cluster else {}
        return launcher.start_run(path, root, name=draft.name, **on)
    except Exception:
        path.unlink(missing_ok=True)
        raise
