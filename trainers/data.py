"""Load a YOLO ``data.yaml`` robustly and count labels per class fast.

This module is imported by the Streamlit UI process, so it must stay light: numpy and PyYAML only, never torch or
ultralytics.

Path rules (they differ from ultralytics on purpose):

- ultralytics resolves a relative ``path:`` against the current working directory or its global datasets dir, so the
  same YAML trains or fails depending on where the command was started. We resolve it against the YAML's own folder
  first (``path: .`` or ``path: ../data`` next to the YAML), then against the working directory; a missing ``path``
  means the YAML's folder.
- Split entries (``train: images/train``, or a list of them) resolve against that root. Each is a folder of images
  (scanned recursively) or a ``.txt`` file listing images.
- :func:`resolved_data_dict` writes every path out absolute, so ultralytics sees exactly what we validated.

Label rules follow ultralytics' ``verify_image_label``: one ``class x_center y_center width height`` row per box
(normalised to [0, 1] with its 1% tolerance), polygon rows ``class x1 y1 x2 y2 ...`` (3+ points) are accepted as
ultralytics turns them into boxes, blank lines are ignored, a UTF-8 BOM is allowed. An image without a label file,
or with an empty one, is a background image. Where ultralytics silently drops a corrupt image, we raise a
:class:`~trainers.errors.DatasetError` that names the label file and line, so the user can fix it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from trainers.errors import DatasetError

__all__ = [
    "IMAGE_SUFFIXES",
    "ClassCounts",
    "Dataset",
    "check_images",
    "count_labels",
    "image_files",
    "label_path",
    "load_dataset",
    "resolved_data_dict",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
REQUIRED_SPLITS = ("train", "val")
OPTIONAL_SPLITS = ("test",)

# ultralytics accepts coordinates up to 1% outside [0, 1] (rounding in exporters); matching it means we reject
# exactly the rows ultralytics would drop as corrupt, and nothing it would train on.
_COORD_TOLERANCE = 0.01
_BOM = b"\xef\xbb\xbf"
_READ_CHUNK = 1 << 14  # label files are a few hundred bytes; a small buffer keeps os.read off the mmap path
_READ_THREADS = 8  # reads release the GIL: threads overlap disk latency on a cold cache (2-3x faster measured)
_SERIAL_CHUNK = 2048  # files read serially before checking whether the disk is cold
_COLD_READ_S = 25e-6  # seconds per file above which reads are waiting on the disk, not the page cache
_BOX_FIELDS = 5
_BOX_FORMAT = "'class x_center y_center width height'"
_SPACE_AND_DIGITS = b" \t\n\r\x0b\x0c0123456789"
_MAX_CLASS_DIGITS = 9
# Every byte but the control bytes: deleting these from a buffer leaves only its control bytes.
_TEXT_BYTES = bytes(b for b in range(256) if 9 <= b <= 13 or (b >= 32 and b != 127))
_MAX_SLOW_TOKENS = 20_000  # coordinates checked in Python on the fast path before switching to full parsing


@dataclass(frozen=True)
class Dataset:
    """A validated ``data.yaml`` with every path resolved.

    Attributes:
        yaml_path: Absolute path of the ``data.yaml``.
        root: Resolved absolute dataset root (the YAML's ``path:``).
        names: Class names in id order.
        splits: Split name (``train``, ``val``, optional ``test``) to the absolute image folders or image-list
            ``.txt`` files given for it in the YAML.
    """

    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]

    @property
    def nc(self) -> int:
        """Number of classes."""
        return len(self.names)


@dataclass(frozen=True)
class ClassCounts:
    """Label statistics of one split.

    Attributes:
        names: Class names in id order.
        instances: Boxes per class.
        images: Per class, the number of images containing at least one box of that class.
        n_images: Images in the split.
        n_labelled: Images whose label file holds at least one box.
        n_background: Images without a label file or with an empty one.
    """

    names: list[str]
    instances: list[int]
    images: list[int]
    n_images: int
    n_labelled: int
    n_background: int

    def to_dict(self) -> dict:
        """Return a JSON-ready dict with the same keys as the attributes."""
        return {
            "names": list(self.names),
            "instances": list(self.instances),
            "images": list(self.images),
            "n_images": self.n_images,
            "n_labelled": self.n_labelled,
            "n_background": self.n_background,
        }


# ----------------------------------------------------------------------------------------------------------------
# data.yaml


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a ``data.yaml``.

    Checks the YAML itself, the class names, that ``train`` and ``val`` exist, and that every split folder or list
    file exists and holds at least one image. Labels are checked by :func:`count_labels`.

    Args:
        path: The ``data.yaml`` file, or a folder containing one.

    Returns:
        The dataset with absolute paths.

    Raises:
        DatasetError: One line naming the file (and key) and the fix.
    """
    yaml_path = Path(path).expanduser()
    if yaml_path.is_dir():
        candidates = [yaml_path / n for n in ("data.yaml", "data.yml") if (yaml_path / n).is_file()]
        if not candidates:
            raise DatasetError(f"{yaml_path}: folder has no data.yaml; pass the path of the dataset's YAML file")
        yaml_path = candidates[0]
    if not yaml_path.is_file():
        raise DatasetError(f"{yaml_path}: file not found; pass the path of an existing dataset YAML (data.yaml)")
    yaml_path = yaml_path.resolve()
    data = _read_yaml(yaml_path)
    names = _parse_names(data, yaml_path)
    root = _resolve_root(data.get("path"), yaml_path)
    if "val" not in data and "validation" in data:  # ultralytics renames this key too
        data["val"] = data["validation"]
    splits: dict[str, list[Path]] = {}
    for key in REQUIRED_SPLITS + OPTIONAL_SPLITS:
        value = data.get(key)
        if value in (None, "", []):
            if key in REQUIRED_SPLITS:
                raise DatasetError(
                    f"{yaml_path}: key '{key}' is missing; add '{key}: images/{key}' "
                    f"(a folder or .txt image list, relative to path {root})"
                )
            continue
        splits[key] = _resolve_split(key, value, root, yaml_path)
    ds = Dataset(yaml_path=yaml_path, root=root, names=names, splits=splits)
    for key, entries in splits.items():
        if not any(_has_images(entry, root) for entry in entries):
            where = ", ".join(str(e) for e in entries)
            raise DatasetError(
                f"{yaml_path}: split '{key}' has no images in {where}; "
                f"add {'/'.join(sorted(s[1:] for s in IMAGE_SUFFIXES))} files or fix '{key}:'"
            )
    return ds


def resolved_data_dict(ds: Dataset) -> dict:
    """Return a data dict ultralytics accepts, with every path absolute.

    The trainer writes it to a run's ``data.yaml`` and passes that file to ultralytics, so the run no longer depends
    on the working directory.

    Args:
        ds: A dataset from :func:`load_dataset`.

    Returns:
        ``{"path", "train", "val"[, "test"], "names": {id: name}, "nc"}``. A split with one folder or list file is
        written as a string, one with several as a list.
    """
    out: dict[str, Any] = {"path": str(ds.root)}
    for key, entries in ds.splits.items():
        out[key] = str(entries[0]) if len(entries) == 1 else [str(e) for e in entries]
    out["names"] = dict(enumerate(ds.names))
    out["nc"] = ds.nc
    return out


def _read_yaml(yaml_path: Path) -> dict:
    try:
        text = yaml_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{yaml_path}: cannot read the file ({e}); check its permissions and UTF-8 encoding") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DatasetError(
            f"{yaml_path}: invalid YAML{where}: {problem}; fix the syntax (indentation, 'key: value', quotes)"
        ) from e
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DatasetError(
            f"{yaml_path}: expected a mapping with keys path, train, val, names, got {kind}; "
            "write one 'key: value' per line"
        )
    return data


