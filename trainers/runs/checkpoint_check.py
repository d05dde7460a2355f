"""Is a local ``.pt`` an ultralytics detection checkpoint? Answered for the New run form without unpickling it there.

A ``.pt`` is a Python pickle: loading it runs whatever code it names. The UI process therefore never loads one:

1. :func:`archive_problem` looks at the file as what ``torch.save`` writes (a zip with a ``data.pkl`` member and a
   CRC per member) without unpickling anything: an empty file, a text file or a damaged archive is refused at once,
   before the user is even asked to trust it;
2. after the user ticks "I trust this file", :func:`probe` loads it with ultralytics' own loader in a throwaway
   subprocess (``python -m trainers.runs.checkpoint_check PATH``), which prints the model's family and task as one JSON
   line, or the one-line reason it is not a detection checkpoint. The answer is cached by path, size and time.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 120  # importing torch + ultralytics and unpickling a large checkpoint on a slow disk


def archive_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` checkpoint (one line naming the file), or None if it could be."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        return f"model: {p}: cannot be read ({e.strerror or type(e).__name__})"
    if size == 0:
        return f"model: {p} is empty (0 bytes); give a checkpoint saved by ultralytics"
    try:
        with zipfile.ZipFile(p) as archive:
            names = archive.namelist()
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                return f"model: {p} is a zip archive but not a PyTorch checkpoint (no data.pkl inside)"
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return (
            f"model: {p} is not a PyTorch checkpoint (not the zip archive torch.save writes); give an ultralytics .pt"
        )
    except (OSError, EOFError, ValueError) as e:
        return f"model: {p} cannot be read as a checkpoint ({type(e).__name__})"
    if bad is not None:
        return f"model: {p} is damaged ({bad} fails its checksum); give an intact checkpoint"
    return None


def probe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load ``path`` in a throwaway process and say what it is: ``{"family", "task", "names"}`` or ``{"error"}``.

    Only call it after the user said they trust the file. Cached by (path, size, modification time).
    """
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except OSError as e:
        return {"error": f"model: {p}: cannot be read ({e.strerror or type(e).__name__})"}
    return dict(_probe(str(p), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _probe(path: str, _size: int, _mtime: int) -> tuple[tuple[str, Any], ...]:
    from trainers.runs.launcher import child_env

    try:
        out = subprocess.run(
            [sys.executable, "-m", "trainers.runs.checkpoint_check", path],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=child_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return (("error", f"model: {path}: loading it took over {PROBE_TIMEOUT_S} s; is it a checkpoint?"),)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        detail = (out.stderr.strip().splitlines() or ["no answer"])[-1][:200]
        return (("error", f"model: {path} could not be loaded ({detail})"),)
    return tuple(json.loads(lines[-1]).items())


def describe(path: str) -> dict[str, Any]:
    """What the checkpoint is, loaded with ultralytics (runs in the probe process, never in the UI's)."""
    from trainers.errors import WorkbenchError
    from trainers.offline import apply_offline_env

    apply_offline_env()
    from trainers.runs.preflight import model_family

    try:
        family = model_family(Path(path))
    except WorkbenchError as e:
        return {"error": str(e)}
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(path)
    names = getattr(model, "names", {}) or {}
    return {"family": family, "task": "detect", "names": [str(n) for n in dict(names).values()]}


if __name__ == "__main__":
    os.environ.setdefault("YOLO_VERBOSE", "False")
    print(json.dumps(describe(sys.argv[1])))
