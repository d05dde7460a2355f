"""Alerts to a dead endpoint cost training nothing: the same tiny run with ``--notify`` to an endpoint that never
answers, to a port nobody listens on, to one that answers at once, and without notify, side by side.

The run is the diverging demo recipe (SGD lr0 1.0, momentum 0.99, no warmup, no clipping, imgsz 64): its critical
finding is posted in the first steps, so the sender thread is stuck on the dead endpoint for the whole of training
(each try hangs for its 5 s timeout against the silent one; the refused one retries after 1, 2, 4 s). Each variant is
``workbench train`` in its own process, in turn, ``--repeats`` times (round-robin, so a busy neighbour hits all
alike). The answering endpoint runs the same live checks as the dead ones: the two dead ones against it are the cost
of the endpoint alone, against no notify the cost of alerts as a whole. Reported per variant: training seconds
(``run_start`` to the last ``epoch`` event: what a blocking send would lengthen), the mean ``epoch_time``
(ultralytics' own), the process' wall time (which includes the end message's wait, at most ``END_WAIT_S``), and each
one's ratio to the run without notify (median over the repeats).

    .venv/bin/python benchmarks/bench_notify.py [--epochs 3] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainers.telemetry.events import read_events  # noqa: E402 (after the path is set)

TRAIN = {"imgsz": 64, "batch": 16, "nbs": 16, "workers": 0, "plots": False, "seed": 0, "optimizer": "SGD",
         "lr0": 1.0, "momentum": 0.99, "warmup_epochs": 0, "patience": 100}  # fmt: skip


def train(root: Path, name: str, epochs: int, notify: str | None) -> dict[str, float]:
    """One ``workbench train`` of the diverging recipe; its timings."""
    recipe = root / "diverging.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": str(REPO / "assets/demo_base.pt"), "data": str(REPO / "assets/demo/data.yaml"),
        "train": {**TRAIN, "epochs": epochs}, "customizations": {"grad_clip": {"max_norm": 0}},
    }))  # fmt: skip
    cmd = [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(root / "runs"), "--name", name]
    t0 = time.monotonic()
    out = subprocess.run(cmd + (["--notify", notify] if notify else []), capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "WORKBENCH_CLUSTER": ""})  # fmt: skip
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"{name}: workbench train failed:\n{out.stderr[-2000:]}")
    events = read_events(root / "runs" / name / "telemetry.jsonl")[0]
    epochs_ = [e for e in events if e["event"] == "epoch" and not e.get("final_eval")]
    start = next(e for e in events if e["event"] == "run_start")
    sent = [e for e in events if e["event"] == "notify"]
    return {
        "training_s": epochs_[-1]["t"] - start["t"],
        "epoch_time_s": statistics.mean(e["epoch_time"] for e in epochs_),
        "wall_s": wall,
        "alerts": len(sent),
        "delivered": sum(1 for e in sent if e["ok"]),
    }


class Answer(http.server.BaseHTTPRequestHandler):
    """A webhook that takes every message at once."""

    def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
        pass

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    silent = socket.socket()  # accepts connections (its backlog) and never answers a byte
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    refused = socket.socket()  # bound, never listening: connections are refused
    refused.bind(("127.0.0.1", 0))
    answering = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=answering.serve_forever, daemon=True).start()
    variants = {
        "without notify": None,
        "silent endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}/hook/SECRET",
        "refused endpoint": f"http://127.0.0.1:{refused.getsockname()[1]}/hook/SECRET",
        "answering endpoint": f"http://127.0.0.1:{answering.server_address[1]}/hook/SECRET",
    }
    results: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (label, url) in enumerate(variants.items()):
                results[label].append(train(Path(tmp), f"r{r}-{i}", args.epochs, url))
    silent.close()
    refused.close()
    answering.shutdown()
    answering.server_close()
    base = results["without notify"]
    report = {"epochs": args.epochs, "repeats": args.repeats, "variants": {}}
    for label, runs in results.items():
        row = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        for key in ("training_s", "epoch_time_s", "wall_s"):
            row[f"{key}_ratio"] = statistics.median(run[key] / b[key] for run, b in zip(runs, base, strict=True))
        report["variants"][label] = row
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"diverging demo run, {args.epochs} epochs at imgsz 64, median of {args.repeats} (ratio to no notify)")
        for label, row in report["variants"].items():
            print(f"  {label:18s} training {row['training_s']:6.2f} s (x{row['training_s_ratio']:.2f})  "
                  f"epoch {row['epoch_time_s']:5.2f} s (x{row['epoch_time_s_ratio']:.2f})  "
                  f"process {row['wall_s']:6.1f} s (x{row['wall_s_ratio']:.2f})  "
                  f"alerts {row['alerts']:.0f}, delivered {row['delivered']:.0f}")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
