"""Train a recipe in this process: create the run folder, train, and always record how the attempt ended.

``workbench train`` and ``workbench resume`` are thin wrappers over :func:`train_run` and :func:`resume_run`; the
launcher spawns exactly those commands. Bad input raises :class:`~trainers.errors.WorkbenchError` before anything is
written (:mod:`trainers.runs.preflight`); a failure during training is recorded (status ``failed``, a ``run_end`` event
with
the error and the traceback's last lines, :func:`trainers.runs.folder.end_run`) and returns exit code 1.
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

from trainers import run_files
from trainers.errors import RunError
from trainers.recipe import Recipe, load_recipe
from trainers.runs import folder as run_folder
from trainers.runs.preflight import check_last_checkpoint, model_family, prepare
from trainers.runs.status import read_status, write_status
from trainers.statuses import SUCCEEDED, RunStatus
from trainers.train_args import train_value

EXIT_OK, EXIT_FAILED = 0, 1
_OUT_OF_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
TRACEBACK_LINES = 12


class StopRequested(Exception):
    """Raised inside the training loop at a batch boundary after SIGINT/SIGTERM."""


# ---- entry points ---------------------------------------------------------------------------------------------------
def train_run(
    recipe_path: str | Path,
    runs_root: str | Path | None = None,
    name: str | None = None,
    existing: bool = False,
    step_stride: int = 1,
    device: str | None = None,
    weights_dir: str | Path | None = None,
    allow_downloads: bool | None = None,
) -> int:
    """Validate ``recipe_path``, create the run directory and train in this process. Returns the exit code.

    ``device`` overrides the recipe's ``train.device`` for this process only (recipe.yaml keeps the recipe's): a Ray
    job gets the GPUs it was granted renumbered from 0. An official checkpoint or ultralytics dataset name is looked
    up in ``weights_dir`` (default :func:`trainers.runs.model_zoo.weights_dir`) and the datasets folder, and
    downloaded first when ``allow_downloads`` (default: ``--allow-downloads`` / ``$WORKBENCH_ALLOW_DOWNLOADS``), never
    into a reserved ``existing`` run (the launcher checked it).
    """
    from trainers.datasets.data_yaml import resolved_data_dict
    from trainers.runs import model_zoo
    from trainers.runs.downloads import fetch

    recipe = load_recipe(recipe_path)
    root = run_folder.runs_root(runs_root)
    if existing:
        if not name:
            raise RunError("--existing needs --name of the run directory reserved by the launcher")
        run_dir = run_folder.find_run(root, run_folder.validate_run_name(name))
        if read_status(run_dir).get("status") != RunStatus.STARTING:
            raise RunError(f"--existing: run '{name}' is not waiting to start; start a new run instead")
    else:
        name = run_folder.validate_run_name(name) if name else run_folder.new_run_name(Path(recipe_path).stem)
    # Names to files before anything is written: recipe.yaml keeps the names, the trainer gets the files.
    allowed = model_zoo.downloads_allowed() if allow_downloads is None else allow_downloads
    download = fetch if allowed and not existing else None
    trained = model_zoo.resolve_assets(recipe, model_zoo.weights_dir(weights_dir), download=download)
    ds = prepare(trained)
    if not existing:
        try:
            run_dir = run_folder.create_run_dir(root, name)
        except OSError as e:
            raise run_folder.unusable_runs_root(root, e) from None
    (run_dir / run_files.RECIPE_FILE).write_text(recipe.to_yaml(), encoding="utf-8")
    data_yaml = yaml.safe_dump(resolved_data_dict(ds), sort_keys=False)
    (run_dir / run_files.DATA_FILE).write_text(data_yaml, encoding="utf-8")
    write_status(
        run_dir,
        status=RunStatus.RUNNING,
        pid=os.getpid(),
        epoch=0,
        epochs=train_value(recipe.train, "epochs"),
        error=None,
        resumes=0,
        step_stride=int(step_stride),  # kept for resume
    )
    return execute(run_dir, trained, resume=False, step_stride=step_stride, device=device)


def resume_run(run_dir: str | Path, device: str | None = None) -> int:
    """Continue a stopped or failed run from its last.pt, appending to the same telemetry. Returns the exit code.

    ``device``: as for :func:`train_run`.
    """
    from trainers.telemetry.events import read_events
    from trainers.telemetry.run_log import RunLog

    run_dir = Path(run_dir)
    status = run_folder.check_resumable(run_dir)
    recipe = Recipe.from_yaml(
        (run_dir / run_files.RECIPE_FILE).read_text(encoding="utf-8"), source=str(run_dir / run_files.RECIPE_FILE)
    )
    check_last_checkpoint(run_dir / run_files.LAST_CHECKPOINT)
    log = RunLog.from_events(read_events(run_dir / run_files.TELEMETRY_FILE)[0])
    resumes = int(status.get("resumes", 0)) + 1
    write_status(run_dir, status=RunStatus.RUNNING, pid=os.getpid(), error=None, resumes=resumes)
    stride = int(status.get("step_stride") or 1)
    return execute(run_dir, recipe, resume=True, step_offset=log.completed_steps, step_stride=stride, device=device)


# ---- the training process ---------------------------------------------------------------------------------------
def execute(
    run_dir: Path, recipe: Recipe, resume: bool, step_offset: int = 0, step_stride: int = 1, device: str | None = None
) -> int:
    """Train (or resume) in this process, translating SIGINT/SIGTERM into a clean stop at a batch boundary."""
    from trainers.offline import apply_offline_env, quiet_integrations

    apply_offline_env()
    quiet_integrations()
    console = _tee_console(run_dir / run_files.CONSOLE_FILE)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    trainer = None
    outcome: dict[str, Any] = {"status": RunStatus.FAILED, "error": None, "traceback": None}
    try:
        trainer = make_trainer(
            run_dir, recipe, resume=resume, step_offset=step_offset, step_stride=step_stride, device=device
        )

        def check_stop(trainer_) -> None:
            if stop.is_set() or trainer_.stop_reason:
                raise StopRequested

        # Registered on this instance only (not in the class), so a DDP worker never gets it twice.
        for event in ("on_train_batch_end", "on_train_epoch_start", "on_pretrain_routine_end"):
            trainer.add_callback(event, check_stop)
        trainer.train()
        # Returned without StopRequested: the loop ended by itself (all epochs, or early stopping) and final_eval
        # stripped last.pt, so a stop that came after the last batch (during the last validation or the final one)
        # ends it completed: its weights are final and ultralytics would refuse to resume it.
        outcome["status"] = RunStatus.COMPLETED
    except (StopRequested, KeyboardInterrupt):
        outcome["status"] = RunStatus.STOPPED
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
    return EXIT_OK if outcome["status"] in SUCCEEDED else EXIT_FAILED


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


def make_trainer(
    run_dir: Path, recipe: Recipe, resume: bool, step_offset: int = 0, step_stride: int = 1, device: str | None = None
):
    """The composed trainer for a run directory (in-process; also used by tests)."""
    from trainers.training.compose import build_trainer_class

    last = run_dir / run_files.LAST_CHECKPOINT
    family = recipe.family or model_family(last if resume else Path(recipe.model))
    cls = build_trainer_class(
        recipe,
        family,
        telemetry_path=str(run_dir / run_files.TELEMETRY_FILE),
        run_dir=str(run_dir),
        step_offset=step_offset,
        step_stride=step_stride,
    )
    overrides = {
        **recipe.train,
        "model": str(last) if resume else recipe.model,
        "data": str(run_dir / run_files.DATA_FILE),
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
    }
    if device is not None:
        overrides["device"] = device
    if resume:
        overrides["resume"] = str(last)
    return cls(overrides=overrides)


def _finish(run_dir: Path, trainer: Any, outcome: dict[str, Any]) -> None:
    """Record how this attempt ended, whatever happened (the steps still buffered first)."""
    best, stop_reason = None, None
    if trainer is not None:
        if outcome["status"] == RunStatus.STOPPED:
            stop_reason = trainer.stop_reason  # e.g. a critical doctor finding (doctor_stop)
        try:
            trainer.close_telemetry()  # buffered steps to the step store; the status write in flight finished
        except Exception:  # never let telemetry hide the real outcome
            pass
        best = trainer.best_record
    ended = run_folder.end_run(
        run_dir,
        outcome["status"],
        error=outcome["error"],
        traceback=outcome["traceback"],
        best=best,
        stop_reason=stop_reason,
    )
    from trainers.training.notify_mixin import post_run_end

    post_run_end(trainer, run_dir, ended)  # the recipe's notify block, if any; waits a few seconds at most


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
