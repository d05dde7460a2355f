"""Image sizes from the file headers, and the cheap checks on each image, for a whole split in a fraction of a second.

The dataset page needs every image's size (box sizes in pixels, boxes under 2 px, the image-size chart) and the
images ultralytics would drop. Opening 10,000 images with PIL costs 0.1-0.2 ms each (1-2 s); reading the header
bytes here costs 10-30 us: one ``os.open`` and one ``os.pread`` of the first 512 bytes (more only for a JPEG whose
frame header sits after a large EXIF block), and for a JPEG a second ``pread`` of its last two bytes.

What is checked, per image (the order of ultralytics' ``check_image``, ``trainers.datasets.corrupt_images``):
missing, unreadable or empty files; bytes that are not a JPEG, PNG, BMP, WEBP or TIFF; a header cut short; a side
under 10 pixels (ultralytics drops it); a JPEG without its end marker ``FF D9`` (ultralytics decodes and rewrites
it, or drops it when the decode fails: usually a file cut short). A file whose header is right but whose pixel data is
damaged elsewhere is only found when it is decoded (:func:`trainers.datasets.corrupt_images.image_verdict`, or a
thumbnail). Sizes are the stored ones: EXIF orientation is not applied (a rotated photo's sides are swapped).

This module is imported by the Streamlit UI process, so it must stay light: numpy and the standard library (PIL only
inside a function, for TIFF headers).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["HeaderScan", "MIN_SIDE", "read_header", "scan_headers"]

MIN_SIDE = 10  # ultralytics' check_image asserts both sides > 9 pixels
# Threads from this many images: 10,000 headers took 95-270 ms serially and 130-150 ms in 4 threads (2 shared cores).
_THREADED, _THREADS = 2048, 4
_HEAD = 512  # bytes read first: every format's size is in them unless a JPEG has a big EXIF/ICC block first
_JPEG_END = b"\xff\xd9"
# Start-of-frame markers (they hold the size); C4 (DHT), C8 (JPG extension) and CC (DAC) are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # markers without a length field
NOT_AN_IMAGE = "not a JPEG, PNG, BMP, WEBP or TIFF image"


@dataclass(frozen=True)
class HeaderScan:
    """Sizes and problems of a list of images.

    Attributes:
        width: Pixels per image (int32); -1 where the header could not be read.
        height: As ``width``.
        problems: Image index to what is wrong with it, in words (only the images with a problem).
    """

    width: np.ndarray
    height: np.ndarray
    problems: dict[int, str]


def scan_headers(paths: Sequence[str]) -> HeaderScan:
    """Read the size of every image from its header and check it (see the module docstring).

    Args:
        paths: Image files.

    Returns:
        The sizes and the problems found.
    """
    width = np.full(len(paths), -1, dtype=np.int32)
    height = np.full(len(paths), -1, dtype=np.int32)
    problems: dict[int, str] = {}
    if len(paths) < _THREADED:
        headers = [read_header(p) for p in paths]
    else:  # open/pread/close release the GIL: a few threads over contiguous chunks overlap them
        size = -(-len(paths) // _THREADS)
        with ThreadPoolExecutor(_THREADS) as pool:
            parts = pool.map(lambda k: [read_header(p) for p in paths[k : k + size]], range(0, len(paths), size))
            headers = [h for part in parts for h in part]
    for i, (size, problem) in enumerate(headers):
        if size is not None:
            width[i], height[i] = size
        if problem is not None:
            problems[i] = problem
    return HeaderScan(width=width, height=height, problems=problems)


def read_header(path: str) -> tuple[tuple[int, int] | None, str | None]:
    """The ``(width, height)`` of one image from its header, and what is wrong with it (``None``: nothing seen).

    Args:
        path: The image file.

    Returns:
        ``(size, problem)``; ``size`` is ``None`` when the header could not be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, "image not found (a broken link, or listed in an image list)"
    except OSError as e:
        return None, f"cannot open the image ({e.strerror})"
    try:
        head = os.pread(fd, _HEAD, 0)
        if not head:
            return None, "empty image file (0 bytes)"
        if head.startswith(b"\xff\xd8\xff"):
            size = _jpeg_size(fd, head)
            if size is None:
                return None, "JPEG header cut short (no frame header): ultralytics drops it"
            problem = _small(size)
            if problem is None and os.pread(fd, 2, max(0, os.fstat(fd).st_size - 2)) != _JPEG_END:
                problem = "JPEG without its end marker FF D9 (cut short?): ultralytics rewrites it or drops it"
            return size, problem
    except OSError as e:
        return None, f"cannot read the image ({e.strerror})"
    finally:
        os.close(fd)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        size = struct.unpack(">II", head[16:24]) if len(head) >= 24 and head[12:16] == b"IHDR" else None
    elif head.startswith(b"BM"):
        size = _bmp_size(head)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        size = _pil_size(path)
    else:
        return None, f"{NOT_AN_IMAGE} (it starts with bytes {head[:8].hex(' ')}): ultralytics drops it"
    if size is None:
        return None, "image header cut short or damaged: ultralytics drops it"
    return size, _small(size)


def _small(size: tuple[int, int]) -> str | None:
    w, h = size
    return f"image size {w}x{h} is under {MIN_SIDE} pixels: ultralytics drops it" if min(w, h) < MIN_SIDE else None


def _jpeg_size(fd: int, head: bytes) -> tuple[int, int] | None:
    # Walk the marker segments from after SOI to the first start-of-frame; read further only when a segment runs past
    # what is in hand (a large EXIF or ICC block before the frame header).
    buf, base, at = head, 0, 2
    while True:
        if at + 9 > base + len(buf):
            buf, base = os.pread(fd, 4096, at), at
            if len(buf) < 9:  # the file ends before a frame header could
                return None
        i = at - base
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", buf[i + 2 : i + 4])
        if marker in _SOF:
            h, w = struct.unpack(">HH", buf[i + 5 : i + 9])
            return w, h
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan data before any frame: damaged
            return None
        at += 2 + length


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 26:
        return None
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return struct.unpack("<HH", head[18:22])
    w, h = struct.unpack("<ii", head[18:26])
    return abs(w), abs(h)  # a negative height is a top-down bitmap


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    return None


def _pil_size(path: str) -> tuple[int, int] | None:
    from PIL import Image  # TIFF headers are IFD chains: PIL reads them (rare in detection datasets)

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # PIL raises many types for a damaged file; any of them means no size
        return None