def _parse_names(data: dict, yaml_path: Path) -> list[str]:
    raw = data.get("names")
    if raw is None:
        raise DatasetError(
            f"{yaml_path}: key 'names' is missing; add the class names, e.g. 'names: [cat, dog]' or "
            "'names: {0: cat, 1: dog}'"
        )
    if isinstance(raw, dict):
        ids: list[int] = []
        for key in raw:
            try:
                ids.append(int(key))
            except (TypeError, ValueError):
                raise DatasetError(
                    f"{yaml_path}: 'names' key {key!r} is not a class id; use integer ids 0..n-1, e.g. '0: cat'"
                ) from None
        if sorted(ids) != list(range(len(ids))):
            missing = sorted(set(range(max(ids, default=-1) + 1)) - set(ids))
            detail = f"missing {', '.join(map(str, missing[:5]))}" if missing else f"got {sorted(ids)[:5]}"
            raise DatasetError(
                f"{yaml_path}: 'names' ids must be contiguous from 0 ({detail}); renumber them 0..{len(ids) - 1}"
            )
        by_id = {int(k): v for k, v in raw.items()}
        values = [by_id[i] for i in range(len(by_id))]
    elif isinstance(raw, (list, tuple)):
        values = list(raw)
    else:
        raise DatasetError(
            f"{yaml_path}: 'names' must be a list or an {{id: name}} mapping, got {type(raw).__name__}; "
            "e.g. 'names: [cat, dog]'"
        )
    if not values:
        raise DatasetError(f"{yaml_path}: 'names' is empty; list at least one class name")
    for i, v in enumerate(values):
        if not isinstance(v, (str, int, float)) or isinstance(v, bool) or str(v).strip() == "":
            raise DatasetError(f"{yaml_path}: 'names' entry for class {i} is {v!r}; every class needs a text name")
    names = [str(v) for v in values]
    if data.get("nc") is not None:
        nc = data["nc"]
        if isinstance(nc, bool) or not isinstance(nc, (int, float, str)) or not _is_int_like(nc):
            raise DatasetError(f"{yaml_path}: 'nc: {nc}' must be an integer; set it to {len(names)} or remove it")
        if int(float(nc)) != len(names):
            raise DatasetError(
                f"{yaml_path}: 'nc: {nc}' does not match the {len(names)} entries in 'names'; "
                f"set 'nc: {len(names)}' or remove it"
            )
    return names


