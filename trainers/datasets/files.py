"""The files of a dataset split: which images it lists, where their label files are, and checks on both.

This module is imported by the Streamlit UI process, so it must stay light: the standard library only, never torch or
ultralytics.

- Images: a split entry is a folder (scanned recursively for image suffixes, hidden files skipped) or a ``.txt``
  list of images (``./`` lines against the list's folder, as ultralytics does, others against the dataset root).
- Label files: the last ``/images/`` path component becomes ``/labels/`` and the suffix ``.txt``, the same string
  operations as ultralytics' ``img2label_paths``. An image without a label file is a background image.
- :func:`check_images` refuses a missing, empty or non-image file before a run starts (ultralytics would drop it
  with a warning and train on without it).
- :func:`orphan_label_files` finds the label files no image maps to: ultralytics never reads them.
- :func:`read_label_files` reads label files as bytes, fast (threads on a cold disk); parsing them is
  :mod:`trainers.datasets.label_counts`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.errors import DatasetError

if TYPE_CHECKING:
    from trainers.datasets.dataset import Dataset

__all__ = [
    "IMAGE_SUFFIXES",
    "check_images",
    "has_images",
    "image_file_strs",
    "image_files",
    "label_file_str",
    "label_path",
    "orphan_label_files",
    "read_label_files",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

_BOM = b"\xef\xbb\xbf"
_READ_CHUNK = 1 << 14  # label files are a few hundred bytes; a small buffer keeps os.read off the mmap path
_READ_THREADS = 8  # reads release the GIL: threads overlap disk latency on a cold cache (2-3x faster measured)
_SERIAL_CHUNK = 2048  # files read serially before checking whether the disk is cold
_COLD_READ_S = 25e-6  # seconds per file above which reads are waiting on the disk, not the page cache


# ----------------------------------------------------------------------------------------------------------------
# Images and label paths


def image_files(ds: Dataset, split: str) -> list[Path]:
    """List the image files of a split, sorted.

    Folders are scanned recursively for image suffixes (jpg, jpeg, png, bmp, webp, tif, tiff; any case); hidden
    files and folders are skipped. In a ``.txt`` list, lines starting with ``./`` resolve against the list file's
    folder (as ultralytics does) and other relative lines against the dataset root.

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.

    Returns:
        Absolute image paths, sorted.

    Raises:
        DatasetError: The split is not defined or has no images.
    """
    return [Path(p) for p in image_file_strs(ds, split)]


def label_path(image: Path) -> Path:
    """Return the label file of an image by ultralytics' convention.

    The last ``/images/`` path component becomes ``/labels/`` and the suffix becomes ``.txt``
    (``data/images/train/a.jpg`` -> ``data/labels/train/a.txt``).

    Args:
        image: Image path.

    Returns:
        The label file path (it may not exist: a background image).
    """
    return Path(label_file_str(os.fspath(image)))


_SA, _SB = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"


def label_file_str(image: str) -> str:
    """:func:`label_path` on strings (what the counting of 100k label files uses)."""
    # Same string operations as ultralytics' img2label_paths, so both always agree on the label file.
    return _SB.join(image.rsplit(_SA, 1)).rsplit(".", 1)[0] + ".txt"


def image_file_strs(ds: Dataset, split: str) -> list[str]:
    """:func:`image_files` as strings, sorted (no Path objects for 100k images)."""
    if split not in ds.splits:
        raise DatasetError(
            f"{ds.yaml_path}: split '{split}' is not defined; available: {', '.join(ds.splits)} "
            f"(add '{split}:' to the YAML)"
        )
    files: list[str] = []
    for entry in ds.splits[split]:
        if entry.is_dir():
            files.extend(_scan_images(os.fspath(entry)))
        else:
            files.extend(_list_file_images(entry, ds.root))
    if not files:
        where = ", ".join(str(e) for e in ds.splits[split])
        raise DatasetError(f"{ds.yaml_path}: split '{split}' has no images in {where}; add images or fix '{split}:'")
    files.sort()
    return files


def _is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES


def _scan_images(folder: str) -> Iterator[str]:
    # os.scandir reuses the directory entry's type, ~10x faster than Path.glob on 100k files.
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    stack.append(entry.path)
                elif _is_image_name(entry.name):
                    yield entry.path


def _list_file_images(list_file: Path, root: Path) -> list[str]:
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{list_file}: cannot read the image list ({e}); it must be UTF-8 text") from e
    parent = os.fspath(list_file.parent)
    root_s = os.fspath(root)
    out = []
    for line in lines:
        line = line.strip()
        if not line or not _is_image_name(os.path.basename(line)):
            continue
        if line.startswith("./"):
            line = os.path.join(parent, line[2:])
        elif not os.path.isabs(line):
            line = os.path.join(root_s, line)
        out.append(os.path.normpath(line))
    return out


def has_images(entry: Path, root: Path) -> bool:
    """Whether a split entry (an image folder or a ``.txt`` image list) names at least one image."""
    if entry.is_dir():
        return next(iter(_scan_images(os.fspath(entry))), None) is not None
    return bool(_list_file_images(entry, root))


# ----------------------------------------------------------------------------------------------------------------
# Image check before a run


# What an image file starts with, for the formats we list (IMAGE_SUFFIXES). WEBP is 'RIFF' + size + 'WEBP'.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MAGIC_BYTES = 12


def check_images(ds: Dataset, split: str = "train") -> int:
    """Check that every image of a split exists, is not empty and starts like a JPEG, PNG, BMP, WEBP or TIFF file.

    ultralytics drops such files with a warning ("ignoring corrupt image/label") and trains on without them; the
    workbench refuses the dataset instead, naming the file. Only the first 12 bytes of each image are read (no
    decoding): 11-22 us per image with the folder scan, measured on 2 shared cores from the page cache (20k
    images; 7 ms for the 64 demo images), so 1-2 s for 100k images. A file that starts right but is
    truncated later is not detected here; ultralytics restores or drops those while caching labels
    (:func:`trainers.datasets.corrupt_images.find_corrupt_images` finds them).

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.

    Returns:
        The number of images checked.

    Raises:
        DatasetError: Naming the first bad image, what is wrong with it, and how many others are bad.
    """
    images = image_file_strs(ds, split)
    bad = [(path, problem) for path in images if (problem := _image_problem(path)) is not None]
    if bad:
        path, problem = bad[0]
        n = len(bad) - 1
        more = f" (and {n} more bad image{'s' if n > 1 else ''} in split '{split}')" if n else ""
        raise DatasetError(f"{path}: {problem}{more}; replace the image, or delete it and its label file")
    return len(images)


def _image_problem(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "image not found (listed in an image list, or a broken link)"
    except OSError as e:
        return f"cannot open the image ({e.strerror})"
    try:
        head = os.read(fd, _MAGIC_BYTES)
    except OSError as e:
        return f"cannot read the image ({e.strerror})"
    finally:
        os.close(fd)
    if not head:
        return "empty image file (0 bytes)"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None
    return f"not a JPEG, PNG, BMP, WEBP or TIFF image (it starts with bytes {head[:8].hex(' ')})"


# ----------------------------------------------------------------------------------------------------------------
# Reading label files


def _read_one(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None  # no label file: a background image
    except OSError as e:
        raise DatasetError(f"{path}: cannot open the label file ({e.strerror}); check its permissions") from e
    try:
        data = os.read(fd, _READ_CHUNK)
        if len(data) == _READ_CHUNK:  # rare big file (many polygons): read the rest
            parts = [data]
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the label file ({e.strerror}); it must be a text file") from e
    finally:
        os.close(fd)
    return data[3:] if data[:3] == _BOM else data


def _read_chunk(paths: list[str]) -> list[bytes | None]:
    return [_read_one(p) for p in paths]


def read_label_files(paths: list[str]) -> list[bytes | None]:
    """Read label files as bytes, in order, with a UTF-8 BOM removed; ``None`` for a missing file (background).

    Args:
        paths: Label file paths (from :func:`label_file_str`).

    Returns:
        The contents, one per path.

    Raises:
        DatasetError: A label file exists but cannot be opened or read.
    """
    # Serial reads cost ~6 us per file from the page cache; threads only add GIL hand-offs there. From a cold disk a
    # read waits 100-400 us, and threads overlap those waits (2-3x faster measured). So read serially in chunks and hand
    # the rest to a thread pool as soon as a chunk shows disk latency.
    out: list[bytes | None] = []
    step = _SERIAL_CHUNK
    for i in range(0, len(paths), step):
        chunk = paths[i : i + step]
        t0 = time.perf_counter()
        out.extend([_read_one(p) for p in chunk])
        if (time.perf_counter() - t0) / len(chunk) > _COLD_READ_S and i + step < len(paths):
            rest = paths[i + step :]
            size = -(-len(rest) // (_READ_THREADS * 4))
            with ThreadPoolExecutor(_READ_THREADS) as pool:
                for part in pool.map(_read_chunk, [rest[j : j + size] for j in range(0, len(rest), size)]):
                    out.extend(part)
            break
    return out


# ----------------------------------------------------------------------------------------------------------------
# Label files without an image


def orphan_label_files(ds: Dataset, split: str, labels: list[str] | None = None) -> list[str]:
    """Return the label files of a split that no image maps to, sorted; ultralytics never reads them.

    ultralytics lists a split's images and maps each one to its label file, so a label file without an image is
    skipped without a word. Looked for in the split's label folders: the labels folder of each image folder entry
    (the ``/images/`` -> ``/labels/`` rule, recursively) and the folder of every label file of the split's images.
    A ``.txt`` there is an orphan when no image file maps to it (any suffix in :data:`IMAGE_SUFFIXES`), listed in
    the split or not: a ``.txt``-list split does not report the labels of images it leaves out (another split's).
    Hidden files and the dataset's image-list files are skipped. Cost on 2 shared cores: ~0.1 s for a folder of
    100k label files, and ~0.13 s more to scan a 100k-image folder once when some label file in it has no image.

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.
        labels: The label file of every image of the split (``label_file_str`` of each), when already computed.

    Returns:
        Absolute paths of the orphan label files.
    """
    if labels is None:
        labels = [label_file_str(p) for p in image_file_strs(ds, split)]
    known = set(labels)
    recursive = [
        folder
        for entry in ds.splits[split]
        if entry.is_dir() and os.path.isdir(folder := _label_folder(os.fspath(entry)))
    ]
    flat = {label[: label.rfind(os.sep)] for label in labels}
    flat = [d for d in flat if not any(d == r or d.startswith(r + os.sep) for r in recursive)]
    candidates = {p for r in recursive for p in _scan_txt(r, True)}
    candidates.update(p for d in flat for p in _scan_txt(d, False))
    candidates -= known
    candidates -= {os.fspath(e) for entries in ds.splits.values() for e in entries if not e.is_dir()}  # image lists
    stems: dict[str, set[str]] = {}  # image folder -> stems of its image files, scanned once
    return sorted(p for p in candidates if not any(_image_exists(x, stems) for x in _image_stems(p)))


def _label_folder(image_folder: str) -> str:
    # The folder rule of img2label_paths: the last /images/ becomes /labels/; without one, labels sit beside images.
    return _SB.join((image_folder + os.sep).rsplit(_SA, 1)).rstrip(os.sep)


def _scan_txt(folder: str, recursive: bool) -> Iterator[str]:
    stack = [folder]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:  # gone or unreadable: ultralytics cannot read labels there either
            continue
        with it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                if name.endswith(".txt"):
                    if entry.is_file():
                        yield entry.path
                elif recursive and entry.is_dir():
                    stack.append(entry.path)


def _image_stems(label: str) -> Iterator[str]:
    """Every image path without suffix that ``label_file_str`` maps to ``label``: the inverse of its rule."""
    stem = label[: -len(".txt")]
    if _SA not in stem:
        yield stem  # an image outside any /images/ folder: its label sits beside it
    at = stem.find(_SB)
    while at >= 0:
        image = stem[:at] + _SA + stem[at + len(_SB) :]
        if image.rfind(_SA) == at:  # the rule replaces the last /images/ only
            yield image
        at = stem.find(_SB, at + 1)


def _image_exists(stem: str, stems: dict[str, set[str]]) -> bool:
    folder, _, name = stem.rpartition(os.sep)
    if folder not in stems:
        try:
            with os.scandir(folder) as it:
                stems[folder] = {e.name.rsplit(".", 1)[0] for e in it if _is_image_name(e.name)}
        except OSError:
            stems[folder] = set()
    return name in stems[folder]
