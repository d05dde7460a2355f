"""Rules over what the model predicted on the val images (the run's per-epoch evidence, :mod:`trainers.telemetry.
evidence`): a class taken for another, confident predictions where no box is labelled (likely missing labels), and a
class predicted on background.

Each rule looks at the newest validation with evidence (the final evaluation of best.pt once there is one) and at up
to :data:`LOOKBACK` numbered epochs before it, to say since when its finding holds. A validation's tables are read
once per process and what a rule computes from them is kept per set of validations (both keyed on the folders'
mtimes), so a diagnosis that brings no new validation costs a directory listing and a few ``stat`` calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from trainers.doctor.finding import Finding
from trainers.doctor.registry import Context, epochs_text, rule, step_range
from trainers.run_files import DATA_FILE, EVIDENCE_DIR
from trainers.telemetry.evidence import (
    FINAL,
    UNLABELLED_CONF,
    UNLABELLED_IOU,
    UNLABELLED_KEEP,
    EpochEvidence,
    Evidence,
    class_box_counts,
    epoch_folder_name,
)

CONFUSED_SHARE = 0.3  # class A predicted as class B for at least this share of A's val boxes ...
CONFUSED_MIN = 5  # ... and for at least this many of them
MISSING_RECUR = 2  # a missing-label candidate seen in at least this many epochs makes the finding a warning
MISSING_IOU = 0.5  # "the same box" in another epoch: same image and class, IoU at least this
MISSING_LISTED = 10  # images named in the finding and linked to the Dataset page
BACKGROUND_SHARE = 0.25  # confident predictions of A on no labelled box, per val box of A, at least this ...
BACKGROUND_MIN = 5  # ... and at least this many
LOOKBACK = 20  # numbered epochs read back from the newest to say since when a finding holds
PAIRS_SHOWN = 3  # class pairs (or classes) spelled out in the evidence; the rest are counted


def evidence_stamp(run_dir: str | os.PathLike[str]) -> int | None:
    """The mtime of the run's ``evidence/`` folder (None: none yet). A validation's folder is renamed into it whole,
    so this changes exactly when a validation's evidence arrives or is replaced: the callers' cache key."""
    try:
        return os.stat(Path(run_dir) / EVIDENCE_DIR).st_mtime_ns
    except OSError:
        return None


# ---- reading, cached ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Validation:
    """What the rules read of one validation: the confusion counts and the unlabelled-box candidates."""

    confusion: np.ndarray  # (nc+1, nc+1) int32, [predicted, true]
    files: np.ndarray  # candidates: image file (str) ...
    cls: np.ndarray  # ... predicted class
    conf: np.ndarray  # ... confidence
    xyxy: np.ndarray  # ... (n, 4) box in original image pixels


Stamp = tuple[str, int]  # (validation folder, its mtime_ns)


@lru_cache(maxsize=64)
def _read(stamp: Stamp, nc: int) -> _Validation:
    folder = Path(stamp[0])
    ev = EpochEvidence(folder, folder.name, nc)
    t = ev.unlabelled
    xyxy = np.stack([t[k].to_numpy() for k in ("x1", "y1", "x2", "y2")], axis=1) if t.num_rows else np.zeros((0, 4))
    return _Validation(
        ev.confusion.astype(np.int32),
        np.asarray(t["file"].to_pylist(), dtype=object),
        t["cls"].to_numpy().astype(np.int64),
        t["conf"].to_numpy().astype(np.float64),
        xyxy.astype(np.float64),
    )


@dataclass(frozen=True)
class _Window:
    """The validations a rule reads: the newest, and the numbered epochs up to it (at most :data:`LOOKBACK`)."""

    newest: int | str
    stamps: tuple[Stamp, ...]  # the numbered epochs' folders, oldest first, then the newest's if it is the final
    epochs: tuple[int, ...]  # the numbered epochs of ``stamps``


_WINDOWS: dict[str, tuple[int, tuple[_Window, list[str]] | None]] = {}  # run folder -> (evidence stamp, window)
SETTLED_NS = 1_000_000_000  # an evidence folder changed less than this ago may still be changing: not kept


def _window(ctx: Context) -> tuple[_Window, list[str]] | None:
    """The validations to read and the class names they were recorded with, or None when the run has no evidence.

    Kept per run folder while its evidence folder's mtime stays the same (listing it stats every validation's folder:
    ~7 ms at 300 epochs on a busy machine)."""
    if "predictions.window" in ctx._memo:
        return ctx._memo["predictions.window"]
    hit = None
    if ctx.run_dir is not None:
        key, stamp = str(ctx.run_dir), evidence_stamp(ctx.run_dir)
        hit = _WINDOWS.get(key)
        if stamp is None or hit is None or hit[0] != stamp:
            hit = (stamp, _list_window(ctx.run_dir))
            if stamp is not None and time.time_ns() - stamp > SETTLED_NS:
                _WINDOWS[key] = hit  # one small entry per run folder diagnosed
    ctx._memo["predictions.window"] = found = hit[1] if hit else None
    return found


def _list_window(run_dir: Path) -> tuple[_Window, list[str]] | None:
    ev = Evidence(run_dir)
    if not ev or not ev.names:
        return None
    numbered, newest, stamps = ev.numbered_epochs[-LOOKBACK:], ev.epochs[-1], []
    for e in [*numbered, *([FINAL] if newest == FINAL else [])]:
        folder = ev.run_dir / EVIDENCE_DIR / epoch_folder_name(e)
        try:
            stamps.append((str(folder), folder.stat().st_mtime_ns))
        except OSError:  # replaced between the listing and now (a resumed attempt redoing it): read it next time
            return None
    return _Window(newest, tuple(stamps), tuple(numbered)), ev.names


def _where(newest: int | str) -> str:
    return "At the final evaluation (best.pt)" if newest == FINAL else f"At epoch {newest}"


def _held(held: Sequence[int], newest: int | str) -> str:
    if not held:
        return "at the final evaluation only" if newest == FINAL else ""
    return f"held in {epochs_text(held)}"


def _steps(ctx: Context, epochs: Sequence[int]) -> tuple[int, int] | None:
    if not epochs:
        return None
    events = [e for e in ctx.epochs if e.get("epoch") == epochs[0]]
    return step_range(events[-1]) if events else None


def _streak(flags: Sequence[bool], epochs: Sequence[int]) -> list[int]:
    """The epochs of the trailing run of True in ``flags`` (one per numbered epoch, oldest first)."""
    out: list[int] = []
    for flag, e in zip(reversed(flags), reversed(epochs), strict=True):
        if not flag:
            break
        out.append(e)
    return out[::-1]


def _named(i: int, names: Sequence[str]) -> str:
    return repr(names[i]) if 0 <= i < len(names) else repr(str(i))


def _pct(share: float) -> str:
    return f"{share:.0%}"


# ---- 1. a class taken for another --------------------------------------------------------------------------------
def _confused_cells(confusion: np.ndarray, nc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hits, count, share)``: ``[true, pred]`` arrays of the pairs over both thresholds, the counts and the shares
    (true class A's boxes whose prediction was B, over A's val boxes)."""
    boxes = class_box_counts(confusion)
    off = confusion[:nc, :nc].T.astype(np.float64)  # [true, pred]
    np.fill_diagonal(off, 0)
    share = off / np.maximum(boxes, 1)[:, None]
    return (share >= CONFUSED_SHARE) & (off >= CONFUSED_MIN), off, share