def _is_int_like(value: Any) -> bool:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return False
    return f.is_integer()


def _resolve_root(value: Any, yaml_path: Path) -> Path:
    base = yaml_path.parent
    if value in (None, ""):
        return base
    if not isinstance(value, str):
        raise DatasetError(f"{yaml_path}: 'path: {value}' must be a folder path; write it as text, e.g. 'path: .'")
    p = Path(value).expanduser()
    if p.is_absolute():
        if not p.is_dir():
            raise DatasetError(f"{yaml_path}: 'path: {value}' does not exist; point 'path:' at the dataset folder")
        return p.resolve()
    next_to_yaml = base / p
    if next_to_yaml.is_dir():
        return next_to_yaml.resolve()
    # Accepted for YAMLs written for ultralytics' working-directory rule; the YAML's folder wins when both exist.
    from_cwd = Path.cwd() / p
    if from_cwd.is_dir():
        return from_cwd.resolve()
    raise DatasetError(
        f"{yaml_path}: 'path: {value}' not found next to the YAML ({next_to_yaml}) nor in the working directory "
        f"({from_cwd}); set 'path:' relative to the YAML's folder, or absolute"
    )


def _resolve_split(key: str, value: Any, root: Path, yaml_path: Path) -> list[Path]:
    raw = value if isinstance(value, list) else [value]
    entries: list[Path] = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            raise DatasetError(
                f"{yaml_path}: '{key}' entry {item!r} is not a path; use a folder or .txt list relative to {root}"
            )
        p = Path(item).expanduser()
        full = p if p.is_absolute() else root / p
        if not full.exists() and item.startswith("../"):  # ultralytics' fallback for YOLOv5-era YAMLs
            alt = root / item[3:]
            full = alt if alt.exists() else full
        if not full.exists():
            raise DatasetError(
                f"{yaml_path}: '{key}: {item}' not found (looked for {full.resolve()}); fix '{key}:' "
                f"(relative to path {root}) or create the folder"
            )
        entries.append(full.resolve())
    return entries


