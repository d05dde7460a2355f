"""Find the images ultralytics drops as corrupt, or rewrites in place, when it caches a split's labels.

ultralytics 8.4.190 checks every image in ``verify_image_label`` -> ``check_image`` (``ultralytics/data/utils.py``)
the first time it trains on a split. An image that fails is dropped with one console warning ("ignoring corrupt
image/label") and training goes on without it; a JPEG without its end-of-image marker is "restored": decoded and
saved again over the original file. :func:`trainers.datasets.files.check_images` only reads the first bytes of each
image, so a truncated JPEG passes it. :func:`find_corrupt_images` repeats ultralytics' checks, in its order, without
importing ultralytics or torch (PIL is imported inside the function; the UI imports this module):

1. ``Image.open`` then ``verify()``: a file PIL cannot identify or whose structure is cut short is dropped.
2. Width or height below 10 pixels: dropped.
3. A format outside ultralytics' ``IMG_FORMATS`` (plus ``jpeg2000``), e.g. a GIF saved as ``.jpg``: dropped.
4. A JPEG whose last two bytes are not ``FF D9``: ultralytics decodes it (EXIF orientation applied) and saves it
   again (quality 100) in the same folder. If that decode fails, as for a JPEG cut off in its image data, the image
   is dropped; otherwise it is repaired (and the user's file is rewritten). We decode the same way into memory and
   never write anything.

The results are data, so the training doctor can turn them into findings. Nothing here refuses a dataset.
"""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

__all__ = ["CorruptImage", "ImageScan", "find_corrupt_images", "image_notes", "image_verdict"]

DROPPED = "dropped"  # ultralytics trains on without the image (and its boxes)
REPAIRED = "repaired"  # ultralytics rewrites the file and trains on it

# ultralytics.data.utils.IMG_FORMATS in 8.4.190, and the extra format check_image accepts.
ULTRALYTICS_FORMATS = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "jpeg2000"}
)
_JPEG_END = b"\xff\xd9"
_MIN_SIDE = 10  # check_image asserts both sides > 9
_PROGRESS_EVERY = 64  # images between two progress calls (a Streamlit progress bar costs a message each)


@dataclass(frozen=True)
class CorruptImage:
    """One image ultralytics would not take as it is.

    Attributes:
        path: The image file.
        action: ``"dropped"`` (trained without, its boxes lost) or ``"repaired"`` (rewritten in place, then used).
        reason: Why, in ultralytics' words where it has them (e.g. ``image file is truncated (43 bytes not
            processed)``, ``image size (5, 5) <10 pixels``).
    """

    path: str
    action: str
    reason: str

    def to_dict(self) -> dict:
        """Return ``{"path", "action", "reason"}``."""
        return asdict(self)


@dataclass(frozen=True)
class ImageScan:
    """The result of :func:`find_corrupt_images`.

    Attributes:
        checked: Images checked (``limit`` may stop the scan early).
        total: Images given.
        problems: The images ultralytics would drop or repair, in the order given.
    """

    checked: int
    total: int
    problems: list[CorruptImage]

    @property
    def complete(self) -> bool:
        """Whether every image given was checked."""
        return self.checked == self.total

    @property
    def dropped(self) -> list[CorruptImage]:
        """The images ultralytics trains on without."""
        return [p for p in self.problems if p.action == DROPPED]

    @property
    def repaired(self) -> list[CorruptImage]:
        """The images ultralytics rewrites in place before training on them."""
        return [p for p in self.problems if p.action == REPAIRED]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {"checked": self.checked, "total": self.total, "problems": [p.to_dict() for p in self.problems]}


def find_corrupt_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageScan:
    """Check images the way ultralytics does before training; return the ones it would drop or repair.

    Opens every image with PIL; ``verify()`` reads a JPEG's markers only but every chunk of a PNG (with its CRC),
    and only a JPEG without its end marker is decoded. Measured on 2 shared cores, page cache warm: 0.03 ms per
    640x480 JPEG (138 KB), 0.1 ms per demo JPEG (64 images: 7 ms), 0.33 ms per 640x480 PNG (750 KB), and 6 ms
    for each JPEG that has to be decoded. So 3-10 s for 100k JPEGs, ~30 s for 100k such PNGs; from a cold disk
    the reads dominate.

    Args:
        paths: Image files, e.g. :func:`trainers.datasets.files.image_file_strs` of a split.
        limit: Check at most this many images (the first ones); ``None`` checks all.
        progress: Called as ``progress(done, total)`` every 64 images and once at the end.

    Returns:
        What was checked and the problems found.
    """
    todo = list(paths)
    total = len(todo)
    if limit is not None:
        todo = todo[: max(0, limit)]
    problems = []
    for i, path in enumerate(todo, 1):
        verdict = image_verdict(path)
        if verdict is not None:
            problems.append(verdict)
        if progress is not None and (i % _PROGRESS_EVERY == 0 or i == len(todo)):
            progress(i, total)
    return ImageScan(checked=len(todo), total=total, problems=problems)


