"""The Predictions tab's pictures as HTML (no Streamlit): a sample image with its ground-truth boxes drawn solid and
the predictions at a confidence threshold drawn dashed with their confidence, the legend that says so, and the order
and filter of the grid.

Drawn with the dataset page's helpers (:mod:`app.dataset_grid`: the same frame, boxes in percent of the image over a
thumbnail, a colour per class), from the evidence's boxes in original image pixels
(:mod:`trainers.telemetry.evidence`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.dataset_grid import CSS as TILE_CSS
from app.dataset_grid import LABELLED_BOXES, box_html, class_colour, picture_html
from trainers.telemetry.evidence import GT, PRED, image_errors

DEFAULT_CONF = 0.25  # ultralytics' own default for predict()
GT_LABEL = "ground truth"
PRED_LABEL = "prediction"

# The dataset page's tiles; GT tags sit above a box (as there), prediction tags below it, so a found box shows both.
STYLE = """<style>
.wb-box.wb-pred{border-style:dashed}
.wb-box.wb-pred .wb-tag{bottom:auto;top:100%}
.wb-box.wb-pred.wb-low .wb-tag{top:auto;bottom:0}
.wb-tile.wb-open{outline:3px solid #1f77b4}
.wb-large .wb-frame{background:#262730}
.wb-legend{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;font-size:13px;margin:2px 0 8px}
.wb-key{display:inline-flex;align-items:center;gap:6px}
.wb-swatch{display:inline-block;width:26px;height:14px;border:2px solid #888;box-sizing:border-box}
.wb-swatch.wb-pred{border-style:dashed}
.wb-chip{display:inline-block;width:11px;height:11px;border-radius:2px}
.wb-ok{color:#2ca02c}
</style>"""
CSS = TILE_CSS + STYLE


def shown_images(
    boxes: dict[str, np.ndarray], n_images: int, conf: float, errors: Sequence[tuple[int, int]], cls: int | None,
    worst_first: bool,
) -> list[int]:  # fmt: skip
    """The sample images to show, in order: with ``cls``, only those with a ground-truth box of that class or a
    prediction of it at ``conf``; ``worst_first`` puts the most missed + false boxes first (sample order on ties)."""
    images = list(range(n_images))
    if cls is not None:
        has = (boxes["cls"] == cls) & ((boxes["kind"] == GT) | (boxes["conf"] >= conf))
        with_cls = set(boxes["image"][has].tolist())
        images = [i for i in images if i in with_cls]
    if worst_first:
        images.sort(key=lambda i: -sum(errors[i]))  # stable: ties keep the sample order
    return images


def all_errors(boxes: dict[str, np.ndarray], n_images: int, conf: float) -> list[tuple[int, int]]:
    """(missed, false) of every sample image at ``conf`` (:func:`trainers.telemetry.evidence.image_errors`)."""
    return [image_errors(boxes, i, conf) for i in range(n_images)]


def image_boxes(boxes: dict[str, np.ndarray], image: int, conf: float) -> list[dict[str, Any]]:
    """The boxes of one image drawn at ``conf``: every ground-truth box, then the predictions at or above ``conf``,
    most confident first: ``{"row", "kind", "cls", "conf", "x1", "y1", "x2", "y2"}`` (kind GT or PRED; row: the box's
    index in ``boxes``)."""
    on = boxes["image"] == image
    keep = on & ((boxes["kind"] == GT) | (boxes["conf"] >= conf))
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((-boxes["conf"][rows], boxes["kind"][rows]))]
    return [
        {"row": int(r), "kind": int(boxes["kind"][r]), "cls": int(boxes["cls"][r]), "conf": float(boxes["conf"][r]),
         **{k: float(boxes[k][r]) for k in ("x1", "y1", "x2", "y2")}}
        for r in rows
    ]  # fmt: skip


def boxes_html(rows: list[dict[str, Any]], width: int, height: int, names: Sequence[str], cls: int | None) -> str:
    """The boxes of :func:`image_boxes` as the dataset page draws them, in percent of a ``width`` x ``height`` image:
    ground truth solid with its class above, predictions dashed with class and confidence below; with ``cls``, the
    other classes dimmed. Past the dataset page's tag limit the boxes keep their tooltips only."""
    w, h = max(width, 1), max(height, 1)
    tags = len(rows) <= LABELLED_BOXES
    out = []
    for r in rows:
        c = r["cls"]
        name = names[c] if 0 <= c < len(names) else f"id {c}"
        place = tuple(float(np.clip(v, 0, 100)) for v in (r["x1"] / w * 100, r["y1"] / h * 100,
                                                          r["x2"] / w * 100, r["y2"] / h * 100))  # fmt: skip
        dim = " wb-dim" if cls is not None and c != cls else ""
        if r["kind"] == PRED:
            text = f"{name} {r['conf']:.2f}"
            classes = "wb-pred" + (" wb-low" if place[3] > 90 else "") + dim
            out.append(box_html(place, class_colour(c), f"{PRED_LABEL}: {text}", classes, text if tags else None))
        else:
            classes = "wb-gt" + (" wb-top" if place[1] < 8 else "") + dim
            out.append(box_html(place, class_colour(c), f"{GT_LABEL}: {name}", classes, name if tags else None))
    return "".join(out)


def error_text(errors: tuple[int, int]) -> str:
    """'2 missed · 1 false' or 'all found'."""
    missed, false = errors
    if not missed and not false:
        return "all found"
    return " · ".join(t for t in (f"{missed} missed" * bool(missed), f"{false} false" * bool(false)) if t)


def tile_html(
    image: int, info: dict[str, Any], jpeg: bytes | None, note: str, boxes: str, errors: tuple[int, int],
    opened: bool = False, large: bool = False,
) -> str:  # fmt: skip
    """One sample image as a dataset-page tile: the picture (or ``note`` where it cannot be shown) with ``boxes``
    (:func:`boxes_html`) over it, the file name and its missed and false boxes; outlined in red when it has errors and
    in blue when ``opened``; ``large``: the enlarged view (no outline)."""
    file = str(info.get("file", ""))
    w, h = int(info.get("width") or 0), int(info.get("height") or 0)
    missed, false = errors
    classes = "wb-tile" + (" wb-flagged" if (missed or false) and not large else "") + (" wb-open" * opened)
    ok = "" if missed or false else " wb-ok"
    caption = (
        f'<div class="wb-name" title="{html.escape(file)}">{html.escape(file.rsplit("/", 1)[-1])}'
        + (f" · {w}×{h}" if w > 0 else "")
        + f'</div><div class="wb-errors{ok}">{error_text(errors)}</div>'
    )
    return (
        f'<figure class="{classes}" data-image="{image}" data-missed="{missed}" data-false="{false}">'
        f"{picture_html(w, h, jpeg, note, boxes)}"
        f'<figcaption class="wb-cap">{caption}</figcaption></figure>'
    )


def legend_html(names: Sequence[str], classes: Sequence[int], conf: float) -> str:
    """What the drawing means: solid is ground truth, dashed a prediction at or above ``conf`` with its confidence;
    then the colour of each class in ``classes``."""
    keys = [
        f'<span class="wb-key wb-key-gt"><span class="wb-swatch"></span>{GT_LABEL} (solid, class above)</span>',
        f'<span class="wb-key wb-key-pred"><span class="wb-swatch wb-pred"></span>{PRED_LABEL} (dashed, class and '
        f"confidence below; confidence ≥ {conf:.2f})</span>",
    ]
    keys += [
        f'<span class="wb-key wb-key-class"><span class="wb-chip" style="background:{class_colour(c)}"></span>'
        f"{html.escape(names[c])}</span>"
        for c in classes
        if 0 <= c < len(names)
    ]
    return f'<div class="wb-legend">{"".join(keys)}</div>'
