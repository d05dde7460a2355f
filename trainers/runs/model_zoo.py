"""The official pretrained checkpoints (the model zoo), the folders they and ultralytics' named datasets are found in,
and the preflight that resolves a recipe's names to files on disk before a run folder exists.

A recipe may name an official checkpoint (``model: yolo11n.pt``) or a dataset that ultralytics ships a YAML for
(``data: coco8.yaml``). ultralytics would download either from the internet in the middle of training; the
workbench looks first, before the run is created:

- checkpoints in the **weights folder**: ``--weights-dir D`` (train, sweep, ui), else ``$WORKBENCH_WEIGHTS_DIR``,
  else ultralytics' own ``weights_dir`` setting;
- datasets in the workbench's **datasets folder** (:func:`trainers.datasets.datasets_dir.datasets_root`:
  ``--datasets-dir``, ``$WORKBENCH_DATASETS_DIR``, ``./datasets``), where a downloaded one is then listed by name.

Present: the recipe trains the file there. Absent: one line naming the folder (:class:`Missing`), and no socket is
opened, unless downloads are allowed (``--allow-downloads`` or ``$WORKBENCH_ALLOW_DOWNLOADS=1``): then
:mod:`trainers.runs.downloads` fetches it with ultralytics' own download function first.

Nothing here imports torch or ultralytics: the New run page lists the catalogue with each entry on disk or not.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainers.datasets import ultralytics_datasets
from trainers.datasets.datasets_dir import datasets_root
from trainers.errors import RecipeError
from trainers.recipe import BUILTIN_MODEL_RE, Recipe

WEIGHTS_DIR_ENV = "WORKBENCH_WEIGHTS_DIR"
ALLOW_DOWNLOADS_ENV = "WORKBENCH_ALLOW_DOWNLOADS"
ALLOW_HINT = "allow downloads (--allow-downloads)"


@dataclass(frozen=True)
class Checkpoint:
    """One official pretrained checkpoint (COCO, 80 classes).

    Attributes:
        name: The file name, exactly as ultralytics' assets release names it.
        family: ``YOLO26``, ``YOLO11`` or ``RT-DETR``.
        size_mb: The download's size, approximate (MB, 10^6 bytes): for the "download (size)" label.
    """

    name: str
    family: str
    size_mb: float

    @property
    def size_label(self) -> str:
        return f"{self.size_mb:.0f} MB" if self.size_mb >= 10 else f"{self.size_mb:.1f} MB"


SCALES = "nsmlx"  # model sizes smallest first (nano, small, medium, large, extra-large): every list of sizes uses it
# The catalogue New run offers, smallest first within a family (SCALES). Names as in ultralytics.utils.downloads'
# GITHUB_ASSETS_NAMES (tests/test_model_zoo.py checks each); sizes rounded from the release's files.
CHECKPOINTS = (
    Checkpoint("yolo26n.pt", "YOLO26", 5.3),
    Checkpoint("yolo26s.pt", "YOLO26", 20.0),
    Checkpoint("yolo26m.pt", "YOLO26", 42.0),
    Checkpoint("yolo26l.pt", "YOLO26", 51.0),
    Checkpoint("yolo26x.pt", "YOLO26", 113.0),
    Checkpoint("yolo11n.pt", "YOLO11", 5.4),
    Checkpoint("yolo11s.pt", "YOLO11", 19.0),
    Checkpoint("yolo11m.pt", "YOLO11", 40.0),
    Checkpoint("yolo11l.pt", "YOLO11", 51.0),
    Checkpoint("yolo11x.pt", "YOLO11", 114.0),
    Checkpoint("rtdetr-l.pt", "RT-DETR", 66.0),
    Checkpoint("rtdetr-x.pt", "RT-DETR", 136.0),
)
BY_NAME = {c.name: c for c in CHECKPOINTS}


# ---- folders -------------------------------------------------------------------------------------------------------
def ultralytics_settings_file() -> Path:
    """The settings file ultralytics reads in this environment (``ultralytics.utils.get_user_config_dir``).

    ``$YOLO_CONFIG_DIR/Ultralytics``, else the platform's config folder. ultralytics' fallback to a temporary folder
    when that one is not writable is not followed: its settings there would not outlive the machine anyway.
    """
    if env := os.environ.get("YOLO_CONFIG_DIR"):
        base = Path(env).expanduser()
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform.startswith("win"):
        base = Path.home() / "AppData" / "Roaming"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "Ultralytics" / "settings.json"


def ultralytics_folder(key: str) -> Path:
    """A folder setting of ultralytics (``weights_dir``), read from its settings file as JSON.

    Where the file or the key is missing, ultralytics' default for a pip install: ``weights`` in the working
    directory. A relative value is relative to the working directory, as ultralytics joins it.
    """
    default = {"weights_dir": "weights", "datasets_dir": "datasets"}[key]
    try:
        value = json.loads(ultralytics_settings_file().read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        value = None
    return Path(value if isinstance(value, str) and value else default).expanduser().resolve()


def weights_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """The weights folder: ``--weights-dir``, else ``$WORKBENCH_WEIGHTS_DIR``, else ultralytics' ``weights_dir``."""
    raw = cli_value or os.environ.get(WEIGHTS_DIR_ENV)
    return Path(raw).expanduser().resolve() if raw else ultralytics_folder("weights_dir")


def datasets_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """Where ultralytics' named datasets are found: the workbench's datasets folder (``--datasets-dir``,
    ``$WORKBENCH_DATASETS_DIR``, ``./datasets``), so one downloaded there is listed with the imported ones."""
    return datasets_root(cli_value)


