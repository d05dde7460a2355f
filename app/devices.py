"""The GPUs this machine has, for the New run page's device choice: read from ``nvidia-smi`` (not torch: the UI
process must not import it)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence


@functools.lru_cache(maxsize=1)
def list_gpus() -> list[str]:
    """CUDA GPUs as ``"0: NVIDIA H200"``, from ``nvidia-smi -L`` (not torch: the UI must not import it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        m = re.match(r"GPU (\d+): (.+?)(?: \(UUID.*)?$", line.strip())
        if m:
            gpus.append(f"{m.group(1)}: {m.group(2)}")
    return gpus


def device_options(gpus: Sequence[str]) -> list[str]:
    """``auto``, ``cpu``, each GPU index, and all GPUs together when there are several."""
    ids = [g.split(":", 1)[0] for g in gpus]
    return ["auto", "cpu", *ids, *([",".join(ids)] if len(ids) > 1 else [])]