@lru_cache(maxsize=32)
def _confused(window: _Window, nc: int) -> tuple[dict[str, Any], ...]:
    newest = _read(window.stamps[-1], nc).confusion
    hits, count, share = _confused_cells(newest, nc)
    pairs = sorted(zip(*np.nonzero(hits), strict=True), key=lambda p: (-share[p], p))
    history = [_confused_cells(_read(s, nc).confusion, nc)[0] for s in window.stamps[: len(window.epochs)]]
    boxes = class_box_counts(newest)
    return tuple(
        {"true": int(a), "pred": int(b), "count": int(count[a, b]), "boxes": int(boxes[a]),
         "share": float(share[a, b]), "both_ways": bool(hits[b, a]),
         "epochs": _streak([bool(h[a, b]) for h in history], window.epochs)}
        for a, b in pairs
    )  # fmt: skip


@rule(
    "predictions.confused_classes", "warning", "a class predicted as another for a large share of its val boxes",
    {"CONFUSED_SHARE": CONFUSED_SHARE, "CONFUSED_MIN": CONFUSED_MIN, "LOOKBACK": LOOKBACK},
    "When 30% or more of A's val boxes are best matched by a B prediction the model does not tell A from B: the "
    "classes look alike, A has too few examples, or A's boxes are labelled B somewhere. Under 5 boxes a share is "
    "one or two boxes, noise.",
    needs_evidence=True,
)  # fmt: skip
def confused_classes(ctx: Context) -> Finding | None:
    found = _window(ctx)
    if found is None:
        return None
    window, names = found
    pairs = _confused(window, len(names))
    if not pairs:
        return None
    name = lambda i: _named(i, names)  # noqa: E731
    parts = []
    for p in pairs[:PAIRS_SHOWN]:
        held = _held(p["epochs"], window.newest)
        parts.append(
            f"{p['count']} of {p['boxes']} val {name(p['true'])} boxes predicted as {name(p['pred'])} "
            f"({_pct(p['share'])}{', ' + held if held else ''}{'; also the other way' if p['both_ways'] else ''})"
        )
    more = len(pairs) - PAIRS_SHOWN
    top = pairs[0]
    a, b = name(top["true"]), name(top["pred"])
    merge = (
        f"{a} and {b} are confused both ways: if they are the same thing, merge them into one class (one id in the "
        "label files and data.yaml); if not, "
        if top["both_ways"]
        else "If they are different things, "
    )
    return Finding(
        "predictions.confused_classes", "warning",
        f"{a} predicted as {b} for {_pct(top['share'])} of its boxes"
        + (f" (and {len(pairs) - 1} more pair{'s' * (len(pairs) > 2)})" if len(pairs) > 1 else ""),
        f"{_where(window.newest)}: " + "; ".join(parts) + (f"; and {more} more pairs" if more > 0 else "")
        + ". Each val box counts for the most confident prediction over it (IoU > 0.45), as in ultralytics' "
        "confusion matrix.",
        f"Check the labels first: open the {a} boxes on the Dataset page (class filter) and relabel any that show a "
        f"{b}. {merge}add training images of {a} that show what sets it apart. No recipe setting changes labels or "
        "classes, so there is no Apply fix.",
        {"at": window.newest, "pairs": [{**p, "true": names[p["true"]], "pred": names[p["pred"]]} for p in pairs]},
        tuple(top["epochs"]), _steps(ctx, top["epochs"]),
    )  # fmt: skip


