"""Run a recipe in this process: validate, create the run directory, train, and always write how it ended.

``workbench train`` and ``workbench resume`` are thin wrappers over :func:`train_run` and :func:`resume_run`;
the UI's launcher spawns exactly those commands. Bad input raises :class:`~trainers.errors.WorkbenchError`
before anything is written; a failure during training is recorded (status ``failed``, a ``run_end`` event with
the error and the traceback's last lines) and returns exit code 1.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import yaml

from trainers.errors import RecipeError, RunError, WorkbenchError
from trainers.recipe import BUILTIN_MODEL_RE, Recipe, load_recipe

EXIT_OK, EXIT_FAILED = 0, 1
_OUT_OF_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
TRACEBACK_LINES = 12


class StopRequested(Exception):
    """Raised inside the training loop at a batch boundary after SIGINT/SIGTERM."""


# ---- validation before anything is written ------------------------------------------------------------------------
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
        return  # an official asset name: ultralytics downloads it (needs internet)
    raise RecipeError(
        f"model: '{recipe.model}' not found; use a built-in YAML such as yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml "
        "or the path of a local .pt/.yaml"
    )


def check_against_dataset(recipe: Recipe, ds: Any) -> None:
    """Recipe settings that depend on the dataset (class count)."""
    cw = recipe.customizations.class_weights
    if cw is not None and cw.weights is not None and len(cw.weights) != ds.nc:
        raise RecipeError(
            f"customizations.class_weights.weights has {len(cw.weights)} values but {ds.yaml_path.name} has "
            f"{ds.nc} classes ({', '.join(ds.names)}); give one weight per class"
        )


def check_class_weights(recipe: Recipe, counts: Any) -> None:
    """Weights from a scheme: compute them now from the train label counts, as the trainer will, so a setting the
    counts make impossible (``zero_count: error`` with a class that has no boxes) fails before the run folder exists.
    """
    cw = recipe.customizations.class_weights
    if cw is None or cw.weights is not None:
        return
    from trainers.weights import compute_weights

    try:
        compute_weights(
            counts.instances,
            cw.scheme,
            power=cw.power,
            beta=cw.beta,
            cap=cw.cap,
            normalize=cw.normalize,
            zero_count=cw.zero_count,
        )
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
    from trainers.data_yaml import load_dataset
    from trainers.dataset_files import check_images
    from trainers.label_counts import count_labels

    check_model(recipe)
    ds = load_dataset(recipe.data)
    check_against_dataset(recipe, ds)
    check_class_weights(recipe, count_labels(ds, "train", require_labels=True))
    for split in ("train", "val"):  # ultralytics would drop a missing/empty/non-image file and train on without it
        check_images(ds, split)
    check_model_task(recipe)  # last: it imports ultralytics (and may unpickle a .pt); the checks above are cheap
    return ds


# ---- entry points ---------------------------------------------------------------------------------------------------
def train_run(
    recipe_path: str | Path,
    runs_root: str | Path | None = None,
    name: str | None = None,
    existing: bool = False,
    step_stride: int = 1,
) -> int:
    """Validate ``recipe_path``, create the run directory and train in this process. Returns the exit code."""
    from trainers import runs
    from trainers.data_yaml import resolved_data_dict

    recipe = load_recipe(recipe_path)
    root = runs.runs_root(runs_root)
    if existing:
        if not name:
            raise RunError("--existing needs --name of the run directory reserved by the launcher")
        run_dir = runs.find_run(root, runs.validate_run_name(name))
        if runs.read_status(run_dir).get("status") != "starting":
            raise RunError(f"--existing: run '{name}' is not waiting to start; start a new run instead")
    else:
        name = runs.validate_run_name(name) if name else runs.new_run_name(Path(recipe_path).stem)
    ds = prepare(recipe)
    if not existing:
        try:
            run_dir = runs.create_run_dir(root, name)
        except OSError as e:
            from trainers.launcher import unusable_runs_root

            raise unusable_runs_root(root, e) from None
    (run_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    (run_dir / "data.yaml").write_text(yaml.safe_dump(resolved_data_dict(ds), sort_keys=False), encoding="utf-8")
    runs.write_status(
        run_dir,
        status="running",
        pid=os.getpid(),
        epoch=0,
        epochs=recipe.train.get("epochs", 100),
        error=None,
        resumes=0,
        step_stride=int(step_stride),  # kept for resume
    )
    return execute(run_dir, recipe, resume=False, step_stride=step_stride)


def resume_run(run_dir: str | Path) -> int:
    """Continue a stopped or failed run from its last.pt, appending to the same telemetry. Returns the exit code."""
    from trainers import runs
    from trainers.telemetry import read_events

    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    state = status.get("status")
    if state == "completed":
        raise RunError(f"run '{run_dir.name}' is completed; nothing to resume")
    if state in runs.ACTIVE_STATUSES and _pid_alive(status.get("pid")) and status.get("pid") != os.getpid():
        raise RunError(f"run '{run_dir.name}' is {state} (pid {status.get('pid')}); stop it before resuming")
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise RunError(f"run '{run_dir.name}' has no weights/last.pt (it ended before its first epoch); start it again")
    recipe = Recipe.from_yaml(
        (run_dir / "recipe.yaml").read_text(encoding="utf-8"), source=str(run_dir / "recipe.yaml")
    )
    check_last_checkpoint(last)
    events, _ = read_events(run_dir / runs.TELEMETRY_FILE)
    runs.write_status(run_dir, status="running", pid=os.getpid(), error=None, resumes=int(status.get("resumes", 0)) + 1)
    stride = int(status.get("step_stride") or 1)
    return execute(run_dir, recipe, resume=True, step_offset=completed_steps(events), step_stride=stride)


def completed_steps(events: list[dict]) -> int:
    """Global optimizer steps of the epochs that finished (steps of an interrupted epoch are redone on resume)."""
    done = max((e["epoch"] for e in events if e.get("event") == "epoch" and not e.get("final_eval")), default=0)
    return max((e["step"] for e in events if e.get("event") == "step" and e.get("epoch", 0) <= done), default=0)


def check_last_checkpoint(path: Path) -> None:
    """Fail with one line, touching nothing, when last.pt cannot be read back.

    torch.save writes a zip archive with a CRC-32 per member; torch.load does not check them, so a checkpoint with
    damaged bytes in the middle would load and resume from garbage weights. ``testzip`` reads every member and checks
    its CRC (about 0.1 s for a 25 MB last.pt).
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        detail = "truncated or not a zip archive" if isinstance(e, zipfile.BadZipFile) else type(e).__name__
        raise RunError(f"{path}: not a readable checkpoint ({detail}); nothing was changed") from None
    if bad is not None:
        raise RunError(f"{path}: not a readable checkpoint (corrupted: {bad} fails its checksum); nothing was changed")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- the training process ---------------------------------------------------------------------------------------
