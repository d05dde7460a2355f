"""The model zoo on the New run page, as data (no Streamlit): the official checkpoints with their state (on disk, or
a download of about N MB), the problem a missing one raises, and the hint for an official name typed as a path.

The catalogue, the folders and the refusal line are the library's (:mod:`trainers.runs.model_zoo`), so the page and
``workbench train`` say the same. Downloads run in a child process
(:func:`trainers.runs.downloads.fetch_with_progress`): this process never imports ultralytics.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trainers.datasets.ultralytics_datasets import packaged_yaml
from trainers.errors import Problem
from trainers.recipe import Recipe
from trainers.runs import downloads, model_zoo
from trainers.runs.model_zoo import SCALES as SCALES  # model sizes in order, for the form's architectures
from trainers.runs.model_zoo import Missing

SWITCH_HINT = "switch on 'Allow download' beside Start"


def weights_dir() -> Path:
    """The weights folder this server looks in (``workbench ui --weights-dir``, passed through the environment)."""
    return model_zoo.weights_dir()


def names() -> list[str]:
    """The catalogue's checkpoint names, in its order."""
    return [c.name for c in model_zoo.CHECKPOINTS]


def state(name: str, folder: Path | None = None) -> str:
    """``on disk`` or ``download (5.4 MB)``."""
    if model_zoo.checkpoint_path(name, folder or model_zoo.weights_dir()) is not None:
        return "on disk"
    c = model_zoo.BY_NAME.get(name)
    return f"download ({c.size_label})" if c else "download"


def label(name: str, folder: Path | None = None) -> str:
    """The select box's line for one checkpoint: ``yolo11n.pt · YOLO11 · on disk``."""
    c = model_zoo.BY_NAME.get(name)
    return " · ".join([name, *([c.family] if c else []), state(name, folder)])


def server_allows_downloads() -> bool:
    """Whether the server was started with ``--allow-downloads`` (or ``$WORKBENCH_ALLOW_DOWNLOADS=1``)."""
    return model_zoo.downloads_allowed()


def _refusal(missing: Missing, allow_download: bool) -> Problem | None:
    """None when the download is allowed and switched on; else the one line, with what to do on this page."""
    if server_allows_downloads():
        return None if allow_download else Problem(missing.field, missing.line(SWITCH_HINT))
    return Problem(missing.field, missing.line())


def pretrained(name: str, allow_download: bool) -> tuple[str, list[Problem]]:
    """The recipe's ``model`` for a catalogue choice (the name itself) and the problem when it cannot be had."""
    _value, missing = model_zoo.find_model(name)
    problem = _refusal(missing, allow_download) if missing is not None else None
    return name, [problem] if problem else []


def official_name_hint(raw: str) -> Problem | None:
    """For an official checkpoint name typed as a local path (``yolo11n.pt``): say where it is looked for."""
    if not model_zoo.is_official_checkpoint(raw.strip()):
        return None
    name = raw.strip()
    return Problem(
        "model",
        f"model: {name} is an official pretrained checkpoint, not a file in this folder",
        f"choose 'Pretrained checkpoint' above; it is looked for in {model_zoo.weights_dir()} ({state(name)})",
    )


def named_dataset(raw: str, allow_download: bool) -> tuple[str, Problem | None] | None:
    """For an ultralytics dataset name (``coco8.yaml``): its ``data.yaml`` in the datasets folder, or the name with
    the problem when it is not there (none when the download is switched on). None for anything else."""
    if packaged_yaml(raw) is None:
        return None
    value, missing = model_zoo.find_data(raw)
    return value, (_refusal(missing, allow_download) if missing is not None else None)


def awaits_download(data_value: str | None) -> bool:
    """Whether the form's ``data`` is an ultralytics name still to be downloaded (so there is nothing to inspect)."""
    return bool(data_value) and packaged_yaml(str(data_value)) is not None


def to_download(recipe: Recipe | None) -> list[Missing]:
    """What Start has to download before the run is created."""
    return model_zoo.missing_assets(recipe) if recipe is not None else []


def download(item: Missing, on_progress: Callable[[int, int | None], object] | None = None) -> Path:
    """Download ``item`` in a child process with ultralytics' own function (raises RecipeError, one line)."""
    return downloads.fetch_with_progress(item, on_progress)
