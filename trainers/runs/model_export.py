"""Take a trained model out of a run: ONNX, TorchScript or OpenVINO through ultralytics' exporter, each one verified.

``workbench export-model RUN`` (and the Runs page's Export) runs :func:`plan_export` (cheap checks, no torch: the
run, its checkpoint, the format's packages, ``imgsz``, the sample images), then :func:`export_model`:

1. the checkpoint is copied to a temporary folder and exported there (``YOLO(pt).export(format, imgsz,
   device="cpu")``; ultralytics writes its output beside the ``.pt``, and the run's ``weights/`` must not change);
2. the export and the ``.pt`` predict on up to :data:`SAMPLE_IMAGES` images of the run's val split and their boxes
   are compared (:mod:`trainers.runs.export_check`, tolerance in docs/export-model.md);
3. only then the model and its verification record (``<file>.verify.json``) go to the output folder
   (default ``<run>/export/model/``), replacing an earlier export of the same weights and format.

A failure before step 3 (a missing package, no checkpoint, the exporter or the exported model raising) leaves the run
as it was. A verification outside the tolerance keeps the file, with ``"passed": false`` in its record.

Importing this module is cheap (the UI reads records with it); ultralytics is imported inside :func:`export_model`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainers.errors import RunError, WorkbenchError, one_line
from trainers.run_files import (
    BEST_CHECKPOINT,
    DATA_FILE,
    LAST_CHECKPOINT,
    MODEL_EXPORT_DIR,
    RECIPE_FILE,
    VERIFY_SUFFIX,
    write_json_atomic,
)

SAMPLE_IMAGES = 16  # val images the export is verified on
STRIDE = 32  # the largest stride of the YOLO and RT-DETR detectors: an input side must be a multiple of it
DEFAULT_IMGSZ = 640  # ultralytics' own, for a recipe that sets none
INSTALL_HINT = "pip install 'trainer-workbench[export]'"
WEIGHTS = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}
RECORD_VERSION = 1


@dataclass(frozen=True)
class Requirement:
    """A package an export needs: any of ``packages`` (alternative distributions) at a version in [minimum, below)."""

    packages: tuple[str, ...]
    minimum: str
    below: str | None = None

    def problem(self) -> str | None:
        """Why the installed package does not do (``onnxslim is not installed``), or None when it does."""
        found = None
        for name in self.packages:
            try:
                found = (name, importlib.metadata.version(name))
            except importlib.metadata.PackageNotFoundError:
                continue
            if _version(found[1]) >= _version(self.minimum) and (
                self.below is None or _version(found[1]) < _version(self.below)
            ):
                return None
        wanted = f">={self.minimum}" + (f",<{self.below}" if self.below else "")
        if found is None:
            return f"{self.packages[0]} is not installed"
        return f"{found[0]} {found[1]} is installed, the export needs {self.packages[0]}{wanted}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its ultralytics name, what the export is called, the packages it needs, what runs it."""

    name: str
    label: str
    suffix: str  # appended to the weights' stem: best.onnx, best_openvino_model (a folder)
    requirements: tuple[Requirement, ...]
    runtime: str  # the distribution that runs the export in the verification (its version goes in the record)

    def file_name(self, weights: str) -> str:
        return f"{weights}{self.suffix}"


# The versions are ultralytics 8.4's own checks in its exporter (engine/exporter.py): it would pip-install anything
# missing at export time, so each is checked here first. ONNX: onnxslim because the exporter simplifies by default,
# onnxruntime because the exporter asks for it with simplify and the verification runs the file with it.
FORMATS = {
    "onnx": ExportFormat(
        "onnx", "ONNX", ".onnx",
        (
            Requirement(("onnx",), "1.12.0", "2.0.0"),
            Requirement(("onnxslim",), "0.1.82"),
            Requirement(("onnxruntime", "onnxruntime-gpu"), "1.16.0"),
        ),
        runtime="onnxruntime",
    ),
    "torchscript": ExportFormat("torchscript", "TorchScript", ".torchscript", (), runtime="torch"),
    "openvino": ExportFormat(
        "openvino", "OpenVINO", "_openvino_model", (Requirement(("openvino",), "2024.0.0"),), runtime="openvino"
    ),
}  # fmt: skip


class ExportFailed(RuntimeError):
    """The exporter, or the exported model in the verification, raised: the CLI prints one line and exits 1."""


@dataclass(frozen=True)
class ExportPlan:
    """What :func:`export_model` will do, checked by :func:`plan_export`."""

    run_dir: Path
    format: ExportFormat
    weights: str  # best | last
    checkpoint: Path
    imgsz: int
    out_dir: Path
    images: tuple[str, ...]

    @property
    def target(self) -> Path:
        return self.out_dir / self.format.file_name(self.weights)