# ---- 2. likely missing labels ------------------------------------------------------------------------------------
def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box of ``a`` with the box of ``b`` in the same row (only the pairs of the same image and class:
    the full matrix of :func:`~trainers.telemetry.evidence.iou` costs 10 ms per epoch at 200 candidates)."""
    inter = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None).prod(axis=1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


@lru_cache(maxsize=32)
def _missing(window: _Window, nc: int) -> tuple[dict[str, Any], ...]:
    """The newest validation's candidates grouped by image, most likely first: by the epochs their boxes recur in,
    then by confidence. Each ``{"file", "boxes", "classes", "conf", "epochs"}``."""
    newest = _read(window.stamps[-1], nc)
    n = len(newest.files)
    if not n:
        return ()
    recur = np.zeros(n, dtype=np.int64)
    codes: dict[str, int] = {}  # file -> a number, so that one array comparison pairs the boxes of the same image
    code = lambda files: np.array([codes.setdefault(f, len(codes)) for f in files], dtype=np.int64)  # noqa: E731
    files = code(newest.files)
    for stamp in window.stamps[: len(window.epochs)]:
        then = _read(stamp, nc)
        i, j = np.nonzero((files[:, None] == code(then.files)[None, :]) & (newest.cls[:, None] == then.cls[None, :]))
        seen = np.zeros(n, dtype=bool)
        seen[i[_paired_iou(newest.xyxy[i], then.xyxy[j]) >= MISSING_IOU]] = True
        recur += seen
    order = np.lexsort((-newest.conf, -recur))  # the last key sorts first
    images: dict[str, dict[str, Any]] = {}
    for i in order:
        f = str(newest.files[i])
        img = images.setdefault(f, {"file": f, "boxes": 0, "classes": [], "conf": 0.0, "epochs": 0})
        img["boxes"] += 1
        img["conf"] = max(img["conf"], float(newest.conf[i]))
        img["epochs"] = max(img["epochs"], int(recur[i]))
        if int(newest.cls[i]) not in img["classes"]:
            img["classes"].append(int(newest.cls[i]))
    return tuple(images.values())


@rule(
    "predictions.missing_labels", "warning", "confident predictions that overlap no labelled box (likely missing "
    "labels)",
    {"UNLABELLED_CONF": UNLABELLED_CONF, "UNLABELLED_IOU": UNLABELLED_IOU, "MISSING_RECUR": MISSING_RECUR,
     "MISSING_IOU": MISSING_IOU, "MISSING_LISTED": MISSING_LISTED, "LOOKBACK": LOOKBACK},
    "A prediction at 0.8 or more that overlaps no label is either an object someone did not label or a confident "
    "mistake; one the model keeps making in the same place over epochs is most likely an object, so those are listed "
    "first and make the finding a warning (seen once: info).",
    needs_evidence=True,
)  # fmt: skip
def missing_labels(ctx: Context) -> Finding | None:
    found = _window(ctx)
    if found is None:
        return None
    window, names = found
    images = _missing(window, len(names))
    if not images:
        return None
    looked = len(window.epochs)
    n_boxes = sum(img["boxes"] for img in images)
    recurring = max(img["epochs"] for img in images) >= MISSING_RECUR

    def shown(img: dict[str, Any]) -> str:
        what = ", ".join(names[c] if 0 <= c < len(names) else str(c) for c in img["classes"])
        return (f"{os.path.basename(img['file'])} ({img['boxes']} {what} box{'es' * (img['boxes'] > 1)}, conf up to "
                f"{img['conf']:.2f}, in {img['epochs']} of {looked} epochs)")  # fmt: skip

    listed = images[:MISSING_LISTED]
    capped = n_boxes >= UNLABELLED_KEEP
    numbers: dict[str, Any] = {
        "at": window.newest, "n_images": len(images), "n_boxes": n_boxes, "epochs_looked_at": list(window.epochs),
        "images": [{**img, "classes": [names[c] for c in img["classes"] if 0 <= c < len(names)]}
                   for img in images[:50]],
    }  # fmt: skip
    data_yaml = Path(ctx.run_dir) / DATA_FILE
    if data_yaml.is_file():  # the Dataset page's grid, showing just these images (app/app_pages/datasets.py)
        numbers["dataset_link"] = {"path": str(data_yaml), "split": "val", "image": [i["file"] for i in listed]}
    return Finding(
        "predictions.missing_labels", "warning" if recurring else "info",
        f"Likely missing labels in {len(images)} val image{'s' * (len(images) > 1)}",
        f"{_where(window.newest)}: {n_boxes}{' (the most confident kept)' if capped else ''} predictions at "
        f"confidence {UNLABELLED_CONF} or more overlap no labelled box (IoU < {UNLABELLED_IOU}), in {len(images)} "
        f"val images; most likely first: " + "; ".join(shown(i) for i in listed)
        + (f"; and {len(images) - len(listed)} more images" if len(images) > len(listed) else "") + ".",
        "Look at these images (Show images opens them on the Dataset page) and add the missing boxes to their label "
        "files: an object left unlabelled in val turns the model's right answers into false positives (lower "
        "precision and mAP), and in train it teaches the model to miss such objects. Where there is no object, the "
        "model is confidently wrong: add similar images without it (an empty label file). Labels are not a recipe "
        "setting, so there is no Apply fix.",
        numbers,
    )  # fmt: skip


# ---- 3. background taken for a class -----------------------------------------------------------------------------
def _background_cells(v: _Validation, nc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hits, count, boxes)`` per class: confident predictions on no labelled box, and the class' val boxes."""
    count = np.bincount(v.cls[(v.cls >= 0) & (v.cls < nc)], minlength=nc)[:nc]
    boxes = class_box_counts(v.confusion)
    return (count >= BACKGROUND_MIN) & (count >= BACKGROUND_SHARE * boxes), count, boxes


