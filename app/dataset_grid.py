"""The dataset page's image grid as HTML: thumbnails with their boxes drawn over them, labelled, a colour per class,
and each image's problems named under it (no Streamlit: the page passes the HTML to ``st.html``).

Boxes are absolutely placed ``<div>``s in percent of the image, over the thumbnail's ``<img>`` (a ``data:`` URI): the
thumbnail stays valid when labels change, and the HTML is what ``st.html`` keeps (it sanitizes with DOMPurify's HTML
profile, which drops ``<svg>``).
"""

from __future__ import annotations

import base64
import colorsys
import html
from dataclasses import dataclass

import numpy as np

from trainers.datasets.gallery import Issue, Problem, SplitScan
from trainers.datasets.thumbnails import Thumbnail

# Distinct colours for the first 20 classes (Sasha Trubetskoy's list, strongest first); then golden-angle hues.
CLASS_COLOURS = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#ffe119", "#469990",
    "#9a6324", "#800000", "#000075", "#808000", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#a9a9a9", "#fffac8",
)  # fmt: skip
BAD_ID_COLOUR = "#ff0000"
LABELLED_BOXES = 20  # boxes per image that get a name tag; past that the tags would cover the image
PAGE_SIZE = 48

CSS = """<style>
.wb-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.wb-tile{margin:0;border:1px solid rgba(128,128,128,.35);border-radius:6px;overflow:hidden}
.wb-tile.wb-flagged{border:2px solid #d62728}
.wb-frame{aspect-ratio:1;display:flex;align-items:center;justify-content:center;background:#262730}
.wb-pic{position:relative;background:#3a3b45}
.wb-pic img{display:block;width:100%;height:100%}
.wb-box{position:absolute;border:2px solid;box-sizing:border-box}
.wb-box.wb-bad{border-style:dashed}
.wb-tag{position:absolute;left:-2px;bottom:100%;font:11px/14px sans-serif;padding:0 3px;white-space:nowrap}
.wb-box.wb-top .wb-tag{bottom:auto;top:0}
.wb-box.wb-dim{opacity:.35}
.wb-note{position:absolute;left:0;right:0;bottom:0;color:#ddd;font:12px sans-serif;padding:6px;text-align:center}
.wb-cap{font-size:12px;line-height:1.35;padding:4px 6px;word-break:break-all}
.wb-name{opacity:.75}
.wb-problem{color:#d62728;word-break:normal}
.wb-problem+.wb-problem{margin-top:3px}
</style>"""