def execute(run_dir: Path, recipe: Recipe, resume: bool, step_offset: int = 0, step_stride: int = 1) -> int:
    """Train (or resume) in this process, translating SIGINT/SIGTERM into a clean stop at a batch boundary."""
    from trainers import runs
    from trainers.offline import apply_offline_env

    apply_offline_env()
    console = _tee_console(run_dir / runs.CONSOLE_FILE)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    trainer = None
    outcome: dict[str, Any] = {"status": "failed", "error": None, "traceback": None}
    try:
        trainer = make_trainer(run_dir, recipe, resume=resume, step_offset=step_offset, step_stride=step_stride)

        def check_stop(_trainer) -> None:
            if stop.is_set():
                raise StopRequested

        # Registered on this instance only (not in the class), so a DDP worker never gets it twice.
        for event in ("on_train_batch_end", "on_train_epoch_start", "on_pretrain_routine_end"):
            trainer.add_callback(event, check_stop)
        trainer.train()
        outcome["status"] = "stopped" if stop.is_set() else "completed"
    except (StopRequested, KeyboardInterrupt):
        outcome["status"] = "stopped"
    except Exception as e:  # recorded for the user; the process exits 1
        outcome["error"] = error_line(e)
        outcome["traceback"] = traceback.format_exc().rstrip().splitlines()[-TRACEBACK_LINES:]
        print(traceback.format_exc(), file=sys.stderr)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _finish(run_dir, trainer, outcome)
        if console is not None:
            console.close()
    return EXIT_OK if outcome["status"] in {"completed", "stopped"} else EXIT_FAILED


def error_line(e: BaseException) -> str:
    """The one-line reason recorded for a failed run.

    An exception re-raised from a DataLoader worker reads "Caught FileNotFoundError in DataLoader worker process
    0." on its first line; the worker's own message (which names the file) is the last line of the text. A write
    that failed for lack of space (ENOSPC, EDQUOT, or EFBIG from a file-size limit) says so and how to go on: the
    checkpoints are written atomically, so weights/last.pt still holds the last epoch saved whole.
    """
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    if "Original Traceback" in str(e) and len(lines) > 1:
        return lines[-1]  # the worker's "ExcType: message"
    line = f"{type(e).__name__}: {lines[0]}"
    if isinstance(e, OSError) and e.errno in _OUT_OF_SPACE:
        line += " (a full disk or a file-size limit stopped a write; free space or raise the limit, then resume)"
    return line


