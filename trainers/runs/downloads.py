"""Fetch an official checkpoint or an ultralytics dataset with ultralytics' own download function, when allowed.

Only called once downloads are allowed (``--allow-downloads``, ``$WORKBENCH_ALLOW_DOWNLOADS=1``, or the New run
switch that a server started so shows), and always before the run folder exists (:mod:`trainers.runs.model_zoo`).

- :func:`fetch` downloads in this process with ``ultralytics.utils.downloads.safe_download`` (its progress bar on
  stderr): the CLI's way.
- :func:`fetch_with_progress` runs ``python -m trainers.runs.downloads FIELD NAME FOLDER`` and reports the bytes
  written so far: the UI's way, which never imports ultralytics.

URLs: a checkpoint comes from ``$WORKBENCH_WEIGHTS_URL/<name>``, by default the release that ultralytics' own
``attempt_download_asset`` uses (:data:`DEFAULT_WEIGHTS_URL`); a dataset from its YAML's ``download:`` URL, or from
``$WORKBENCH_DATASETS_URL/<archive name>`` when that is set (a mirror, or a server on 127.0.0.1 in the tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from trainers.datasets import ultralytics_datasets
from trainers.errors import RecipeError, WorkbenchError
from trainers.runs.model_zoo import Missing, find_data, find_model

WEIGHTS_URL_ENV = "WORKBENCH_WEIGHTS_URL"
DATASETS_URL_ENV = "WORKBENCH_DATASETS_URL"
# What attempt_download_asset builds in ultralytics 8.4 (https://github.com/{repo}/releases/download/{release}, its
# default release argument); tests/test_model_zoo.py fails when an ultralytics upgrade changes it.
DEFAULT_WEIGHTS_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
MIN_CHECKPOINT_BYTES = 1e5  # as attempt_download_asset: a smaller "checkpoint" is an error page


def url_for(item: Missing) -> str:
    """Where ``item`` is downloaded from."""
    if item.field == "model":
        return f"{(os.environ.get(WEIGHTS_URL_ENV) or DEFAULT_WEIGHTS_URL).rstrip('/')}/{item.name}"
    url = ultralytics_datasets.download_url(item.name)
    if url is None:
        raise RecipeError(
            f"data: ultralytics gets {item.name} with a script, not one archive; download it with ultralytics into "
            f"{item.target}, then start again"
        )
    mirror = os.environ.get(DATASETS_URL_ENV)
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def fetch(item: Missing, progress: bool = True) -> Path:
    """Download ``item`` with ultralytics' ``safe_download`` and return the checkpoint file or dataset ``data.yaml``.

    Raises:
        RecipeError: One line naming the URL and why, when the download fails (nothing is left behind: ultralytics
            writes a ``.part`` file and publishes it only complete).
    """
    url = url_for(item)
    from trainers.offline import apply_offline_env

    apply_offline_env()  # importing ultralytics must not probe the network; the download is the one connection
    from ultralytics.utils.downloads import safe_download

    print(f"workbench: downloading {item.name} from {url} to {item.folder}", file=sys.stderr, flush=True)
    try:
        if item.field == "model":
            safe_download(url=url, file=item.target, min_bytes=MIN_CHECKPOINT_BYTES, progress=progress)
        else:
            safe_download(url=url, dir=item.folder, unzip=True, delete=True, progress=progress)
    except Exception as e:  # requests/curl errors, a short file, a full disk: all end the same way for the user
        cause = str(e.__cause__ or e).strip().splitlines()[-1:] or [type(e).__name__]
        raise RecipeError(
            f"{item.field}: could not download {item.name} from {url} ({cause[0][:200]}); "
            f"put it in {item.folder} yourself"
        ) from None
    path, still = (find_model if item.field == "model" else find_data)(item.name, item.folder)
    if still is not None:
        raise RecipeError(f"{still.line()} (the download from {url} did not produce it)")
    return Path(path)


def partial_bytes(item: Missing) -> int:
    """Bytes of ``item`` on disk so far: ultralytics writes ``.<file>.<uuid>.part`` beside the target."""
    folder = item.target.parent if item.field == "model" else item.folder
    total = 0
    for p in folder.glob(".*.part") if folder.is_dir() else ():
        try:
            total += p.stat().st_size
        except OSError:  # published (renamed) between the listing and the stat
            continue
    return total


def fetch_with_progress(
    item: Missing, on_progress: Callable[[int, int | None], object] | None = None, poll_s: float = 0.2
) -> Path:
    """Download ``item`` in a child process, calling ``on_progress(bytes_so_far, expected_bytes_or_None)`` meanwhile.

    For the UI: the child imports ultralytics, this process does not.

    Raises:
        RecipeError: The child's one-line reason when the download fails.
    """
    from trainers.runs.backends.local import child_env

    expected = int(item.size_mb * 1e6) if item.size_mb else None
    cmd = [sys.executable, "-m", "trainers.runs.downloads", item.field, item.name, str(item.folder)]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a long progress log cannot block the child
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=child_env(), text=True
        )
        while proc.poll() is None:
            if on_progress is not None:
                on_progress(partial_bytes(item), expected)
            time.sleep(poll_s)
        out = proc.stdout.read() if proc.stdout else ""
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not answers:
        raise RecipeError(f"{item.field}: downloading {item.name} failed ({(tail or ['no answer'])[0][:200]})")
    if "error" in answers[-1]:
        raise RecipeError(answers[-1]["error"])
    if on_progress is not None and expected:
        on_progress(expected, expected)
    return Path(answers[-1]["path"])


def main(argv: list[str]) -> int:
    """``python -m trainers.runs.downloads model|data NAME FOLDER``: one JSON line, ``{"path"}`` or ``{"error"}``."""
    field, name, folder = argv
    path, item = (find_model if field == "model" else find_data)(name, Path(folder))
    try:
        if item is not None:
            path = str(fetch(item, progress=False))
    except WorkbenchError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    print(json.dumps({"path": path}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("YOLO_VERBOSE", "False")
    sys.exit(main(sys.argv[1:]))
