"""Checks before a run folder is made or a run is resumed: model, dataset, class weights, images, checkpoint.

Bad input raises :class:`~trainers.errors.WorkbenchError` (one line naming the field or file) before anything is
written. The checks run cheapest first; the model's task comes last because it imports ultralytics (and, for a local
``.pt``, unpickles it). Official checkpoint and dataset names (``yolo11n.pt``, ``coco8.yaml``) are turned into files
before these checks run, by :func:`trainers.runs.model_zoo.resolve_assets`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from trainers.errors import RecipeError, RunError, WorkbenchError
from trainers.recipe import BUILTIN_MODEL_RE, Recipe


def builtin_model_exists(name: str) -> bool:
    """Whether ultralytics ships a model YAML for ``name`` (``yolo26n.yaml`` -> ``yolo26.yaml`` with scale n)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return False
    models = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
    unscaled = re.sub(r"(\d+)[nslmx](?=[-.])", r"\1", name)
    return any(True for n in {name, unscaled} for _ in models.rglob(n))


def check_model(recipe: Recipe) -> None:
    """The model must be a local file or an ultralytics built-in name; a .pt is only looked at, never unpickled."""
    p = Path(recipe.model)
    if p.exists():
        if p.suffix == ".pt" and p.stat().st_size == 0:
            raise RecipeError(f"model: {p} is empty (0 bytes); give a checkpoint saved by ultralytics")
        return
    name = p.name
    if p.suffix.lower() in {".yaml", ".yml"} and BUILTIN_MODEL_RE.match(name) and builtin_model_exists(name):
        return
    if p.suffix == ".pt" and BUILTIN_MODEL_RE.match(name) and str(p) == name:
        return  # an official name that the model zoo left as it is (another task): check_model_task refuses it
    raise RecipeError(
        f"model: '{recipe.model}' not found; use a built-in YAML such as yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml "
        "or the path of a local .pt/.yaml"
    )


def check_against_dataset(recipe: Recipe, ds: Any) -> None:
    """Recipe settings that depend on the dataset (class count)."""
    cw = recipe.customizations.class_weights
    problem = cw.check_classes(ds.names, ds.yaml_path.name) if cw is not None else None
    if problem:
        raise RecipeError(problem)


def check_class_weights(recipe: Recipe, counts: Any) -> None:
    """Weights from a scheme: compute them now from the train label counts, as the trainer will, so a setting the
    counts make impossible (``zero_count: error`` with a class that has no boxes) fails before the run folder exists.
    """
    cw = recipe.customizations.class_weights
    if cw is None or cw.weights is not None:
        return
    try:
        cw.from_counts(counts.instances)
    except WorkbenchError as e:
        raise RecipeError(f"customizations.{e}") from None


def check_model_task(recipe: Recipe) -> None:
    """Reject a model that is not a detector (segment, pose, classify, obb) or not a model at all.

    Runs before the run folder is made, so a wrong model never leaves a failed run behind. The task is read from the
    model YAML, or from a local ``.pt`` by loading it with ultralytics' own loader: that unpickles the file, which is
    why the UI asks the user to confirm they trust a local checkpoint before it can be started.
    """
    import re

    p = Path(recipe.model)
    if p.suffix.lower() == ".pt":
        if p.is_file():
            model_family(p)
        elif re.search(r"-(seg|pose|cls|obb)\b", p.name, re.I):  # an official asset name that is not a detector
            raise RecipeError(f"model: {p.name} is not a detection model; use e.g. yolo26n.pt or yolo26n.yaml")
        return
    from trainers.offline import apply_offline_env

    apply_offline_env()  # ultralytics reads its settings at import time
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    try:
        cfg = yaml_model_load(p)
    except Exception as e:
        raise RecipeError(f"model: {recipe.model} cannot be read as a model YAML ({type(e).__name__})") from None
    head = cfg.get("head") if isinstance(cfg, dict) else None
    last = head[-1] if isinstance(head, list) and head else None
    if not isinstance(cfg.get("backbone"), list) or not isinstance(last, list) or len(last) < 3:
        raise RecipeError(
            f"model: {recipe.model} is not an ultralytics model YAML (it needs 'backbone' and 'head' layer lists); "
            "use a built-in YAML such as yolo26n.yaml"
        )
    module = str(last[-2])
    if "detect" in module.lower() or module == "RTDETRDecoder":
        return
    task = guess_model_task(cfg) or "non-detection"
    raise RecipeError(
        f"model: {p.name} is a {task} model (its output layer is {module}); the workbench trains detection models "
        "such as yolo26n.yaml, yolo11n.yaml or rtdetr-l.yaml"
    )


def prepare(recipe: Recipe) -> Any:
    """Validate model and dataset; return the loaded dataset. Raises WorkbenchError on bad input."""
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.files import check_images
    from trainers.datasets.label_counts import count_labels

    check_model(recipe)
    ds = load_dataset(recipe.data)
    check_against_dataset(recipe, ds)
    check_class_weights(recipe, count_labels(ds, "train", require_labels=True))
    for split in ("train", "val"):  # ultralytics would drop a missing/empty/non-image file and train on without it
        check_images(ds, split)
    check_model_task(recipe)  # last: it imports ultralytics (and may unpickle a .pt); the checks above are cheap
    return ds


def check_last_checkpoint(path: Path) -> None:
    """Fail with one line, touching nothing, when last.pt cannot be read back.

    torch.save writes a zip archive with a CRC-32 per member; torch.load does not check them, so a checkpoint with
    damaged bytes in the middle would load and resume from garbage weights. ``testzip`` reads every member and checks
    its CRC (about 0.1 s for a 25 MB last.pt).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        detail = "truncated or not a zip archive" if isinstance(e, zipfile.BadZipFile) else type(e).__name__
        raise RunError(f"{path}: not a readable checkpoint ({detail}); nothing was changed") from None
    if bad is not None:
        raise RunError(f"{path}: not a readable checkpoint (corrupted: {bad} fails its checksum); nothing was changed")


def model_family(path: Path) -> str:
    """'rtdetr' or 'yolo' for a local checkpoint; raises RecipeError for checkpoints that are not detectors."""
    if path.suffix != ".pt" or not path.exists():
        return "rtdetr" if "rtdetr" in path.name.lower() else "yolo"
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel, load_checkpoint

    try:
        model, _ = load_checkpoint(str(path))
    except Exception as e:
        # torch.save writes a zip archive; for anything else the unpickler's error type depends on the first
        # bytes (ValueError, TypeError, UnpicklingError...), which says nothing to the user.
        detail = f"{type(e).__name__} while loading it" if zipfile.is_zipfile(path) else "not a torch.save archive"
        raise RecipeError(
            f"model: {path} is not an ultralytics checkpoint ({detail}); "
            "give a .pt saved by ultralytics, e.g. a run's weights/best.pt"
        ) from None
    if isinstance(model, RTDETRDetectionModel):
        return "rtdetr"
    if type(model) is not DetectionModel:
        task = getattr(model, "task", None) or type(model).__name__
        raise RecipeError(
            f"model: {path} is a {task} checkpoint; the workbench trains detection models (give a detection "
            "checkpoint or a built-in YAML such as yolo26n.yaml)"
        )
    return "yolo"