def missing_packages(fmt: str) -> list[str]:
    """What is missing for ``fmt`` (one phrase per package), empty when its export can run here."""
    return [p for r in FORMATS[fmt].requirements if (p := r.problem())]


def plan_export(
    run_dir: str | os.PathLike[str],
    fmt: str,
    weights: str = "best",
    imgsz: int | None = None,
    out: str | os.PathLike[str] | None = None,
) -> ExportPlan:
    """Check everything an export needs before any heavy import; nothing is written.

    Raises:
        WorkbenchError: One line: an unknown format or weights, no checkpoint, a bad ``imgsz``, a package missing
            (naming the extra to install), or no val images to verify on.
    """
    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise RunError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if weights not in WEIGHTS:
        raise RunError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    checkpoint = run_dir / WEIGHTS[weights]
    if not checkpoint.is_file():
        other = "last" if weights == "best" else "best"
        hint = f"; try --weights {other}" if (run_dir / WEIGHTS[other]).is_file() else ""
        raise RunError(f"run {run_dir.name!r} has no {WEIGHTS[weights]} (it is saved after a trained epoch){hint}")
    if imgsz is None:
        imgsz = default_imgsz(run_dir)
    elif imgsz < STRIDE or imgsz % STRIDE:
        raise RunError(f"--imgsz must be a multiple of {STRIDE} (32, 64, ... 640), got {imgsz}")
    missing = missing_packages(fmt)
    if missing:
        raise WorkbenchError(f"--format {fmt} needs packages that are missing ({'; '.join(missing)}); {INSTALL_HINT}")
    out_dir = Path(out) if out is not None else run_dir / MODEL_EXPORT_DIR
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"--out {out_dir} is a file; give a folder")
    return ExportPlan(run_dir, FORMATS[fmt], weights, checkpoint, imgsz, out_dir, tuple(sample_images(run_dir)))


