"""Count boxes and images per class in a split, validating every label row, fast (numpy over all files at once).

This module is imported by the Streamlit UI process, so it must stay light: numpy only, never torch or ultralytics.

Label rules follow ultralytics' ``verify_image_label``: one ``class x_center y_center width height`` row per box
(normalised to [0, 1] with its 1% tolerance), polygon rows ``class x1 y1 x2 y2 ...`` (3+ points) are accepted as
ultralytics turns them into boxes, blank lines are ignored, a UTF-8 BOM is allowed. An image without a label file,
or with an empty one, is a background image. Where ultralytics silently drops a corrupt image, we raise a
:class:`~trainers.errors.DatasetError` that names the label file and line, so the user can fix it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from trainers.datasets.dataset import Dataset
from trainers.datasets.files import image_file_strs, label_file_str, read_label_files
from trainers.errors import DatasetError

__all__ = ["ClassCounts", "count_label_contents", "count_labels"]

# ultralytics accepts coordinates up to 1% outside [0, 1] (rounding in exporters); matching it means we reject
# exactly the rows ultralytics would drop as corrupt, and nothing it would train on.
_COORD_TOLERANCE = 0.01
_BOX_FIELDS = 5
_BOX_FORMAT = "'class x_center y_center width height'"
_SPACE_AND_DIGITS = b" \t\n\r\x0b\x0c0123456789"
_MAX_CLASS_DIGITS = 9
# Every byte but the control bytes: deleting these from a buffer leaves only its control bytes.
_TEXT_BYTES = bytes(b for b in range(256) if 9 <= b <= 13 or (b >= 32 and b != 127))
_MAX_SLOW_TOKENS = 20_000  # coordinates checked in Python on the fast path before switching to full parsing


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


def count_labels(ds: Dataset, split: str = "train", *, require_labels: bool = False) -> ClassCounts:
    """Count boxes and images per class in one split, validating every label row.

    Reads every label file as bytes and checks them all at once with numpy. Measured on 2 shared cores with 100,000
    label files of 8 boxes in a fresh process (``benchmarks/bench_counts.py``): 1.5-1.7 s when coordinates are
    written ``0.ddd``/``0``/``1`` (no float is parsed), 2.5-2.7 s for other number formats (every value parsed),
    against 54-82 s for ultralytics' label cache. From a cold disk (page cache dropped) reads dominate: ~7 s.

    Args:
        ds: A dataset from :func:`trainers.datasets.data_yaml.load_dataset`.
        split: ``train``, ``val`` or ``test``.
        require_labels: Raise when the split has no box at all (the trainer sets it: nothing to learn).

    Returns:
        The per-class counts.

    Raises:
        DatasetError: A label row is malformed, has a class id outside ``0..nc-1`` or coordinates outside [0, 1]
            (the message names the label file and line), or ``require_labels`` and the split has no boxes.
    """
    labels = [label_file_str(p) for p in image_file_strs(ds, split)]
    return count_label_contents(ds, split, labels, read_label_files(labels), require_labels=require_labels)


def count_label_contents(
    ds: Dataset,
    split: str,
    labels: list[str],
    contents: list[bytes | None],
    *,
    require_labels: bool = False,
) -> ClassCounts:
    """:func:`count_labels` on label files already read, one per image (so a caller reads each file once).

    Args:
        ds: The dataset (class names, and the YAML path for messages).
        split: The split name, for messages.
        labels: The label file of each image.
        contents: What :func:`trainers.datasets.files.read_label_files` read for them (``None``: no label file).
        require_labels: Raise when there is no box at all.

    Returns:
        The per-class counts (``n_images`` is the number of label paths given).

    Raises:
        DatasetError: As :func:`count_labels`.
    """
    contents = [b"" if c is None else c for c in contents]
    parsed = _parse_labels(contents, labels, ds)
    nc = ds.nc
    instances = np.bincount(parsed.cls, minlength=nc)
    pairs = _sorted_unique(parsed.file.astype(np.int64) * nc + parsed.cls)
    per_image = np.bincount(pairs % nc, minlength=nc)
    n_labelled = int(_sorted_unique(pairs // nc).size)
    if require_labels and parsed.cls.size == 0:
        raise DatasetError(
            f"{ds.yaml_path}: split '{split}' has no labelled boxes in its {len(labels)} images "
            f"(looked for label files like {labels[0]}); add YOLO .txt labels in a labels/ folder next to images/"
        )
    return ClassCounts(
        names=list(ds.names),
        instances=[int(x) for x in instances],
        images=[int(x) for x in per_image],
        n_images=len(labels),
        n_labelled=n_labelled,
        n_background=len(labels) - n_labelled,
    )


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    # np.unique hashes in numpy >= 2.3: 0.4 s for 800k ints here; a sort is 10x faster for int keys.
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys


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
