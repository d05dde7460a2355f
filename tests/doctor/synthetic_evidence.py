"""Synthetic per-epoch evidence for the prediction rules' tests: confusion matrices and unlabelled-box candidates
written with the evidence format's own writer (``write_sample`` / ``write_epoch``), no training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.doctor.synthetic import NAMES

Box = tuple[str, int, float, tuple[float, float, float, float]]  # (file, cls, conf, xyxy)


def matrix(boxes: list[int], taken: dict[tuple[int, int], int] | None = None) -> np.ndarray:
    """A confusion matrix ``[predicted, true]`` with ``boxes[c]`` val boxes of class c, ``taken[(a, b)]`` of class a's
    predicted as b, the rest of them right; no background cells."""
    nc = len(boxes)
    m = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    m[np.arange(nc), np.arange(nc)] = boxes
    for (a, b), n in (taken or {}).items():
        m[b, a] += n
        m[a, a] -= n
    return m


def tables(confusion: np.ndarray | None = None, unlabelled: list[Box] | None = None) -> dict[str, dict]:
    """One validation's tables as ``write_epoch`` takes them."""
    out: dict[str, dict[str, Any]] = {}
    if confusion is not None:
        pred, true = np.nonzero(confusion)
        out["confusion"] = {"pred": pred, "true": true, "count": confusion[pred, true]}
    rows = unlabelled or []
    out["unlabelled"] = {
        "file": np.array([r[0] for r in rows], dtype=object),
        "cls": np.array([r[1] for r in rows]),
        "conf": np.array([r[2] for r in rows]),
        **{k: np.array([r[3][i] for r in rows]) for i, k in enumerate(("x1", "y1", "x2", "y2"))},
    }
    return out


def write_evidence(run_dir: Path, epochs: dict[int | str, dict[str, dict]], names: list[str] | None = None) -> Path:
    """``<run_dir>/evidence`` with a sample (no images) and ``epochs`` (epoch or "final" -> :func:`tables`)."""
    from trainers.telemetry.evidence import write_epoch, write_sample

    write_sample(run_dir, [], list(names or NAMES))
    for e, t in epochs.items():
        write_epoch(run_dir, e, t)
    return run_dir