# ----------------------------------------------------------------------------------------------------------------
# Images and label files


def image_files(ds: Dataset, split: str) -> list[Path]:
    """List the image files of a split, sorted.

    Folders are scanned recursively for image suffixes (jpg, jpeg, png, bmp, webp, tif, tiff; any case); hidden
    files and folders are skipped. In a ``.txt`` list, lines starting with ``./`` resolve against the list file's
    folder (as ultralytics does) and other relative lines against the dataset root.

    Args:
        ds: A dataset from :func:`load_dataset`.
        split: ``train``, ``val`` or ``test``.

    Returns:
        Absolute image paths, sorted.

    Raises:
        DatasetError: The split is not defined or has no images.
    """
    return [Path(p) for p in _image_strs(ds, split)]


def label_path(image: Path) -> Path:
    """Return the label file of an image by ultralytics' convention.

    The last ``/images/`` path component becomes ``/labels/`` and the suffix becomes ``.txt``
    (``data/images/train/a.jpg`` -> ``data/labels/train/a.txt``).

    Args:
        image: Image path.

    Returns:
        The label file path (it may not exist: a background image).
    """
    return Path(_label_str(os.fspath(image)))


_SA, _SB = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"


def _label_str(image: str) -> str:
    # Same string operations as ultralytics' img2label_paths, so both always agree on the label file.
    return _SB.join(image.rsplit(_SA, 1)).rsplit(".", 1)[0] + ".txt"


def _image_strs(ds: Dataset, split: str) -> list[str]:
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


def _has_images(entry: Path, root: Path) -> bool:
    if entry.is_dir():
        return next(iter(_scan_images(os.fspath(entry))), None) is not None
    return bool(_list_file_images(entry, root))


# What an image file starts with, for the formats we list (IMAGE_SUFFIXES). WEBP is 'RIFF' + size + 'WEBP'.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MAGIC_BYTES = 12


def check_images(ds: Dataset, split: str = "train") -> int:
    """Check that every image of a split exists, is not empty and starts like a JPEG, PNG, BMP, WEBP or TIFF file.

    ultralytics drops such files with a warning ("ignoring corrupt image/label") and trains on without them; the
    workbench refuses the dataset instead, naming the file. Only the first 12 bytes of each image are read (no
    decoding): 11-22 us per image with the folder scan, measured on 2 shared cores from the page cache (20k
    images; 7 ms for the 64 demo images), so 1-2 s for 100k images. A file that starts right but is
    truncated later is not detected here; ultralytics restores or drops those while caching labels.

    Args:
        ds: A dataset from :func:`load_dataset`.
        split: ``train``, ``val`` or ``test``.

    Returns:
        The number of images checked.

    Raises:
        DatasetError: Naming the first bad image, what is wrong with it, and how many others are bad.
    """
    images = _image_strs(ds, split)
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
# Label counting


