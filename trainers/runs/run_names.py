"""What a run started from the UI is called: ``<dataset>-<model>`` from its recipe, then the time
(:func:`trainers.runs.folder.new_run_name`), e.g. ``coco80-yolo11n-20261207-153012``.

A run named after its recipe file's stem read ``config-20261207-...`` when the data YAML was ``config.yaml``, and
said nothing of the model. The CLI keeps naming a run after the recipe file it was given (or ``--name``).
"""

from __future__ import annotations

from pathlib import Path

# Data YAML names that say nothing about the dataset: the folder they are in does.
GENERIC_DATA_STEMS = frozenset({"data", "dataset", "config", "default"})


def run_stem(data: str | None, model: str | None) -> str:
    """``<dataset>-<model>`` (``coco80-yolo11n``): the data YAML's stem, or its folder's name when the stem is a
    generic one (``coco80/data.yaml``, ``exports/config.yaml``), and the checkpoint's or architecture's stem
    (``yolo11n.pt``, ``yolo26s.yaml``). Either may be missing (not chosen yet); ``run`` when both are."""
    dataset = ""
    if data:
        path = Path(data)
        dataset = path.parent.name if path.stem.lower() in GENERIC_DATA_STEMS else path.stem
    return "-".join(part for part in (dataset, Path(model).stem if model else "") if part) or "run"
