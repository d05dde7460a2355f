"""Telemetry reader: the stdlib JSON parser vs orjson on the same long log, side by side in one process.

``read_events`` is the dashboard's cold-render bottleneck on long runs (docs/benchmarks.md), so the reader uses
orjson when it is installed. This measures both parsers on the same generated 300-epoch x 1,000-step log,
alternating, and reports the median ratio.

    python benchmarks/bench_telemetry_parse.py [--epochs 300] [--steps 1000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import orjson
    from bench_dashboard import make_run

    import trainers.telemetry as telemetry

    run_dir, _ = make_run(Path(tempfile.mkdtemp(prefix="wb-parse-")), args.epochs, args.steps)
    log = run_dir / "telemetry.jsonl"
    times: dict[str, list[float]] = {"json": [], "orjson": []}
    counts = set()
    for _ in range(args.repeats):
        for name, loads in (("json", json.loads), ("orjson", orjson.loads)):
            telemetry._loads = loads
            t0 = time.perf_counter()
            events, _ = telemetry.read_events(log)
            times[name].append(time.perf_counter() - t0)
            counts.add(len(events))
    assert len(counts) == 1, "both parsers must return the same events"
    result = {
        "events": counts.pop(),
        "log_mb": round(log.stat().st_size / 1e6, 1),
        "json_median_s": statistics.median(times["json"]),
        "orjson_median_s": statistics.median(times["orjson"]),
        "speedup": statistics.median(times["json"]) / statistics.median(times["orjson"]),
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k:>16}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
