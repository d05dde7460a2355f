"""What the doctor knows about a run's dataset: per-class counts, label files without an image, images ultralytics
drops or rewrites. Scanned once from the run's ``data.yaml`` and cached in the run folder (``dataset_check.json``).

The label scan is cheap (:func:`trainers.datasets.summary.summarize_split`: under a second for 100k label files). The
corrupt-image check opens every image (:func:`trainers.datasets.corrupt_images.find_corrupt_images`: 3-30 s per 100k),
so
it is capped at :data:`IMAGE_SCAN_LIMIT` images per split and its result is cached with the rest: a run trained on
the dataset as it was when it started, so the facts of its first diagnosis stay its facts. ``refresh=True`` scans
again. No torch; PIL only inside the image check.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainers.run_files import DATA_FILE, DATASET_CHECK_FILE, write_json_atomic

CACHE_VERSION = 1
IMAGE_SCAN_LIMIT = 20_000  # images per split checked for corruption (the first ones); 2-6 s on 2 cores
LISTED = 10  # paths kept per list (counts stay exact)


@dataclass(frozen=True)
class SplitFacts:
    """One split, as the doctor needs it.

    Attributes:
        split: ``train`` or ``val``.
        instances: Boxes per class id.
        n_images: Images in the split.
        orphan_labels: The first label files no image maps to (relative to the dataset root); ``n_orphans`` counts all.
        orphan_instances: Boxes per class in those files.
        images_without_labels: Images without a label file (background).
        corrupt: ``{"path", "action", "reason"}`` of the images ultralytics drops (``dropped``) or rewrites
            (``repaired``), the first :data:`LISTED`; ``n_dropped`` / ``n_repaired`` count all.
        images_checked: Images checked for corruption (None: not checked).
    """

    split: str
    instances: list[int]
    n_images: int
    orphan_labels: list[str] = field(default_factory=list)
    n_orphans: int = 0
    orphan_instances: list[int] = field(default_factory=list)
    images_without_labels: int = 0
    corrupt: list[dict[str, str]] = field(default_factory=list)
    n_dropped: int = 0
    n_repaired: int = 0
    images_checked: int | None = None


@dataclass(frozen=True)
class DatasetFacts:
    """The dataset of a run: its ``data.yaml``, class names and the train and val splits' facts."""

    data: str
    names: list[str]
    splits: dict[str, SplitFacts]

    @property
    def train_counts(self) -> list[int] | None:
        """Train boxes per class id (what class weights are computed from), or None."""
        train = self.splits.get("train")
        return list(train.instances) if train else None

    @property
    def val_counts(self) -> list[int] | None:
        val = self.splits.get("val")
        return list(val.instances) if val else None

    def to_dict(self) -> dict[str, Any]:
        return {"v": CACHE_VERSION, "data": self.data, "names": list(self.names),
                "splits": {k: asdict(s) for k, s in self.splits.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetFacts:
        return cls(d["data"], list(d["names"]), {k: SplitFacts(**s) for k, s in d["splits"].items()})


def scan_dataset(data_yaml: str | os.PathLike[str], *, check_images: bool = True,
                 image_limit: int | None = IMAGE_SCAN_LIMIT) -> DatasetFacts:  # fmt: skip
    """Scan a dataset's train and val splits.

    Raises:
        DatasetError: The data.yaml or a label file the training reads is invalid (as ``workbench counts`` says).
    """
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.files import image_file_strs
    from trainers.datasets.summary import summarize_split

    ds = load_dataset(data_yaml)
    base = os.fspath(ds.root) + os.sep
    rel = lambda p: p[len(base) :] if p.startswith(base) else p  # noqa: E731
    splits = {}
    for split in ("train", "val"):
        if split not in ds.splits:
            continue
        s = summarize_split(ds, split)
        extra: dict[str, Any] = {}
        if check_images:
            from trainers.datasets.corrupt_images import find_corrupt_images

            scan = find_corrupt_images(image_file_strs(ds, split), limit=image_limit)
            extra = {
                "corrupt": [{**p.to_dict(), "path": rel(p.path)} for p in scan.problems[:LISTED]],
                "n_dropped": len(scan.dropped), "n_repaired": len(scan.repaired), "images_checked": scan.checked,
            }  # fmt: skip
        splits[split] = SplitFacts(
            split=split, instances=list(s.counts.instances), n_images=s.counts.n_images,
            orphan_labels=[rel(p) for p in s.orphan_labels[:LISTED]], n_orphans=len(s.orphan_labels),
            orphan_instances=list(s.orphan_instances), images_without_labels=len(s.images_without_labels), **extra,
        )  # fmt: skip
    return DatasetFacts(str(ds.yaml_path), list(ds.names), splits)


def dataset_facts_for_run(run_dir: str | os.PathLike[str], *, refresh: bool = False,
                          check_images: bool = True) -> DatasetFacts | None:  # fmt: skip
    """The run's dataset facts: from its ``dataset_check.json``, else scanned from its ``data.yaml`` and cached.

    Returns None when the run has no data.yaml or its dataset can no longer be read (moved, deleted): the doctor
    then gives the findings of the telemetry alone. A run folder that cannot be written is scanned every time.
    """
    from trainers.errors import WorkbenchError

    run_dir = Path(run_dir)
    cache = run_dir / DATASET_CHECK_FILE
    if not refresh and cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("v") == CACHE_VERSION and (data["splits"].get("train", {}).get("images_checked") is not None
                                                   or not check_images):  # fmt: skip
                return DatasetFacts.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or from another version: scan again
    data_yaml = run_dir / DATA_FILE
    if not data_yaml.is_file():
        return None
    try:
        facts = scan_dataset(data_yaml, check_images=check_images)
    except (WorkbenchError, OSError):
        return None
    try:
        write_json_atomic(cache, facts.to_dict())
    except OSError:
        pass
    return facts