def downloads_allowed(cli_flag: bool = False) -> bool:
    """``--allow-downloads`` or ``$WORKBENCH_ALLOW_DOWNLOADS`` set to 1/true/yes."""
    return bool(cli_flag) or os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in ("1", "true", "yes")


# ---- names ---------------------------------------------------------------------------------------------------------
def is_official_checkpoint(model: str) -> bool:
    """Whether ``model`` is a bare official detection checkpoint name (``yolo11n.pt``, ``rtdetr-l.pt``).

    Any name of the families the recipe knows (``BUILTIN_MODEL_RE``) counts, not only the catalogue's; other tasks
    (``-seg``, ``-pose``, ``-cls``, ``-obb``) do not: the preflight refuses those as non-detection models.
    """
    name = Path(model).name
    return (
        model == name
        and name.lower().endswith(".pt")
        and bool(BUILTIN_MODEL_RE.match(name))
        and not any(f"-{task}" in name.lower() for task in ("seg", "pose", "cls", "obb", "sem", "depth"))
    )


def checkpoint_path(name: str, folder: Path | None = None) -> Path | None:
    """The official checkpoint ``name`` in the weights folder, or None when it is not there."""
    p = (folder or weights_dir()) / name
    return p if p.is_file() and p.stat().st_size > 0 else None


@dataclass(frozen=True)
class Missing:
    """An official checkpoint or ultralytics dataset that a recipe names and the folder does not hold.

    Attributes:
        field: ``model`` or ``data``.
        name: The name as the recipe gives it (``yolo11n.pt``, ``coco8.yaml``).
        folder: The weights or datasets folder it was looked for in.
        target: Where it goes: the checkpoint's file, or the dataset's folder.
    """

    field: str
    name: str
    folder: Path
    target: Path

    def line(self, allow_hint: str = ALLOW_HINT) -> str:
        """The one-line refusal (``model: yolo11n.pt is not in D; put the file there or allow downloads (...)``)."""
        if self.field == "model":
            return f"model: {self.name} is not in {self.folder}; put the file there or {allow_hint}"
        return f"data: {self.name} is not in {self.folder} (no {self.target.name}/ there); put it there or {allow_hint}"

    @property
    def size_mb(self) -> float | None:
        """The approximate download size, when the catalogue knows it."""
        c = BY_NAME.get(self.name)
        return c.size_mb if c else None


def find_model(model: str, folder: Path | None = None) -> tuple[str, Missing | None]:
    """The model to train for the recipe's ``model``: an official name becomes its file in the weights folder.

    Returns:
        ``(path, None)`` when found (other models come back as they are), or ``(model, Missing)``.
    """
    if not is_official_checkpoint(model):
        return model, None
    folder = folder or weights_dir()
    found = checkpoint_path(model, folder)
    return (str(found), None) if found else (model, Missing("model", model, folder, folder / model))


def find_data(data: str, folder: Path | None = None) -> tuple[str, Missing | None]:
    """The dataset YAML for the recipe's ``data``: an ultralytics dataset name becomes its folder's ``data.yaml``.

    The folder is the name's ``path:`` under the datasets folder (``coco8``); once there it gets a ``data.yaml``
    (:func:`trainers.datasets.ultralytics_datasets.write_data_yaml`). Other values come back as they are.
    """
    if ultralytics_datasets.packaged_yaml(data) is None:
        return data, None
    folder = folder or datasets_dir()
    where = ultralytics_datasets.dataset_folder(data, folder)
    if where.is_dir():
        return str(ultralytics_datasets.write_data_yaml(data, where)), None
    return data, Missing("data", data, folder, where)


def missing_assets(recipe: Recipe, weights: Path | None = None, datasets: Path | None = None) -> list[Missing]:
    """What the recipe names that is not on disk (model first). Looks at files only: no network, no ultralytics."""
    found = [find_model(recipe.model, weights)[1], find_data(recipe.data, datasets)[1]]
    return [m for m in found if m is not None]


def resolve_assets(
    recipe: Recipe,
    weights: Path | None = None,
    datasets: Path | None = None,
    download: Callable[[Missing], object] | None = None,
) -> Recipe:
    """The preflight for names: a copy of ``recipe`` whose official checkpoint and dataset names are files on disk.

    Args:
        recipe: The recipe as written (its names are kept in the run's recipe.yaml; this copy is what trains).
        weights: The weights folder (default :func:`weights_dir`).
        datasets: The datasets folder (default :func:`datasets_dir`).
        download: Fetches a :class:`Missing` (``trainers.runs.downloads.fetch``) when downloads are allowed; None
            refuses instead.

    Raises:
        RecipeError: One line per name not on disk (:meth:`Missing.line`) when ``download`` is None; what
            ``download`` raises otherwise.
    """
    weights, datasets = weights or weights_dir(), datasets or datasets_dir()
    missing = missing_assets(recipe, weights, datasets)
    if missing and download is None:
        raise RecipeError(missing[0].line())
    for item in missing:
        download(item)  # type: ignore[misc]  (None refused above)
    model, still = find_model(recipe.model, weights)
    data, still_data = find_data(recipe.data, datasets)
    if still or still_data:  # the download said it succeeded but the file is not where it should be
        raise RecipeError(f"{(still or still_data).line()} (after downloading it)")  # type: ignore[union-attr]
    return recipe.model_copy(update={"model": model, "data": data})
