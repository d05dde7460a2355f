"""Every label row of a split as numpy arrays, tolerant of bad files: what the dataset page draws and checks.

:mod:`trainers.datasets.label_counts` refuses a split at its first bad row, as a run must. The dataset page has to
show such a split and name every bad file, so here a bad file is set aside with its first problem and the other
files' rows are kept. The reading is the same: all files joined into one buffer, tokenised and parsed at once with
numpy (10,000 label files of a few rows: ~30 ms). Rows follow ultralytics' rules, as there: ``class x_center y_center
width height`` normalised to [0, 1]; a polygon row ``class x1 y1 x2 y2 ...`` (3+ points) is kept as its bounding box;
blank lines are ignored; a file mixing both kinds is refused, as ultralytics does.

This module is imported by the Streamlit UI process, so it must stay light: numpy only, never torch or ultralytics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["COORD_TOLERANCE", "LabelRows", "parse_label_rows"]

COORD_TOLERANCE = 0.01  # ultralytics accepts coordinates up to 1% outside [0, 1]; so does label_counts
_BOX_FIELDS = 5
_PLAIN_WIDTH = 15  # longest token read by the plain-decimal path (15 digits: exact in int64 and float64)
_PLAIN_BYTES = b" \t\n\r\x0b\x0c0123456789."
_POWERS = 10.0 ** np.arange(_PLAIN_WIDTH + 1)
# Bytes a numeric label file may hold: whitespace, digits, sign, point, exponent. Anything else cannot parse.
_NUMERIC = np.zeros(256, dtype=bool)
_NUMERIC[list(b" \t\n\r\x0b\x0c0123456789.+-eE")] = True


@dataclass(frozen=True)
class LabelRows:
    """The rows of many label files, one array entry per row, in file and line order.

    Attributes:
        file: Index of the row's file in the list given (int64).
        line: 1-based line number of the row in its file (int64).
        cls: The class id as written (float64: a bad id such as ``-1`` or ``2.5`` is kept to be named).
        box: ``(rows, 4)`` float64 ``x_center, y_center, width, height``, normalised (a polygon row: its bounding box).
        outside: Per row, whether a coordinate is outside [0, 1] beyond ultralytics' 1% tolerance, or a side negative.
        malformed: File index -> its first problem, for the files that do not parse (none of their rows are kept).
    """

    file: np.ndarray
    line: np.ndarray
    cls: np.ndarray
    box: np.ndarray
    outside: np.ndarray
    malformed: dict[int, str]


class _Joined:
    """Files joined by newlines; token starts, per-line token counts and the file and line number of each line."""

    def __init__(self, contents: Sequence[bytes]):
        self.raw = b"\n".join(contents) + b"\n"
        self.arr = np.frombuffer(self.raw, dtype=np.uint8)
        lengths = np.fromiter((len(c) for c in contents), dtype=np.int64, count=len(contents))
        self.sep = np.cumsum(lengths + 1) - 1  # the newline closing each file
        starts = self.sep - lengths
        self.newlines = np.flatnonzero(self.arr == 10)
        self.first_line = np.searchsorted(self.newlines, starts)  # global index of each file's first line
        space = self.arr <= 32
        self.starts = np.flatnonzero(~space & np.concatenate(([True], space[:-1])))
        self.per_line = np.diff(np.searchsorted(self.starts, self.newlines), prepend=0)

    def file_of_byte(self, pos: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.sep, pos, side="left")

    def file_of_line(self, lines: np.ndarray) -> np.ndarray:
        return self.file_of_byte(self.newlines[lines])


def parse_label_rows(contents: Sequence[bytes | None]) -> LabelRows:
    """Parse label files (``None``: no file) into rows; set aside the files that do not parse, with the reason.

    Args:
        contents: What :func:`trainers.datasets.files.read_label_files` read.

    Returns:
        The rows of the files that parse, and the first problem of each file that does not.
    """
    files = [c or b"" for c in contents]
    malformed: dict[int, str] = {}
    joined = _Joined(files)
    for check in (_odd_bytes, _bad_rows):
        found = check(joined)
        if found:  # set those files aside and join the rest again (only when some file is bad)
            for f, why in found.items():
                malformed.setdefault(f, why)
                files[f] = b""
            joined = _Joined(files)
    values = _values(joined)
    if values is None:  # a token such as '1.2.3' or '--1': find the files, file by file (rare)
        for f, data in enumerate(files):
            if data and _values(_Joined([data])) is None:
                malformed[f] = _first_unparsable(data)
                files[f] = b""
        joined = _Joined(files)
        values = _values(joined)
        assert values is not None
    return _rows(joined, values, malformed)


def _odd_bytes(joined: _Joined) -> dict[int, str]:
    bad = np.flatnonzero(~_NUMERIC[joined.arr])
    out: dict[int, str] = {}
    for pos, f in zip(bad.tolist(), joined.file_of_byte(bad).tolist(), strict=True):
        if f not in out:
            line = int(np.searchsorted(joined.newlines, pos)) - int(joined.first_line[f]) + 1
            byte = joined.raw[pos]
            what = f"the byte 0x{byte:02x}" if byte < 32 or byte >= 127 else f"'{chr(byte)}'"
            out[f] = f"line {line}: {what} is not part of a number; rows are 'class x_center y_center width height'"
    return out


def _bad_rows(joined: _Joined) -> dict[int, str]:
    counts = joined.per_line
    used = np.flatnonzero(counts)
    n = counts[used]
    bad = (n != _BOX_FIELDS) & ((n < 7) | (n % 2 == 0))
    out: dict[int, str] = {}
    files = joined.file_of_line(used)
    for line, f in zip(used[bad].tolist(), files[bad].tolist(), strict=True):
        if f not in out:
            no = line - int(joined.first_line[f]) + 1
            out[f] = f"line {no}: expected 5 values 'class x_center y_center width height', got {int(counts[line])}"
    is_box = n == _BOX_FIELDS
    mixed = np.intersect1d(files[is_box & ~bad], files[~is_box & ~bad])
    for f in mixed.tolist():
        out.setdefault(f, "mixes box rows (5 values) and polygon rows: ultralytics refuses such a file")
    return out


def _values(joined: _Joined) -> np.ndarray | None:
    if not joined.starts.size:
        return np.zeros(0)
    fast = _plain_decimals(joined)
    if fast is not None:
        return fast
    try:
        values = np.fromstring(joined.raw, dtype=np.float64, sep=" ")
    except ValueError:
        return None
    return values if values.size == joined.starts.size else None


def _plain_decimals(joined: _Joined) -> np.ndarray | None:
    """Every token's value when all are plain decimals (``12``, ``0.482813``, ``1.``), else ``None``.

    Exporters write coordinates with ``%.6f`` or ``%g``: digits around one point, no sign or exponent. Such a token
    is its digits as an integer divided by a power of ten, both exact in float64, so the division gives the same
    double as ``strtod``. Read column by column with numpy: ~2x faster than ``np.fromstring`` (which parses each
    value in C but at ~0.5 us a value).
    """
    raw, arr, starts = joined.raw, joined.arr, joined.starts
    if raw.translate(None, _PLAIN_BYTES):  # a sign, an exponent, text: np.fromstring reads (or refuses) those
        return None
    space = arr <= 32
    length = np.flatnonzero(~space[:-1] & space[1:]) + 1 - starts  # the buffer ends with a newline
    if length.max() > _PLAIN_WIDTH:
        return None
    points = np.flatnonzero(arr == 46)
    token = np.searchsorted(starts, points, side="right") - 1
    if token.size and ((np.diff(token) == 0).any() or (length[token] == 1).any()):  # '1.2.3' or a lone '.'
        return None
    dot = np.full(starts.size, _PLAIN_WIDTH, dtype=np.int64)
    dot[token] = points - starts[token]
    whole = np.zeros(starts.size, dtype=np.int64)
    last = arr.size - 1
    for j in range(int(length.max())):
        take = (j < length) & (j != dot)
        digit = arr[np.minimum(starts + j, last)].astype(np.int64) - 48
        whole = np.where(take, whole * 10 + digit, whole)
    decimals = np.where(dot < length, length - dot - 1, 0)
    return whole / _POWERS[decimals]


def _first_unparsable(data: bytes) -> str:
    for no, line in enumerate(data.split(b"\n"), 1):
        for token in line.split():
            try:
                float(token)
            except ValueError:
                return f"line {no}: '{token.decode('ascii', 'replace')[:30]}' is not a number"
    return "a value is not a number"


def _rows(joined: _Joined, values: np.ndarray, malformed: dict[int, str]) -> LabelRows:
    used = np.flatnonzero(joined.per_line)
    counts = joined.per_line[used]
    first = np.cumsum(counts) - counts  # token index of each row's class id
    file = joined.file_of_line(used)
    line = used - joined.first_line[file] + 1
    box = np.zeros((used.size, 4))
    lo, hi = -COORD_TOLERANCE, 1 + COORD_TOLERANCE
    outside = np.zeros(used.size, dtype=bool)
    is_box = counts == _BOX_FIELDS
    if is_box.any():
        b = values[first[is_box, None] + np.arange(1, _BOX_FIELDS)]
        box[is_box] = b
        outside[is_box] = ((b[:, :2] < lo) | (b[:, :2] > hi)).any(1) | ((b[:, 2:] < 0) | (b[:, 2:] > hi)).any(1)
    if not is_box.all():
        poly = ~is_box
        points = (counts[poly] - 1) // 2
        seg = np.cumsum(points) - points  # each row's first point among all polygon points
        offsets = np.repeat(first[poly] + 1, points) + 2 * (np.arange(points.sum()) - np.repeat(seg, points))
        xs, ys = values[offsets], values[offsets + 1]
        x0, x1 = np.minimum.reduceat(xs, seg), np.maximum.reduceat(xs, seg)
        y0, y1 = np.minimum.reduceat(ys, seg), np.maximum.reduceat(ys, seg)
        box[poly] = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=1)
        outside[poly] = (np.minimum(x0, y0) < lo) | (np.maximum(x1, y1) > hi)
    return LabelRows(
        file=file.astype(np.int64),
        line=line.astype(np.int64),
        cls=values[first] if used.size else np.zeros(0),
        box=box,
        outside=outside,
        malformed=dict(sorted(malformed.items())),
    )
