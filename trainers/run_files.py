"""What a run folder holds, by name, and the one atomic JSON writer for the files in it.

A run folder (``<runs root>/<name>/``, ``docs/runs.md``)::

    status.json          STATUS_FILE         status, pid, epoch, best epoch/metric (read and merged under a lock)
    telemetry.jsonl      TELEMETRY_FILE      the events log (docs/telemetry.md)
    steps/               STEPS_DIR           the step store: per-step series in columnar segments (docs/step-store.md)
    console.log          CONSOLE_FILE        the training process' stdout and stderr
    recipe.yaml          RECIPE_FILE         the validated recipe it trains
    data.yaml            DATA_FILE           the dataset yaml it trains on, paths resolved
    dataset_check.json   DATASET_CHECK_FILE  the doctor's dataset facts, scanned once
    weights/last.pt      LAST_CHECKPOINT     ultralytics' checkpoints (resume reads last.pt)
    weights/best.pt      BEST_CHECKPOINT
    results.csv          RESULTS_FILE        ultralytics' own per-epoch table
    export/              EXPORT_DIR          ``workbench export``'s default output
    export/model/        MODEL_EXPORT_DIR    ``workbench export-model``'s default output: best.onnx and its
                                             best.onnx.verify.json (VERIFY_SUFFIX), best.torchscript, ...
    evidence/            EVIDENCE_DIR        per-validation predictions, confusions, PR curves (docs/telemetry.md)
    notes.json           NOTES_FILE          the user's note and tags (trainers/runs/notes.py), apart from status.json

Folders of the runs root that are not runs start with a dot (run listings skip them): :data:`UI_RECIPES_DIR`,
:data:`SWEEPS_DIR`, :data:`UI_SWEEPS_DIR`, :data:`UI_EXPORTS_DIR`. Nothing here imports anything beyond the standard
library.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
TELEMETRY_FILE = "telemetry.jsonl"
STEPS_DIR = "steps"
CONSOLE_FILE = "console.log"
RECIPE_FILE = "recipe.yaml"
DATA_FILE = "data.yaml"
DATASET_CHECK_FILE = "dataset_check.json"
WEIGHTS_DIR = "weights"
LAST_CHECKPOINT = f"{WEIGHTS_DIR}/last.pt"
BEST_CHECKPOINT = f"{WEIGHTS_DIR}/best.pt"
RESULTS_FILE = "results.csv"
EXPORT_DIR = "export"
MODEL_EXPORT_DIR = f"{EXPORT_DIR}/model"
VERIFY_SUFFIX = ".verify.json"  # beside each exported model: its boxes against the .pt's (docs/export-model.md)
EVIDENCE_DIR = "evidence"
NOTES_FILE = "notes.json"  # a note and tags, never in status.json: the trainer rewrites that one every epoch

# In the runs root, beside the runs.
UI_RECIPES_DIR = ".ui-recipes"  # the recipe New run wrote for each run it started (one file per run)
ARCHIVE_DIR = ".archive"  # in the runs root: archived run folders (Archive on the Runs page; a dot-folder: not listed)
SWEEPS_DIR = ".sweeps"  # <runs root>/.sweeps/<name>/: SWEEP_RECORD_FILE and each variant's recipe
SWEEP_RECORD_FILE = "sweep.json"
UI_SWEEPS_DIR = ".ui-sweeps"  # <runs root>/.ui-sweeps/<name>.yaml and .log: sweeps started from the UI
UI_EXPORTS_DIR = ".ui-exports"  # <runs root>/.ui-exports/<run>/<weights>.<format>.json and .log: Runs page exports
NOTIFY_RECIPES_DIR = ".notify-recipes"  # <runs root>/.notify-recipes/<id>/<stem>.yaml: recipes `train --notify` set


def chosen_folder(cli_value: str | os.PathLike[str] | None, flag: str, env: str, default: str) -> tuple[Path, str]:
    """The folder a setting names, and where it came from: ``flag``'s value, else ``$env``, else ``default``.

    The one rule behind ``--runs-dir`` and ``--datasets-dir``; the second value names the source for error messages
    (``--runs-dir``, the variable's name, or nothing given).
    """
    if cli_value not in (None, ""):
        raw, source = os.fspath(cli_value), flag
    elif os.environ.get(env):
        raw, source = os.environ[env], env
    else:
        raw, source = default, ""
    return Path(raw).expanduser().resolve(), source


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` so that a reader sees the old file or the new one, never half.

    A temporary file in the same folder is written, fsynced and renamed over ``path`` (removed again on any error).

    Raises:
        ValueError: ``data`` holds NaN or infinity (not JSON).
        OSError: The folder is not writable, the disk is full...
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # the rename must not be able to land before the data (power loss)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
