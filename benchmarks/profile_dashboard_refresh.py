"""Where a dashboard refresh's time goes: bench_dashboard's render timed part by part, median over N refreshes.

Usage::

    python benchmarks/profile_dashboard_refresh.py [--classes 80] [--refreshes 15] [--steps 7000]

A 300-epoch run as bench_dashboard.py writes it; each refresh follows one new epoch. The parts are
``bench_dashboard.Page.render``'s own (its ``lap`` callback), so they stay the same render the benchmark measures.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_dashboard as bench  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--refreshes", type=int, default=15)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-dashboard-") as tmp:
        run_dir, feed = bench.make_run(Path(tmp) / "runs", a.epochs, a.steps, a.classes, "store")
        args = {"epochs": a.epochs, "steps": a.steps, "classes": a.classes, "fmt": "store", "spike": feed.spike,
                "planned": feed.planned}  # fmt: skip
        feed.close()
        warm, warm_feed = bench.make_run(Path(tmp) / "warm" / "runs", 2, 50, 4, "store")
        bench.Page(warm).render()
        warm_feed.close()
        page = bench.Page(run_dir)
        page.render()
        parts: dict[str, list[float]] = collections.defaultdict(list)
        cont = bench.Continuation(run_dir, args)
        for _ in range(a.refreshes):
            cont.next_epoch()
            cont.steps_writer.flush()
            last = time.perf_counter()

            def lap(part: str) -> None:
                nonlocal last
                now = time.perf_counter()
                parts[part].append(1000 * (now - last))
                last = now

            page.render(lap)
        cont.close()
    total = [sum(v[i] for v in parts.values()) for i in range(a.refreshes)]
    print(f"{a.epochs} x {a.steps} steps, {a.classes} classes: refresh median {statistics.median(total):.1f} ms")
    for part, ms in parts.items():
        print(f"  {part:32s} {statistics.median(ms):7.2f} ms")


if __name__ == "__main__":
    main()
