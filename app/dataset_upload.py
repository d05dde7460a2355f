"""Import an uploaded dataset export by running ``workbench import`` in a subprocess (no Streamlit).

The import unzips with ultralytics and converts COCO JSON with it, and the UI process never imports ultralytics
(nor torch), so the page hands the upload to ``python -m trainers.cli import --json`` and reads its progress lines
back (:func:`trainers.datasets.importer.read_progress_line`) to move a progress bar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trainers import SOURCE_ROOT
from trainers.datasets.datasets_dir import default_dataset_name
from trainers.datasets.importer import read_progress_line

ERROR_PREFIX = "workbench: error: "


@dataclass(frozen=True)
class ImportOutcome:
    """What the import subprocess ended with: the dataset (``--json`` document) or its one-line error."""

    result: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str | None:
        return self.result.get("name")


def import_upload(
    file_name: str,
    content: bytes | memoryview,
    datasets_dir: Path,
    name: str | None = None,
    on_progress: Callable[[float, str], None] | None = None,
) -> ImportOutcome:
    """Write an uploaded zip to a temporary file and import it (:func:`run_import`); the file is removed after."""
    with tempfile.TemporaryDirectory(prefix="workbench-upload-") as tmp:
        path = Path(tmp) / f"{default_dataset_name(Path(file_name).name)}.zip"  # the default dataset name
        path.write_bytes(content)
        return run_import(path, datasets_dir, name=name, on_progress=on_progress)


def run_import(
    source: Path,
    datasets_dir: Path,
    name: str | None = None,
    on_progress: Callable[[float, str], None] | None = None,
) -> ImportOutcome:
    """Run ``workbench import SOURCE --json`` and follow its progress.

    Args:
        source: The zip (or folder) to import.
        datasets_dir: The datasets folder.
        name: The dataset name (default: the source's name).
        on_progress: Called with (fraction, message) for each progress line.

    Returns:
        The ``--json`` document, or the command's one-line error.
    """
    cmd = [sys.executable, "-m", "trainers.cli", "import", str(source), "--datasets-dir", str(datasets_dir), "--json"]
    if name:
        cmd += ["--name", name]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:  # a file, not a pipe: stderr is read as it comes
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=env, cwd=SOURCE_ROOT)
        assert proc.stderr is not None
        other = []
        for line in proc.stderr:
            progress = read_progress_line(line)
            if progress is None:
                other.append(line.rstrip("\n"))
            elif on_progress is not None:
                on_progress(*progress)
        code = proc.wait()
        out.seek(0)
        text = out.read()
    if code != 0:
        errors = [line.removeprefix(ERROR_PREFIX) for line in other if line.startswith(ERROR_PREFIX)]
        return ImportOutcome(error=errors[-1] if errors else f"import failed (exit {code}): {' '.join(other[-3:])}")
    return ImportOutcome(result=json.loads(text))
