"""Thumbnails of dataset images, made once and kept on disk, for the dataset page's grid.

A thumbnail is a JPEG at most :data:`THUMB_PX` pixels on its longer side, oriented as ultralytics reads the image
(EXIF orientation applied), so that normalised boxes drawn over it land where ultralytics puts them. It is stored in
a cache folder under a key made of the image's absolute path, modification time and size and the thumbnail size: an
image replaced or edited gets a new thumbnail, an unchanged one is never decoded again. An image that cannot be
decoded gets a small ``.err`` file with the reason instead, so a corrupt image is not decoded at every page view.

The cache folder is ``<datasets folder>/.thumbnails`` (hidden, so it is never listed as a dataset) when the datasets
folder exists, else ``~/.cache/workbench/thumbnails`` (``$XDG_CACHE_HOME`` respected). Boxes are not drawn into the
thumbnail: the page draws them over it (SVG), so a label edit never invalidates a thumbnail.

This module is imported by the Streamlit UI process: PIL is imported inside the functions, never torch or
ultralytics.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["THUMB_PX", "Thumbnail", "make_thumbnails", "thumbnail", "thumbnail_cache_dir"]

THUMB_PX = 256  # longer side: sharp in a ~200 px tile on a 1.25x screen, ~10 KB as JPEG
_QUALITY = 80
_THREADS = 4  # PIL releases the GIL while decoding and encoding: 48 cold thumbnails take ~half the time on 2 cores


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail's JPEG bytes, or why the image could not be decoded.

    Attributes:
        jpeg: The thumbnail (``None`` when the image could not be decoded).
        error: What went wrong decoding the image (``None`` when it decoded).
        cached: Whether it came from the cache (no decode).
    """

    jpeg: bytes | None
    error: str | None
    cached: bool


def thumbnail_cache_dir(datasets_root: str | os.PathLike[str] | None = None) -> Path:
    """The thumbnail cache folder: ``<datasets_root>/.thumbnails`` when that folder exists, else the user cache.

    Args:
        datasets_root: The datasets folder (:func:`trainers.datasets.datasets_dir.datasets_root`).
    """
    if datasets_root is not None and os.path.isdir(datasets_root) and os.access(datasets_root, os.W_OK):
        return Path(datasets_root) / ".thumbnails"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "workbench" / "thumbnails"


def _key(path: str, px: int) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return hashlib.sha1(f"{os.path.abspath(path)}\0{st.st_mtime_ns}\0{st.st_size}\0{px}".encode()).hexdigest()


def thumbnail(path: str, cache_dir: str | os.PathLike[str], px: int = THUMB_PX) -> Thumbnail:
    """The thumbnail of one image: read from the cache, or decoded, scaled, and stored in the cache.

    Args:
        path: The image file.
        cache_dir: The cache folder (created when needed).
        px: Longer side of the thumbnail in pixels.

    Returns:
        The thumbnail, or the decoding error (also cached).
    """
    key = _key(path, px)
    if key is None:
        return Thumbnail(None, "image not found", cached=False)
    stem = Path(cache_dir) / key[:2] / key
    try:
        return Thumbnail(stem.with_suffix(".jpg").read_bytes(), None, cached=True)
    except OSError:
        pass
    try:
        return Thumbnail(None, stem.with_suffix(".err").read_text(encoding="utf-8"), cached=True)
    except OSError:
        pass
    jpeg, error = _make(path, px)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        if jpeg is not None:
            _write(stem.with_suffix(".jpg"), jpeg)
        else:
            _write(stem.with_suffix(".err"), (error or "").encode())
    except OSError:  # a read-only cache folder: the thumbnail is still shown, made again next time
        pass
    return Thumbnail(jpeg, error, cached=False)


def make_thumbnails(
    paths: Sequence[str], cache_dir: str | os.PathLike[str], px: int = THUMB_PX, threads: int = _THREADS
) -> list[Thumbnail]:
    """:func:`thumbnail` of each path, in order, decoded in a few threads (only the cache misses cost anything)."""
    if len(paths) <= 1 or threads <= 1:
        return [thumbnail(p, cache_dir, px) for p in paths]
    with ThreadPoolExecutor(min(threads, len(paths))) as pool:
        return list(pool.map(lambda p: thumbnail(p, cache_dir, px), paths))


def _make(path: str, px: int) -> tuple[bytes | None, str | None]:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.draft("RGB", (px, px))  # a JPEG decodes at 1/2, 1/4 or 1/8 scale straight away: several times faster
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
            im.thumbnail((px, px), Image.Resampling.BILINEAR)
            out = io.BytesIO()
            im.save(out, "JPEG", quality=_QUALITY)
    except Exception as e:  # PIL raises many types for a damaged file; the reason is shown under the tile
        reason = str(e).replace(f" '{path}'", "") or type(e).__name__
        return None, f"cannot decode the image: {reason}"
    return out.getvalue(), None


def _write(target: Path, data: bytes) -> None:
    # Written aside and renamed: a page in another tab never reads half a thumbnail.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
