"""``workbench import ZIP|FOLDER``: a YOLO or COCO JSON export into the datasets folder
(:mod:`trainers.datasets.importer`), with a line of progress on stderr per step and the counts on stdout.

The UI's upload runs this command in a subprocess and reads the progress lines back
(:func:`trainers.datasets.importer.read_progress_line`), so the UI process never imports ultralytics.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

DATASETS_DIR_HELP = "datasets folder (default: $WORKBENCH_DATASETS_DIR or ./datasets)"
_STEP = 0.05  # a progress line per 5 %, or when the stage changes


class LineProgress:
    """Progress as lines on a stream (``import:  40% unpacking 120/300 files``), not a redrawn bar: the UI and logs
    read them line by line."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.last = -1.0
        self.stage = ""

    def __call__(self, fraction: float, message: str) -> None:
        from trainers.datasets.importer import progress_line

        stage = re.sub(r"\d+", "#", message)
        if fraction - self.last < _STEP and stage == self.stage and fraction < 1:
            return
        self.last, self.stage = fraction, stage
        print(progress_line(fraction, message), file=self.stream, flush=True)


def _size(text: str) -> int:
    from trainers.datasets.importer import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a stopped UI, a closed terminal) raises KeyboardInterrupt, so the import removes its work folder; by
    default Python would die on the spot and leave it."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers are the main thread's only
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def cmd_import(args: argparse.Namespace) -> int:
    """``workbench import ZIP|FOLDER``: import, then print the counts (or one JSON document with ``--json``)."""
    from trainers.datasets.importer import import_dataset

    with _sigterm_interrupts():
        result = import_dataset(
            args.source,
            datasets_dir=args.datasets_dir,
            name=args.name,
            max_size=args.max_size,
            progress=LineProgress(sys.stderr),
        )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.text())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``import`` to the ``workbench`` subcommands."""
    p = sub.add_parser(
        "import", help="import a dataset export (a zip or a folder; YOLO or COCO JSON) into the datasets folder"
    )
    p.add_argument("source", metavar="ZIP|FOLDER", help="the export: a .zip file or a dataset folder (copied)")
    p.add_argument("--name", metavar="N", help="dataset name (default: the zip's or folder's name)")
    p.add_argument("--datasets-dir", metavar="D", help=DATASETS_DIR_HELP)
    p.add_argument(
        "--max-size", type=_size, metavar="SIZE",
        help="refuse an export larger than this unpacked, e.g. 500M or 2G (always: larger than the free disk)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_import)
