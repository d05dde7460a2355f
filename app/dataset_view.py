"""The dataset page's services (no Streamlit): which ``data.yaml`` a URL names, a split's scan kept between reruns,
and the thumbnails of one page of the grid.

``?name=NAME`` is a dataset of the datasets folder (``<datasets folder>/NAME/data.yaml``, as ``workbench import``
writes it); ``?path=FILE`` is any ``data.yaml`` (or its folder) on the server.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from app.dataset_grid import PAGE_SIZE, Tile
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.dataset import Dataset
from trainers.datasets.datasets_dir import dataset_yaml
from trainers.datasets.files import label_file_str
from trainers.datasets.gallery import SplitScan, scan_split
from trainers.datasets.thumbnails import make_thumbnails
from trainers.errors import WorkbenchError

_SCANS: OrderedDict[tuple, tuple[Dataset, SplitScan]] = OrderedDict()
_KEEP = 4  # splits kept: a 100k-image scan holds ~10 MB of arrays
_LOCK = threading.Lock()  # Streamlit runs each session's script in its own thread


def yaml_for(name: str | None, path: str | None, root: Path | None) -> tuple[Path | None, str | None]:
    """The ``data.yaml`` a ``?name=`` or ``?path=`` names, or the one-line error.

    Args:
        name: A dataset name in the datasets folder ``root``.
        path: A ``data.yaml`` (or its folder) anywhere; wins over ``name``.
        root: The datasets folder (``None``: it is unusable).
    """
    if path:
        return Path(path).expanduser(), None
    if not name:
        return None, None
    if root is None:
        return None, f"the datasets folder is unusable, so dataset '{name}' cannot be found"
    try:
        data = dataset_yaml(root, name)
    except WorkbenchError as e:
        return None, str(e)
    if not data.is_file():
        return None, f"no dataset named '{name}' in {root} (no {data}); import it with `workbench import`"
    return data, None


def _mtime(path: str | os.PathLike[str]) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _key(ds: Dataset, split: str) -> tuple:
    # A file added or removed changes its folder's mtime; the YAML's own mtime covers its edits. A label file edited in
    # place changes neither: the page's Rescan button forgets the scan.
    folders = [e for e in ds.splits.get(split, [])]
    folders += [Path(label_file_str(os.path.join(e, "x.jpg"))).parent for e in folders if e.is_dir()]
    return (str(ds.yaml_path), split, _mtime(ds.yaml_path), *(_mtime(f) for f in folders))


def load_scan(data: str | os.PathLike[str], split: str | None) -> tuple[Dataset, SplitScan]:
    """The dataset and the scan of one split (the first split when ``split`` is not one of its splits), kept between
    reruns until its YAML or a split folder changes.

    Raises:
        WorkbenchError: The YAML or the split cannot be read (the message is one line).
    """
    ds = load_dataset(data)
    if split not in ds.splits:
        split = next(iter(ds.splits))
    key = _key(ds, split)
    with _LOCK:
        hit = _SCANS.get(key)
        if hit is not None:
            _SCANS.move_to_end(key)
            return hit
    scan = scan_split(ds, split)
    with _LOCK:
        _SCANS[key] = (ds, scan)
        while len(_SCANS) > _KEEP:
            _SCANS.popitem(last=False)
    return ds, scan


def forget_scans(data: str | os.PathLike[str] | None = None) -> None:
    """Drop the kept scans (of one ``data.yaml``, or all), so the next view scans again."""
    with _LOCK:
        for key in [k for k in _SCANS if data is None or k[0] == str(Path(data).resolve())]:
            del _SCANS[key]


def page_count(n: int) -> int:
    return max(1, -(-n // PAGE_SIZE))


def page_tiles(scan: SplitScan, shown: np.ndarray, page: int, cache_dir: Path) -> list[Tile]:
    """The tiles of page ``page`` (1-based) of ``shown`` (item indices in order): only these are thumbnailed."""
    items = shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE].tolist()
    images = [i for i in items if i < scan.n_images]
    thumbs = dict(zip(images, make_thumbnails([scan.items[i] for i in images], cache_dir), strict=True))
    return [Tile(i, thumbs.get(i)) for i in items]
