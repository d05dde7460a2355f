"""A run folder with per-epoch evidence written directly (no training), for the Predictions tab's tests.

Eight of the demo's real val images (128 x 128), four demo classes, and boxes laid out so that what each image's tile
must show is known by construction, not computed by the code under test: :data:`EPOCH1` lists each image's ground
truth and predictions, :data:`ERRORS_025` / :data:`ERRORS_050` their missed and false boxes at confidence 0.25 and
0.5 (a prediction counts when it covers its ground-truth box in the same slot with the same class). Epoch 2 and
"final" predict every box right.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.fixtures.make_telemetry import FIXTURES
from trainers.run_files import TELEMETRY_FILE
from trainers.runs.folder import create_run_dir
from trainers.runs.status import process_start_time, write_status
from trainers.telemetry.evidence import FINAL, GT, PRED, write_epoch, write_sample

REPO = Path(__file__).resolve().parent.parent
NAMES = ["circle", "square", "triangle", "cross"]
CROSS = 3
SIZE = 128
SLOTS = [(8, 8, 40, 40), (72, 8, 104, 40), (8, 72, 40, 104), (72, 72, 104, 104)]  # x1, y1, x2, y2 in pixels
IMAGES = [str(REPO / "assets" / "demo" / "images" / "val" / f"val_{i:03d}.jpg") for i in range(8)]

# image -> (ground truth as (slot, class), predictions as (slot, class, confidence))
EPOCH1: list[tuple[list[tuple[int, int]], list[tuple[int, int, float]]]] = [
    ([(0, 0), (1, 1)], [(0, 0, 0.9), (1, 1, 0.9)]),  # all found
    ([(0, 0), (1, 0), (2, 1)], [(0, 0, 0.9)]),  # 2 missed
    ([(0, CROSS)], [(0, CROSS, 0.9), (3, 1, 0.6)]),  # 1 false
    ([(0, 2), (1, 2)], [(0, 2, 0.3), (1, 2, 0.9)]),  # found at 0.25, 1 missed at 0.5
    ([], [(0, 1, 0.7), (1, 1, 0.7), (2, 0, 0.7)]),  # 3 false (no labels)
    ([(2, CROSS), (3, 0)], [(2, 0, 0.8), (3, 0, 0.9)]),  # a cross taken for a circle: 1 missed, 1 false
    ([(0, 1)], [(0, 1, 0.95), (3, CROSS, 0.4)]),  # a cross predicted at 0.4: 1 false at 0.25, none at 0.5
    ([(1, 2)], [(1, 2, 0.9), (2, 0, 0.1)]),  # all found above 0.1 (the 0.1 box is drawn at 0.05 only)
]
ERRORS_025 = [(0, 0), (2, 0), (0, 1), (0, 0), (0, 3), (1, 1), (0, 1), (0, 0)]
ERRORS_050 = [(0, 0), (2, 0), (0, 1), (1, 0), (0, 3), (1, 1), (0, 0), (0, 0)]
WORST_025 = [4, 1, 5, 2, 6, 0, 3, 7]  # most missed + false first, sample order on ties
WORST_050 = [4, 1, 5, 2, 3, 0, 6, 7]
WITH_CROSS_025 = [2, 5, 6]  # a cross labelled, or predicted at 0.25
WITH_CROSS_050 = [2, 5]


def all_right(spec):
    """The same ground truth, every box predicted right at 0.9."""
    return [(gt, [(slot, cls, 0.9) for slot, cls in gt]) for gt, _ in spec]


def tables(spec) -> dict[str, dict[str, np.ndarray]]:
    """The ``boxes`` table of one validation (the other tables empty)."""
    rows = []
    for image, (gt, preds) in enumerate(spec):
        rows += [(image, GT, cls, 1.0, *SLOTS[slot]) for slot, cls in gt]
        rows += [(image, PRED, cls, conf, *(v + 1 for v in SLOTS[slot])) for slot, cls, conf in preds]  # IoU 0.88
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 8
    names = ("image", "kind", "cls", "conf", "x1", "y1", "x2", "y2")
    return {"boxes": {k: np.asarray(v) for k, v in zip(names, cols, strict=True)}}


def counts(spec, image: int, conf: float) -> tuple[int, int]:
    """(ground-truth boxes, predictions at or above ``conf``) of one image."""
    gt, preds = spec[image]
    return len(gt), sum(c >= conf for _, _, c in preds)


def evidence_run(runs: Path, name: str, epochs=(1, 2, FINAL), *, running: bool = False) -> Path:
    """A run folder (completed, or ``running`` under this process) with the sample and the given validations."""
    run = create_run_dir(runs, name)
    (run / TELEMETRY_FILE).write_bytes((FIXTURES / "complete.jsonl").read_bytes())
    write_sample(run, [{"file": f, "width": SIZE, "height": SIZE} for f in IMAGES], NAMES)
    for e in epochs:
        add_epoch(run, e)
    if running:
        write_status(run, status="running", pid=os.getpid(), pid_start=process_start_time(os.getpid()), epoch=1,
                     epochs=6)  # fmt: skip
    else:
        write_status(run, status="completed", epoch=6, epochs=6)
    return run


def add_epoch(run: Path, epoch: int | str) -> None:
    """Write one validation's evidence: epoch 1 as :data:`EPOCH1`, any later one all right."""
    write_epoch(run, epoch, tables(EPOCH1 if epoch == 1 else all_right(EPOCH1)))