def default_imgsz(run_dir: Path) -> int:
    """The image size the run trained at (its recipe's ``train.imgsz``, rounded up to a multiple of 32 as ultralytics
    rounds it), else ultralytics' default 640."""
    import yaml

    try:
        recipe = yaml.safe_load((run_dir / RECIPE_FILE).read_text(encoding="utf-8")) or {}
        value = int((recipe.get("train") or {}).get("imgsz") or DEFAULT_IMGSZ)
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        value = DEFAULT_IMGSZ
    return max(STRIDE, -(-value // STRIDE) * STRIDE)


def sample_images(run_dir: Path, n: int = SAMPLE_IMAGES) -> list[str]:
    """Up to ``n`` images of the run's val split (from the run's own data.yaml), spread evenly over the sorted list.

    Raises:
        WorkbenchError: The run has no data.yaml, or its val split cannot be read or is empty.
    """
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.files import image_file_strs

    data = run_dir / DATA_FILE
    if not data.is_file():
        raise RunError(f"run {run_dir.name!r} has no {DATA_FILE}; the export is verified on the run's val images")
    files = image_file_strs(load_dataset(data), "val")
    if len(files) <= n:
        return files
    return [files[i * len(files) // n] for i in range(n)]


# ---- the export ----------------------------------------------------------------------------------------------------
def export_model(plan: ExportPlan, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Export, verify, then move the model and its record into ``plan.out_dir``; return the record.

    Raises:
        ExportFailed: The exporter or the exported model raised (nothing written to the output folder).
    """
    from trainers.offline import apply_offline_env

    os.environ.setdefault("YOLO_VERBOSE", "False")  # the command's own lines are its output
    apply_offline_env()  # before ultralytics is imported: no network, no pip install of a missing package
    name = plan.format.file_name(plan.weights)
    staging = Path(tempfile.mkdtemp(prefix="workbench-export-"))
    try:
        with warnings.catch_warnings():
            # torch 2.9+ calls its own torch.jit tracing (which the TorchScript and OpenVINO exports use) deprecated,
            # at every call: three lines that say nothing to someone exporting a model
            warnings.simplefilter("ignore", FutureWarning)
            staged_pt = staging / f"{plan.weights}.pt"
            shutil.copy2(plan.checkpoint, staged_pt)  # the exporter writes beside the .pt: never into weights/
            t0 = time.perf_counter()
            produced = _export(plan, staged_pt, say)
            export_s, t0 = time.perf_counter() - t0, time.perf_counter()
            found = _verify(plan, staged_pt, produced, say)
        record = _record(plan, name, found, export_s, time.perf_counter() - t0)
        _install(produced, plan.out_dir / name)
        write_json_atomic(plan.out_dir / f"{name}{VERIFY_SUFFIX}", record)
        return record
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export(plan: ExportPlan, staged_pt: Path, say: Callable[[str], None]) -> Path:
    """ultralytics' exporter on the staged checkpoint; the path of what it wrote (beside it)."""
    fmt = plan.format
    say(f"exporting {plan.run_dir.name}/{WEIGHTS[plan.weights]} to {fmt.label} at imgsz {plan.imgsz}")
    try:
        from ultralytics import YOLO  # an RT-DETR checkpoint comes back as ultralytics.RTDETR

        produced = Path(YOLO(str(staged_pt)).export(format=fmt.name, imgsz=plan.imgsz, device="cpu"))
    except Exception as e:
        raise ExportFailed(f"the {fmt.label} export of {WEIGHTS[plan.weights]} failed: {_reason(e)}") from e
    if not produced.exists() or produced.parent != staged_pt.parent:
        raise ExportFailed(f"the {fmt.label} exporter reported {produced}, which is not the expected output")
    return produced


def _verify(plan: ExportPlan, staged_pt: Path, produced: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The export's boxes against those of the checkpoint it was made from (the staged copy: a running run may have
    replaced its best.pt since) on the sample images (:func:`export_check.verify`)."""
    from trainers.runs import export_check

    say(f"verifying on {len(plan.images)} val images against the .pt")
    try:
        found = export_check.verify(staged_pt, produced, plan.images, plan.imgsz, fmt=plan.format.name)
    except Exception as e:
        raise ExportFailed(f"the exported {plan.format.label} model could not be run: {_reason(e)}") from e
    return found.to_dict()


def _reason(e: BaseException) -> str:
    text = one_line(e) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _install(produced: Path, target: Path) -> None:
    """Move the export to ``target``, replacing an earlier one; a half-copied file never has the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    if partial.is_dir():  # left by a move that was killed half-way
        shutil.rmtree(partial)
    partial.unlink(missing_ok=True)
    shutil.move(str(produced), str(partial))
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(partial, target)


def _record(plan: ExportPlan, name: str, found: dict[str, Any], export_s: float, verify_s: float) -> dict[str, Any]:
    versions = {}
    for dist in ("ultralytics", "torch", plan.format.runtime):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "v": RECORD_VERSION,
        "run": plan.run_dir.name,
        "format": plan.format.name,
        "file": name,
        "weights": plan.weights,
        "checkpoint": WEIGHTS[plan.weights],
        "imgsz": plan.imgsz,
        "device": "cpu",
        "precision": "float32",  # ultralytics' default export (no half, no int8), run at that precision
        "runtime": plan.format.runtime,
        "images": list(plan.images),
        **found,
        "export_s": round(export_s, 3),
        "verify_s": round(verify_s, 3),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
    }


# ---- reading the records (the CLI's output, the Runs page) -----------------------------------------------------
def summary_line(record: dict[str, Any]) -> str:
    """The verification as one line: boxes compared, the largest differences against the tolerance, the verdict."""
    t = record.get("tolerance") or {}
    n = len(record.get("images") or [])
    head = f"{record.get('file')}: verified on {n} val image{'s' * (n != 1)} with {record.get('runtime')}"
    if record.get("missing") or record.get("extra"):
        body = (
            f"{record.get('missing', 0)} box(es) of the .pt missing from the export and {record.get('extra', 0)} "
            f"extra (conf >= {t.get('conf_threshold')}, matched by class and IoU >= {t.get('match_iou')}), e.g. on "
            f"{Path(str(record.get('worst_image'))).name}"
        )
    elif not record.get("boxes_compared"):
        body = f"no box reached confidence {t.get('conf_threshold')} on these images, so no box was compared"
    else:
        body = (
            f"{record['boxes_compared']} boxes compared, largest box difference {record['max_box_diff_px']:.4g} px "
            f"(tolerance {t.get('box_px')} px), largest confidence difference {record['max_conf_diff']:.4g} "
            f"(tolerance {t.get('conf')})"
        )
    return f"{head}: {body}: {'passed' if record.get('passed') else 'OUTSIDE THE TOLERANCE'}"


def read_records(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The verification records in an export folder whose model is still there, newest first (unreadable: skipped)."""
    folder = Path(out_dir)
    records = []
    try:
        paths = sorted(folder.glob(f"*{VERIFY_SUFFIX}"))
    except OSError:
        return []
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        model = folder / path.name.removesuffix(VERIFY_SUFFIX)
        if isinstance(record, dict) and model.exists():
            records.append({**record, "path": str(model)})
    return sorted(records, key=lambda r: str(r.get("created", "")), reverse=True)
