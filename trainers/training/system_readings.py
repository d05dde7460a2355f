"""System readings of the training process, per epoch (``epoch.system``; docs/telemetry.md): how long the steps
waited for data versus computed, CPU and memory of the process, GPU memory and utilisation on a GPU.

Cheap by design: two ``perf_counter`` calls per batch, ``os.times`` and one ``/proc`` read per epoch, and on a GPU the
allocator's peak counter (no extra synchronisation). On a GPU the compute time includes the wait for the GPU:
ultralytics' progress bar reads the loss every batch, which synchronises.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any


def rss_mb() -> float | None:
    """Resident memory of this process now, in MB (Linux ``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux


class EpochClock:
    """Data-wait and compute time of the batches of one epoch, and the process' CPU use over it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        now = time.perf_counter()
        self._epoch_start = now
        self._last_end = now  # the first batch's wait counts from the start of the epoch
        self._batch_start: float | None = None
        self._cpu_start = sum(os.times()[:2])
        self.data_s = 0.0
        self.compute_s = 0.0
        self.batches = 0

    def batch_start(self) -> None:
        now = time.perf_counter()
        self.data_s += now - self._last_end
        self._batch_start = now

    def batch_end(self) -> None:
        now = time.perf_counter()
        if self._batch_start is not None:
            self.compute_s += now - self._batch_start
            self.batches += 1
        self._batch_start = None
        self._last_end = now

    def reading(self, device: Any = None) -> dict[str, Any]:
        """This epoch's readings (``data_s``, ``compute_s``, ``data_share``, ``cpu_percent``, ``rss_mb``, GPU)."""
        wall = max(time.perf_counter() - self._epoch_start, 1e-9)
        busy = self.data_s + self.compute_s
        out: dict[str, Any] = {
            "batches": self.batches,
            "data_s": round(self.data_s, 4),
            "compute_s": round(self.compute_s, 4),
            "data_share": round(self.data_s / busy, 4) if busy > 0 else None,
            "cpu_percent": round(100.0 * (sum(os.times()[:2]) - self._cpu_start) / wall, 1),
            "rss_mb": round(rss_mb() or 0.0, 1),
            "gpu_mem_mb": None,
            "gpu_util": None,
        }
        out.update(gpu_reading(device))
        return out


def gpu_reading(device: Any) -> dict[str, Any]:
    """Peak allocated GPU memory since the last call (MB) and utilisation (%), when ``device`` is a CUDA device."""
    if device is None or getattr(device, "type", None) != "cuda":
        return {}
    import torch

    out: dict[str, Any] = {"gpu_mem_mb": round(torch.cuda.max_memory_allocated(device) / 1e6, 1)}
    torch.cuda.reset_peak_memory_stats(device)
    try:
        out["gpu_util"] = float(torch.cuda.utilization(device))  # needs pynvml; a missing one is not an error
    except Exception:
        out["gpu_util"] = None
    return out