def class_colour(i: int) -> str:
    """The colour of class ``i``: one of 20 distinct colours, then hues 137.5 degrees apart."""
    if 0 <= i < len(CLASS_COLOURS):
        return CLASS_COLOURS[i]
    r, g, b = colorsys.hls_to_rgb((i * 0.381966) % 1.0, 0.5, 0.75)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _text_colour(bg: str) -> str:
    r, g, b = (int(bg[k : k + 2], 16) for k in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


@dataclass(frozen=True)
class Tile:
    """One grid entry: the scan's item index and its thumbnail (``None`` for an orphan label file)."""

    item: int
    thumb: Thumbnail | None


def tile_html(scan: SplitScan, tile: Tile, highlight: int | None = None) -> str:
    """One ``<figure>``: the thumbnail, its boxes and name tags, the file name and every problem of the image; with
    ``highlight``, the boxes of the other classes are dimmed."""
    i = tile.item
    w, h = int(scan.width[i]), int(scan.height[i])
    issues = list(scan.issues.get(i, []))
    thumb = tile.thumb
    if thumb is not None and thumb.error:  # found only by decoding it: said beside what the header scan saw
        issues.append(Issue(Problem.CORRUPT, f"{thumb.error}: ultralytics drops this image"))
    note = "no image: a label file alone" if i >= scan.n_images else "image not shown: it does not decode"
    picture = picture_html(w, h, thumb.jpeg if thumb is not None else None, note, _boxes_html(scan, i, highlight))
    flagged = " wb-flagged" if issues else ""
    kinds = " ".join(x.problem.value for x in issues)
    caption = f'<div class="wb-name" title="{html.escape(scan.items[i])}">{html.escape(scan.relative(scan.items[i]))}'
    caption += f" · {w}×{h}</div>" if w > 0 else "</div>"
    caption += "".join(f'<div class="wb-problem">{html.escape(x.text)}</div>' for x in issues)
    return (
        f'<figure class="wb-tile{flagged}" data-item="{i}" data-problems="{kinds}">'
        f"{picture}"
        f'<figcaption class="wb-cap">{caption}</figcaption></figure>'
    )


def picture_html(width: int, height: int, jpeg: bytes | None, note: str, boxes: str) -> str:
    """The square frame of a tile: the picture (``jpeg``, else ``note`` in its place) at the image's aspect ratio, with
    ``boxes`` (:func:`box_html`) over it."""
    ratio = width / height if width > 0 and height > 0 else 1.0
    size = f"width:100%;aspect-ratio:{ratio:.4f}" if ratio >= 1 else f"height:100%;aspect-ratio:{ratio:.4f}"
    if jpeg is not None:
        picture = f'<img src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode("ascii")}" alt="">'
    else:
        picture = f'<div class="wb-note">{html.escape(note)}</div>'
    return f'<div class="wb-frame"><div class="wb-pic" style="{size}">{picture}{boxes}</div></div>'


def box_html(
    place: tuple[float, float, float, float], colour: str, label: str, classes: str = "", tag: str | None = None
) -> str:
    """One box: a ``<div>`` from ``place`` (left, top, right, bottom in percent of the image) bordered in ``colour``,
    ``label`` as its tooltip and ``data-class``, with ``tag`` as a name tag in the colour (none when ``None``);
    ``classes``: more CSS classes (``wb-bad``, ``wb-top``, ``wb-dim``...)."""
    x0, y0, x1, y1 = place
    style = f"background:{colour};color:{_text_colour(colour)}"
    inner = f'<span class="wb-tag" style="{style}">{html.escape(tag)}</span>' if tag is not None else ""
    where = f"left:{x0:.2f}%;top:{y0:.2f}%;width:{x1 - x0:.2f}%;height:{y1 - y0:.2f}%"
    label = html.escape(label)
    return (
        f'<div class="{" ".join(("wb-box", *classes.split()))}" data-class="{label}" title="{label}" '
        f'style="{where};border-color:{colour}">{inner}</div>'
    )


def _boxes_html(scan: SplitScan, item: int, highlight: int | None) -> str:
    raw, box = scan.item_rows(item)
    if not raw.size:
        return ""
    cls = np.where(scan.valid_class(raw), raw, -1).astype(np.int64)
    x0 = np.clip(box[:, 0] - box[:, 2] / 2, 0, 1) * 100
    y0 = np.clip(box[:, 1] - box[:, 3] / 2, 0, 1) * 100
    x1 = np.clip(box[:, 0] + box[:, 2] / 2, 0, 1) * 100
    y1 = np.clip(box[:, 1] + box[:, 3] / 2, 0, 1) * 100
    out = []
    for k in range(cls.size):
        c = int(cls[k])
        colour = class_colour(c) if c >= 0 else BAD_ID_COLOUR
        name = scan.names[c] if c >= 0 else f"id {raw[k]:g}?"
        classes = ("wb-bad " if c < 0 else "") + ("wb-top " if y0[k] < 8 else "")
        classes += "wb-dim" if highlight is not None and c != highlight else ""
        tag = name if cls.size <= LABELLED_BOXES else None
        out.append(box_html((x0[k], y0[k], x1[k], y1[k]), colour, name, classes, tag))
    return "".join(out)


def grid_html(scan: SplitScan, tiles: list[Tile], highlight: int | None = None) -> str:
    """The whole grid: the style block and one tile per entry, in order (``highlight``: see :func:`tile_html`)."""
    return CSS + '<div class="wb-grid">' + "".join(tile_html(scan, t, highlight) for t in tiles) + "</div>"


def problem_summary(scan: SplitScan) -> list[tuple[str, int]]:
    """``(what, how many images)`` per kind of problem found, worst first (a kind is counted once per image)."""
    counts = dict.fromkeys(Problem, 0)
    for found in scan.issues.values():
        for kind in {x.problem for x in found}:
            counts[kind] += 1
    return [(kind.label, n) for kind, n in counts.items() if n]
