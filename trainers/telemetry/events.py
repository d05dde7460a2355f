"""The events log: one JSON object per line, written by the training process, read incrementally by the UI and CLI.

The schema is documented in ``docs/telemetry.md``; :func:`trainers.telemetry.schema.validate_event` checks an event
against it. This module never imports torch, numpy or ultralytics: the UI process reads logs with it.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:  # a C JSON parser: the reader is the dashboard's first-render bottleneck on long runs (docs/benchmarks.md)
    from orjson import loads as _loads
except ImportError:  # stays correct without it, only slower
    _loads = json.loads

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "TelemetryTail", "TelemetryWriter", "read_events", "to_json_value"]


# ---- writing -------------------------------------------------------------------------------------------------------
def to_json_value(value: Any) -> Any:
    """Return ``value`` as plain JSON data: scalars with ``.item()`` unwrapped, NaN/inf as ``None``.

    Handles numpy/torch scalars and 0-d tensors (``.item()``), arrays (``.tolist()``), mappings (keys become
    strings), sequences, sets and paths. Anything else falls back to ``str(value)`` so that one odd field can
    never crash a training run.

    Args:
        value: Any value a caller passed to :meth:`TelemetryWriter.emit`.

    Returns:
        A value made of dict, list, str, int, float (finite), bool and None only.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # int subclasses (IntEnum) become plain ints
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_value(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return to_json_value(item())  # numpy scalar, torch 0-d tensor (moves it to the CPU once)
        except (ValueError, RuntimeError, TypeError):
            pass  # not a single element: try it as an array below
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_json_value(tolist())
    return str(value)


class TelemetryWriter:
    """Append events to a ``telemetry.jsonl`` file, one flushed line per event.

    The file is opened with ``O_APPEND`` and every event is written with a single ``os.write`` of the whole line:
    there is no user-space buffer to flush, readers never see a line split across two writes of ours, and a second
    writer (the launcher appending a ``run_end`` for a killed run, a resumed run) appends safely after us.

    The training process creates one writer on rank 0 only; the caller decides the rank.

    Args:
        path: The log file. Created (with its parent folder) if missing; existing content is kept.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._closed = False
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # A process killed mid-write leaves a line without its "\n"; terminate it so that our first event does not
        # get glued to the fragment and lost with it (readers skip the fragment as one corrupt line).
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    self._write(b"\n")

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, pipes); regular files normally take it all
            n = os.write(self._fd, view)
            view = view[n:]

    def emit(self, event: str, /, **fields: Any) -> dict[str, Any]:
        """Write one event and return the record as written.

        Args:
            event: The event type (``run_start``, ``step``, ``epoch``, ``freeze``, ``unfreeze``, ``run_end`` or a
                new one; readers ignore types they do not know).
            **fields: The event's fields. ``v`` and ``event`` are reserved; ``t`` defaults to ``time.time()``.

        Returns:
            The record: ``{"v": 1, "event": event, "t": ..., **fields}`` after :func:`to_json_value`.

        Raises:
            ValueError: If the writer is closed or a reserved field name is passed.
        """
        if self._closed:
            raise ValueError(f"telemetry writer for {self.path} is closed")
        if "v" in fields or "event" in fields:
            raise ValueError("telemetry fields 'v' and 'event' are set by the writer")
        t = fields.pop("t", None)
        record: dict[str, Any] = {"v": SCHEMA_VERSION, "event": str(event), "t": time.time() if t is None else t}
        record.update(fields)
        record = to_json_value(record)
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        if self._fd is None:  # unpickled in another process (DDP workers): reopen lazily
            self._open()
        self._write(line.encode("utf-8"))
        return record

    def close(self) -> None:
        """Close the file. Further :meth:`emit` calls raise ``ValueError``; closing twice is fine."""
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TelemetryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # ultralytics cloudpickles the trainer (and what hangs off it) for DDP workers: a file descriptor number
        # means nothing in another process, so travel without it and reopen on the first emit.
        state = self.__dict__.copy()
        state["_fd"] = None
        return state

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


# ---- reading -------------------------------------------------------------------------------------------------------
def read_events(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Read the complete events written after byte ``offset``.

    Only lines ending in ``\\n`` are read: a half-written last line is left for the next call. A complete line that
    is not a JSON object is skipped with a ``warnings.warn`` naming its byte offset, and reading goes on. Events are
    returned as written: unknown fields and unknown event types are kept for the caller to ignore.

    Args:
        path: The ``telemetry.jsonl`` file. A missing file reads as empty (the run has not started writing).
        offset: Where the previous call stopped (``0`` for the start). Must be at a line boundary.

    Returns:
        ``(events, new_offset)`` where ``new_offset`` is the end of the last complete line read (``offset`` when
        there was nothing new).
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # 0 when there is no complete line yet
    events: list[dict[str, Any]] = []
    pos = 0
    while pos < end:
        nl = data.index(b"\n", pos)
        line = data[pos:nl]
        if line.strip():
            try:
                ev = _loads(line)
                if not isinstance(ev, dict):
                    raise ValueError(f"a JSON {type(ev).__name__}, not an object")
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                warnings.warn(
                    f"{path}: skipping corrupt telemetry line at byte offset {offset + pos}: {e}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                events.append(ev)
        pos = nl + 1
    return events, offset + end


class TelemetryTail:
    """Follow a telemetry log: each :meth:`poll` returns the events written since the previous one.

    Attributes:
        path: The log file.
        events: Every event read so far, in file order.
        offset: Byte offset just after the last complete line read.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.events: list[dict[str, Any]] = []
        self.offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Read new complete events, append them to :attr:`events` and return them.

        If the file shrank (it was replaced or truncated, which the writer never does), the tail starts over from
        the beginning and :attr:`events` is rebuilt.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < self.offset:
            self.events, self.offset = [], 0
        new, self.offset = read_events(self.path, self.offset)
        self.events.extend(new)
        return new