def make_trainer(run_dir: Path, recipe: Recipe, resume: bool, step_offset: int = 0, step_stride: int = 1):
    """The composed trainer for a run directory (in-process; also used by tests)."""
    from trainers import runs
    from trainers.compose import build_trainer_class

    last = run_dir / "weights" / "last.pt"
    family = recipe.family or model_family(last if resume else Path(recipe.model))
    cls = build_trainer_class(
        recipe,
        family,
        telemetry_path=str(run_dir / runs.TELEMETRY_FILE),
        run_dir=str(run_dir),
        step_offset=step_offset,
        step_stride=step_stride,
    )
    overrides = {
        **recipe.train,
        "model": str(last) if resume else recipe.model,
        "data": str(run_dir / "data.yaml"),
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
    }
    if resume:
        overrides["resume"] = str(last)
    return cls(overrides=overrides)


def model_family(path: Path) -> str:
    """'rtdetr' or 'yolo' for a local checkpoint; raises RecipeError for checkpoints that are not detectors."""
    if path.suffix != ".pt" or not path.exists():
        return "rtdetr" if "rtdetr" in path.name.lower() else "yolo"
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel, load_checkpoint

    try:
        model, _ = load_checkpoint(str(path))
    except Exception as e:
        raise RecipeError(
            f"model: {path} is not an ultralytics checkpoint ({type(e).__name__} while loading it); "
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


def _finish(run_dir: Path, trainer: Any, outcome: dict[str, Any]) -> None:
    """Write the run_end event and the final status, whatever happened."""
    from trainers import runs
    from trainers.telemetry import TelemetryWriter

    best = {"epoch": None, "name": None, "value": None}
    if trainer is not None:
        if hasattr(trainer, "wb_flush_steps") and getattr(trainer, "_wb_writer", None) is not None:
            try:
                trainer.wb_flush_steps()
            except Exception:  # never let telemetry hide the real outcome
                pass
        best = getattr(trainer, "wb_best", best)
        if best.get("epoch") is None:  # e.g. resumed run that found no better epoch: keep the earlier best
            prior = runs.read_status(run_dir)
            best = {"epoch": prior.get("best_epoch"), **(prior.get("best_metric") or {"name": None, "value": None})}
    best_metric = {"name": best["name"], "value": best["value"]} if best.get("epoch") is not None else None
    weights = run_dir / "weights"
    candidates = {"best": weights / "best.pt", "last": weights / "last.pt", "results": run_dir / "results.csv"}
    paths = {k: str(p) if p.exists() else None for k, p in candidates.items()}
    # A full disk or a file-size limit may be why the run failed: each write is tried on its own and never
    # raises, so the status that can be written is.
    try:
        with TelemetryWriter(run_dir / runs.TELEMETRY_FILE) as out:
            out.emit(
                "run_end",
                status=outcome["status"],
                best_epoch=best.get("epoch"),
                best_metric=best_metric,
                paths=paths,
                error=outcome["error"],
                traceback=outcome["traceback"],
            )
    except OSError as e:
        print(f"workbench: could not write the run_end event: {e}", file=sys.stderr)
    try:
        runs.write_status(
            run_dir,
            status=outcome["status"],
            error=outcome["error"],
            best_epoch=best.get("epoch"),
            best_metric=best_metric,
        )
    except OSError as e:
        print(f"workbench: could not write status.json: {e}", file=sys.stderr)


class _Tee:
    """Write-through copy of a text stream into the run's console.log."""

    def __init__(self, stream, file):
        self._stream, self._file = stream, file

    def write(self, s):
        self._file.write(s)
        self._file.flush()
        return self._stream.write(s)

    def flush(self):
        self._file.flush()
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Console:
    def __init__(self, file, streams):
        self._file, self._streams = file, streams

    def close(self):
        sys.stdout, sys.stderr = self._streams
        self._file.close()


def _tee_console(path: Path) -> _Console | None:
    """Copy stdout/stderr into console.log unless they already go there (the launcher redirects them)."""
    try:
        if path.exists() and os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(path)):
            return None
    except (OSError, ValueError, AttributeError):
        pass
    f = open(path, "a", encoding="utf-8")
    console = _Console(f, (sys.stdout, sys.stderr))
    sys.stdout, sys.stderr = _Tee(sys.stdout, f), _Tee(sys.stderr, f)
    return console
