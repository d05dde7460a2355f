"""What the UI lets a user download: a run's files, and class weights as a recipe block or JSON (no Streamlit)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from trainers.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT, RECIPE_FILE, RESULTS_FILE, TELEMETRY_FILE

ARTIFACTS = (  # (label, path in the run folder, mime type)
    (Path(BEST_CHECKPOINT).name, BEST_CHECKPOINT, "application/octet-stream"),
    (Path(LAST_CHECKPOINT).name, LAST_CHECKPOINT, "application/octet-stream"),
    (RECIPE_FILE, RECIPE_FILE, "application/x-yaml"),
    (TELEMETRY_FILE, TELEMETRY_FILE, "application/x-ndjson"),
    (RESULTS_FILE, RESULTS_FILE, "text/csv"),
)


def artifacts(run_dir: str | os.PathLike[str]) -> list[tuple[str, Path, str]]:
    """The downloadable files that exist: ``(label, path, mime)``."""
    return [(label, Path(run_dir) / rel, mime) for label, rel, mime in ARTIFACTS if (Path(run_dir) / rel).is_file()]


def read_bytes(path: Path) -> bytes:
    """Deferred download data (read only when the user clicks)."""
    return Path(path).read_bytes()


# ---- class weights as a recipe block ---------------------------------------------------------------------------
def weights_yaml(names: Sequence[str], weights: Sequence[float], source: str = "") -> str:
    """A ``customizations.class_weights`` block with explicit weights, ready to paste into a recipe."""
    header = f"# class weights for {source}\n" if source else ""
    header += "# " + ", ".join(f"{i}: {n}" for i, n in enumerate(names)) + "\n"
    body = {"customizations": {"class_weights": {"weights": [round(float(w), 6) for w in weights]}}}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None)


def weights_json(names: Sequence[str], weights: Sequence[float], **meta: Any) -> str:
    return json.dumps({**meta, "names": list(names), "weights": [float(w) for w in weights]}, indent=2)