@lru_cache(maxsize=32)
def _background(window: _Window, nc: int) -> tuple[dict[str, Any], ...]:
    hits, count, boxes = _background_cells(_read(window.stamps[-1], nc), nc)
    history = [_background_cells(_read(s, nc), nc)[0] for s in window.stamps[: len(window.epochs)]]
    rate = count / np.maximum(boxes, 1)
    ids = sorted(np.flatnonzero(hits), key=lambda c: (-count[c], c))
    return tuple(
        {"cls": int(c), "count": int(count[c]), "boxes": int(boxes[c]), "share": float(rate[c]) if boxes[c] else None,
         "epochs": _streak([bool(h[c]) for h in history], window.epochs)}
        for c in ids
    )  # fmt: skip


@rule(
    "predictions.background", "warning", "a class predicted with confidence where no box is labelled",
    {"UNLABELLED_CONF": UNLABELLED_CONF, "UNLABELLED_IOU": UNLABELLED_IOU, "BACKGROUND_SHARE": BACKGROUND_SHARE,
     "BACKGROUND_MIN": BACKGROUND_MIN, "LOOKBACK": LOOKBACK},
    "With confident predictions of A on nothing at a quarter of A's val box count, at least one in five of A's "
    "confident predictions is wrong (precision at 0.8 at most 0.8). Counted from confident (>= 0.8) predictions, "
    "not the confusion matrix's background column, which counts from confidence 0.25.",
    needs_evidence=True,
)  # fmt: skip
def background(ctx: Context) -> Finding | None:
    found = _window(ctx)
    if found is None:
        return None
    window, names = found
    classes = _background(window, len(names))
    if not classes:
        return None
    name = lambda i: _named(i, names)  # noqa: E731
    parts = []
    for c in classes[:PAIRS_SHOWN]:
        held = _held(c["epochs"], window.newest)
        rate = f"{_pct(c['share'])} of its {c['boxes']} val boxes" if c["boxes"] else "it has no val box"
        parts.append(f"{name(c['cls'])} {c['count']} times ({rate}{', ' + held if held else ''})")
    more = len(classes) - PAIRS_SHOWN
    top = classes[0]
    a = name(top["cls"])
    return Finding(
        "predictions.background", "warning",
        f"{a} predicted where nothing is labelled, {top['count']} times"
        + (f" (and {len(classes) - 1} more class{'es' * (len(classes) > 2)})" if len(classes) > 1 else ""),
        f"{_where(window.newest)}: predictions at confidence {UNLABELLED_CONF} or more overlapping no labelled box "
        f"(IoU < {UNLABELLED_IOU}): " + "; ".join(parts) + (f"; and {more} more classes" if more > 0 else "") + ".",
        f"If those are real {a} objects, their labels are missing (the likely-missing-labels finding lists the "
        f"images): add them. If they are not, the model takes that background for {a}: add images of such "
        f"backgrounds without {a} (empty label files) or more {a} examples to learn the difference, and predict with "
        "a higher confidence threshold meanwhile. No recipe setting does this, so there is no Apply fix.",
        {"at": window.newest, "classes": [{**c, "cls": names[c["cls"]]} for c in classes]},
        tuple(top["epochs"]), _steps(ctx, top["epochs"]),
    )  # fmt: skip
