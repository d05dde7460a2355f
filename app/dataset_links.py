"""Links to chosen images of a dataset (no Streamlit): ``/datasets?path=DATA_YAML&split=val&image=FILE&image=FILE``
opens the Dataset page's grid on just those images, in the link's order. The doctor's likely-missing-labels finding
links its candidates this way (``Finding.numbers["dataset_link"]``, :mod:`trainers.doctor.predictions`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainers.datasets.gallery import SplitScan


def from_url(query: Any) -> tuple[str | None, tuple[str, ...]] | None:
    """``(split, images)`` named by a URL's ``?split=`` and repeated ``?image=``, or None when it names no image.

    ``query`` is ``st.query_params`` (or a mapping of lists, as tests give it).
    """
    images = tuple(query.get_all("image")) if hasattr(query, "get_all") else tuple(query.get("image") or ())
    if not images:
        return None
    split = query.get("split")
    return (split[0] if isinstance(split, list) else split) or None, images


def only_images(scan: SplitScan, shown: np.ndarray, files: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The items of ``shown`` that are the images ``files``, in the order of ``files``, and the files not found.

    A file matches an image of the split by its path as written, else by the real path (a link made through a symlink
    or another spelling of the same folder).
    """
    index = {p: i for i, p in enumerate(scan.items[: scan.n_images])}
    found: list[int] = []
    absent: list[str] = []
    for f in files:
        i = index.get(os.path.normpath(f))
        if i is None:
            real, name = os.path.realpath(f), os.path.basename(f)
            same = [j for p, j in index.items() if os.path.basename(p) == name and os.path.realpath(p) == real]
            i = same[0] if same else None
        if i is None:
            absent.append(f)
        elif i not in found:
            found.append(i)
    visible = set(shown.tolist())
    return np.asarray([i for i in found if i in visible], dtype=np.int64), absent


def caption(n_linked: int, absent: Sequence[str], split: str) -> str:
    """The line over the grid while a link's images are shown."""
    text = f"Showing the {n_linked} image{'s' * (n_linked != 1)} the link names (split {split})"
    if absent:
        names = ", ".join(os.path.basename(f) for f in absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3
                                                                        else "")  # fmt: skip
        text += f"; not in this split: {names}"
    return text + ". Show all for the whole split."