def image_verdict(path: str | os.PathLike[str]) -> CorruptImage | None:
    """Return what ultralytics would do with one image: ``None`` when it takes it as it is.

    Args:
        path: The image file.

    Returns:
        The problem, or ``None``.
    """
    from PIL import Image, ImageOps

    path = os.fspath(path)
    try:
        with _open(Image, path) as im:
            im.verify()
            width, height = im.size  # EXIF rotation only swaps the sides: the < 10 px check is the same
            fmt = im.format
        if not (height >= _MIN_SIDE and width >= _MIN_SIDE):
            return CorruptImage(path, DROPPED, f"image size {(height, width)} <10 pixels")
        if fmt is None or fmt.lower() not in ULTRALYTICS_FORMATS:
            return CorruptImage(path, DROPPED, f"Invalid image format {fmt}")
        if fmt.lower() not in {"jpg", "jpeg"}:
            return None
        with open(path, "rb") as f:
            f.seek(-2, os.SEEK_END)
            if f.read() == _JPEG_END:
                return None
        # ultralytics now decodes and saves the image again, to a temporary file in the same folder.
        if not os.access(os.path.dirname(path) or ".", os.W_OK):
            return CorruptImage(
                path,
                DROPPED,
                "JPEG does not end with its end marker (FF D9) and ultralytics cannot write its folder to restore it",
            )
        with _open(Image, path) as src:
            ImageOps.exif_transpose(src).save(io.BytesIO(), "JPEG", subsampling=0, quality=100)
        return CorruptImage(
            path,
            REPAIRED,
            "JPEG does not end with its end marker (FF D9): ultralytics decodes it and saves it over the file",
        )
    except Exception as e:  # ultralytics catches everything here too, and drops the image
        reason = str(e).replace(f" '{path}'", "")  # PIL names the file; the finding already does
        return CorruptImage(path, DROPPED, reason or type(e).__name__)


def image_notes(scan: ImageScan, root: str | os.PathLike[str] | None = None, first: int = 3) -> list[str]:
    """Human lines about the images ultralytics would drop or rewrite; empty when there are none.

    Args:
        scan: From :func:`find_corrupt_images`.
        root: Shown paths are relative to it (the dataset root) when under it.
        first: How many images each line names before "and N more".

    Returns:
        e.g. ``2 images ultralytics drops as corrupt (trained without them and their boxes): images/train/a.jpg
        (image file is truncated (144 bytes not processed)), ...``.
    """
    base = os.fspath(root) + os.sep if root is not None else None

    def names(items: list[CorruptImage], with_reason: bool) -> str:
        shown = []
        for item in items[:first]:
            name = item.path[len(base) :] if base and item.path.startswith(base) else item.path
            shown.append(f"{name} ({item.reason})" if with_reason else name)
        more = f" and {len(items) - first} more" if len(items) > first else ""
        return ", ".join(shown) + more

    notes = []
    if dropped := scan.dropped:
        n = len(dropped)
        notes.append(
            f"{n} image{'s' if n > 1 else ''} ultralytics drops as corrupt (trained without "
            f"{'them and their' if n > 1 else 'it and its'} boxes): {names(dropped, True)}"
        )
    if repaired := scan.repaired:
        n = len(repaired)
        notes.append(
            f"{n} JPEG{'s' if n > 1 else ''} without the end marker FF D9 that ultralytics rewrites in place before "
            f"training: {names(repaired, False)}"
        )
    if not scan.complete:
        notes.append(f"images checked: the first {scan.checked} of {scan.total}")
    return notes


def _open(Image, path: str):  # noqa: N803 (the PIL module, passed in so PIL is imported lazily)
    # ultralytics' patched Image.open (utils/patches.py) registers a HEIF opener on the first unidentified file when
    # pi_heif is installed. In a process that imported ultralytics, Image.open *is* that patch (set process-wide):
    # the verdict is the same, the reason for an unidentified file then reads "No module named 'pi_heif'".
    try:
        return Image.open(path)
    except Image.UnidentifiedImageError:
        if importlib.util.find_spec("pi_heif") is None:
            raise
        from pi_heif import register_heif_opener

        register_heif_opener()
        return Image.open(path)