def count_labels(ds: Dataset, split: str = "train", *, require_labels: bool = False) -> ClassCounts:
    """Count boxes and images per class in one split, validating every label row.

    Reads every label file as bytes and checks them all at once with numpy. Measured on 2 shared cores with 100,000
    label files of 8 boxes in a fresh process (``benchmarks/bench_counts.py``): 1.5-1.7 s when coordinates are
    written ``0.ddd``/``0``/``1`` (no float is parsed), 2.5-2.7 s for other number formats (every value parsed),
    against 54-82 s for ultralytics' label cache. From a cold disk (page cache dropped) reads dominate: ~7 s.

    Args:
        ds: A dataset from :func:`load_dataset`.
        split: ``train``, ``val`` or ``test``.
        require_labels: Raise when the split has no box at all (the trainer sets it: nothing to learn).

    Returns:
        The per-class counts.

    Raises:
        DatasetError: A label row is malformed, has a class id outside ``0..nc-1`` or coordinates outside [0, 1]
            (the message names the label file and line), or ``require_labels`` and the split has no boxes.
    """
    images = _image_strs(ds, split)
    labels = [_label_str(p) for p in images]
    contents = _read_all(labels)
    parsed = _parse_labels(contents, labels, ds)
    nc = ds.nc
    instances = np.bincount(parsed.cls, minlength=nc)
    pairs = _sorted_unique(parsed.file.astype(np.int64) * nc + parsed.cls)
    per_image = np.bincount(pairs % nc, minlength=nc)
    n_labelled = int(_sorted_unique(pairs // nc).size)
    if require_labels and parsed.cls.size == 0:
        raise DatasetError(
            f"{ds.yaml_path}: split '{split}' has no labelled boxes in its {len(images)} images "
            f"(looked for label files like {labels[0]}); add YOLO .txt labels in a labels/ folder next to images/"
        )
    return ClassCounts(
        names=list(ds.names),
        instances=[int(x) for x in instances],
        images=[int(x) for x in per_image],
        n_images=len(images),
        n_labelled=n_labelled,
        n_background=len(images) - n_labelled,
    )


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    # np.unique hashes in numpy >= 2.3: 0.4 s for 800k ints here; a sort is 10x faster for int keys.
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys


def _read_one(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""  # no label file: a background image
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


def _read_chunk(paths: list[str]) -> list[bytes]:
    return [_read_one(p) for p in paths]


def _read_all(paths: list[str]) -> list[bytes]:
    # Serial reads cost ~6 us per file from the page cache; threads only add GIL hand-offs there. From a cold disk a
    # read waits 100-400 us, and threads overlap those waits (2-3x faster measured). So read serially in chunks and hand
    # the rest to a thread pool as soon as a chunk shows disk latency.
    out: list[bytes] = []
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


@dataclass(frozen=True)
class _Parsed:
    cls: np.ndarray  # class id per box (int64)
    file: np.ndarray  # index into the label list per box


class _Buffer:
    """All label files joined by newlines, with the byte/line/file bookkeeping to report errors."""

    def __init__(self, contents: list[bytes], labels: list[str]):
        self.labels = labels
        self.contents = contents
        self.raw = b"\n".join(contents) + b"\n"
        lengths = np.fromiter((len(c) for c in contents), dtype=np.int64, count=len(contents))
        ends = np.cumsum(lengths + 1)
        self.sep = ends - 1  # position of the newline that closes each file
        self.starts = ends - lengths - 1
        self.arr = np.frombuffer(self.raw, dtype=np.uint8)
        self.newlines = np.flatnonzero(self.arr == 10)  # one per line: line i ends at newlines[i]

    def line_file(self, lines: np.ndarray) -> np.ndarray:
        """File index of each global line index."""
        return np.searchsorted(self.sep, self.newlines[lines], side="left")

    def where(self, line: int) -> tuple[str, int, str]:
        """Label file, 1-based line number in it and the line's text, for a global line index."""
        f = int(self.line_file(np.array([line]))[0])
        first_line = int(np.searchsorted(self.newlines, self.starts[f], side="left"))
        begin = int(self.newlines[line - 1]) + 1 if line > 0 else 0
        text = self.raw[begin : int(self.newlines[line])].decode("utf-8", "replace").strip()
        text = "".join(ch if ch.isprintable() else " " for ch in text[:80])  # keep the message one clean line
        return self.labels[f], line - first_line + 1, text


def _parse_labels(contents: list[bytes], labels: list[str], ds: Dataset) -> _Parsed:
    buf = _Buffer(contents, labels)
    arr = buf.arr
    empty = _Parsed(cls=np.zeros(0, dtype=np.int64), file=np.zeros(0, dtype=np.int64))
    if arr.size <= len(contents):  # every file empty or missing: all background
        return empty

    control = buf.raw.translate(None, _TEXT_BYTES)
    if control:  # a binary or corrupted file; tokenising below treats every byte <= 32 as a separator
        line = int(np.searchsorted(buf.newlines, buf.raw.find(control[:1])))
        file, no, _ = buf.where(line)
        raise DatasetError(
            f"{file}: line {no}: contains the non-text byte 0x{control[0]:02x}; label files are text rows {_BOX_FORMAT}"
        )

    # Tokens: a token starts at a non-whitespace byte after whitespace (the buffer starts after a virtual newline).
    space = arr <= 32
    starts = np.flatnonzero(~space[1:] & space[:-1]) + 1
    if not space[0]:
        starts = np.concatenate(([0], starts))
    if not starts.size:  # only blank lines: all background (np.fromstring rejects a text with no number)
        return empty
    per_line = np.diff(np.searchsorted(starts, buf.newlines), prepend=0)
    used = np.flatnonzero(per_line)
    counts = per_line[used]
    bad = (counts != _BOX_FIELDS) & ((counts < 7) | (counts % 2 == 0))
    if bad.any():
        line = int(used[np.argmax(bad)])
        file, no, text = buf.where(line)
        raise DatasetError(
            f"{file}: line {no}: expected 5 values {_BOX_FORMAT}, got {int(per_line[line])} ('{text}'); "
            "fix or delete that line"
        )
    first_token = np.cumsum(counts) - counts  # token index of each row's class id
    is_box = counts == _BOX_FIELDS
    if not is_box.all():
        _check_mixed(buf, used, is_box)

    cls = _fast_class_ids(buf, starts, first_token)
    if cls is None:
        cls = _parse_and_check_values(buf, starts, used, counts, first_token, is_box)
    nc = ds.nc
    bad = cls >= nc
    if bad.any():
        i = int(np.argmax(bad))
        file, no, _ = buf.where(int(used[i]))
        raise DatasetError(
            f"{file}: line {no}: class id {int(cls[i])} is out of range for nc={nc} (valid 0-{nc - 1}); "
            f"fix the id or add the class to 'names' in {ds.yaml_path}"
        )
    return _Parsed(cls=cls, file=buf.line_file(used))


def _fast_class_ids(buf: _Buffer, starts: np.ndarray, first_token: np.ndarray) -> np.ndarray | None:
    """Class ids without parsing a single float, when every coordinate is written ``0.ddd``, ``0`` or ``1``.

    Those forms (what exporters write with ``%.6f`` or ``%g``) are inside [0, 1] by construction, so the only thing
    left to read is the integer class id of each row. Parsing 4 million floats costs ~0.9 s on 2 cores; these
    checks cost ~0.1 s.

    Returns:
        Class id per row, or ``None`` when any token has another form (``1e-05``, ``-0.001``, ``2.5``, text): the
        caller then parses every value and checks its range.
    """
    arr, raw = buf.arr, buf.raw
    coord = np.ones(starts.size, dtype=bool)
    coord[first_token] = False
    coord_starts = starts[coord]
    lead, after = arr[coord_starts], arr[coord_starts + 1]
    with_point = after == 46  # 'd.ddd'
    if not ((with_point | (after <= 32)) & ((lead == 48) | (lead == 49))).all():  # else only a bare '0' or '1'
        return None
    # With whitespace and digits removed, exactly one '.' per 'd.ddd' coordinate may remain: no sign, exponent, text
    # or control byte anywhere, and the class ids are plain digits.
    rest = raw.translate(None, _SPACE_AND_DIGITS)
    if len(rest) != int(with_point.sum()) or rest.count(b".") != len(rest):
        return None
    # Boxes touching the image edge are written '1.000000'; check the few '1.ddd' tokens one by one.
    ones = coord_starts[with_point & (lead == 49)]
    if ones.size > _MAX_SLOW_TOKENS:
        return None
    if any(float(raw[s : s + 64].split(None, 1)[0]) > 1 for s in ones.tolist()):
        return None  # the full path applies ultralytics' tolerance and names the line
    pos = starts[first_token]
    value = np.zeros(pos.size, dtype=np.int64)
    alive = np.ones(pos.size, dtype=bool)
    for j in range(_MAX_CLASS_DIGITS):
        digit = arr[np.minimum(pos + j, arr.size - 1)].astype(np.int64) - 48
        alive &= (digit >= 0) & (digit <= 9)
        if not alive.any():
            return value
        value = np.where(alive, value * 10 + digit, value)
    return None  # absurdly long class ids: let the general path report them


def _parse_and_check_values(
    buf: _Buffer,
    starts: np.ndarray,
    used: np.ndarray,
    counts: np.ndarray,
    first_token: np.ndarray,
    is_box: np.ndarray,
) -> np.ndarray:
    """Parse every value with numpy and check classes and coordinates; return the class id per row."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy < 2.3 warns and truncates instead of raising
        try:
            values = np.fromstring(buf.raw, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or values.size != starts.size:
        _raise_first_unparsable(buf)

    cls_f = values[first_token]
    bad = ~((cls_f >= 0) & (cls_f % 1 == 0))
    if bad.any():
        i = int(np.argmax(bad))
        file, no, text = buf.where(int(used[i]))
        raise DatasetError(
            f"{file}: line {no}: class id {float(cls_f[i]):g} is not a non-negative integer ('{text}'); "
            "the first value of a row is the class id"
        )

    lo, hi = -_COORD_TOLERANCE, 1 + _COORD_TOLERANCE
    if is_box.any():
        if is_box.all():  # the common case: a plain (rows, 5) table, no gather needed
            box = values.reshape(-1, _BOX_FIELDS)[:, 1:]
        else:
            box = values[first_token[is_box, None] + np.arange(1, _BOX_FIELDS)]
        ok_xy = (box[:, :2] >= lo) & (box[:, :2] <= hi)
        ok_wh = (box[:, 2:] >= 0) & (box[:, 2:] <= hi)
        bad = ~(ok_xy.all(1) & ok_wh.all(1))
        if bad.any():
            i = int(np.argmax(bad))
            file, no, text = buf.where(int(used[is_box][i]))
            if (box[i, 2:] < 0).any():
                problem = f"has a negative width/height ('{text}')"
            else:
                problem = f"has coordinates outside [0, 1] ('{text}')"
            raise DatasetError(
                f"{file}: line {no}: {problem}; rows are {_BOX_FORMAT} normalised by the image size (0-1)"
            )
    if not is_box.all():
        # Every token of a polygon row except its class id is a coordinate. Blank lines hold no tokens, so the used
        # rows' tokens are exactly the parsed values, in order.
        token_poly = np.repeat(~is_box, counts)
        token_poly[first_token] = False
        coord_index = np.flatnonzero(token_poly)
        coords = values[coord_index]
        bad = ~((coords >= lo) & (coords <= hi))
        if bad.any():
            row = int(np.searchsorted(first_token, coord_index[np.argmax(bad)], side="right")) - 1
            file, no, text = buf.where(int(used[row]))
            raise DatasetError(
                f"{file}: line {no}: polygon has coordinates outside [0, 1] ('{text[:40]}'); "
                "points must be normalised by the image size (0-1)"
            )
    return cls_f.astype(np.int64)


def _check_mixed(buf: _Buffer, used: np.ndarray, is_box: np.ndarray) -> None:
    files = buf.line_file(used)
    mixed = np.intersect1d(files[is_box], files[~is_box])
    if mixed.size:
        raise DatasetError(
            f"{buf.labels[int(mixed[0])]}: mixes box rows (5 values) and polygon rows; ultralytics rejects such "
            "files, use one format per file"
        )


def _raise_first_unparsable(buf: _Buffer) -> None:
    # Only on the error path: find the first non-numeric token with Python's float(), file by file.
    for f, data in enumerate(buf.contents):
        for no, line in enumerate(data.split(b"\n"), 1):
            for token in line.split():
                try:
                    float(token)
                except ValueError:
                    shown = token.decode("utf-8", "replace")[:30]
                    raise DatasetError(
                        f"{buf.labels[f]}: line {no}: '{shown}' is not a number; rows must be numeric {_BOX_FORMAT}"
                    ) from None
    raise DatasetError(f"{buf.labels[0]}: labels could not be parsed as numbers; rows must be {_BOX_FORMAT}")
