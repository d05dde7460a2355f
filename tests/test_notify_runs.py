"""Alerts from real tiny runs (``workbench train --notify`` in a subprocess, the demo at imgsz 64): the end message of
a healthy run, a diverging run's critical finding posted while it trains, and a dead endpoint that costs training
nothing. Unit tests of the message and the delivery: tests/test_notify.py; the measured ratio: bench_notify.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.webhook_server import silent_endpoint, webhook
from trainers.runs.notify import END_WAIT_S, endpoint
from trainers.runs.status import read_status
from trainers.telemetry.events import read_events

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = {"imgsz": 64, "batch": 16, "nbs": 16, "workers": 0, "plots": False, "seed": 0}
# SGD at lr0 1.0 with momentum 0.99, no warmup and no clipping (max_norm 0): the pre-clip gradient norm grows past
# the doctor's threshold within the first steps of epoch 1 (as tests/test_doctor_ui.py DIVERGING, at imgsz 64)
DIVERGING = {**TINY, "optimizer": "SGD", "lr0": 1.0, "momentum": 0.99, "warmup_epochs": 0, "patience": 100}


def train_command(tmp_path: Path, demo, name: str, train: dict, notify: str | None, grad_clip: float | None = None):
    """The ``workbench train`` command line of a demo run (its recipe written to ``tmp_path``)."""
    recipe = tmp_path / f"{name}.yaml"
    doc = {"model": str(demo[1]), "data": str(demo[0]), "train": train}
    if grad_clip is not None:
        doc["customizations"] = {"grad_clip": {"max_norm": grad_clip}}
    recipe.write_text(yaml.safe_dump(doc))
    return [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(tmp_path / "runs"),
            "--name", name] + (["--notify", notify] if notify else [])  # fmt: skip


ENV = {**os.environ, "WORKBENCH_CLUSTER": ""}


def train(tmp_path: Path, demo, name: str, train: dict, notify: str | None, grad_clip: float | None = None):
    """``workbench train`` on the demo in a subprocess; returns (run folder, wall seconds, completed process)."""
    cmd = train_command(tmp_path, demo, name, train, notify, grad_clip)
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900, env=ENV)
    return tmp_path / "runs" / name, time.monotonic() - t0, out


def events(run: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run / "telemetry.jsonl")[0] if e["event"] == kind]


def no_secret_in_logs(run: Path) -> None:
    for f in ("telemetry.jsonl", "console.log", "status.json"):
        assert "SECRETTOKEN" not in (run / f).read_text(), f
    assert "SECRETTOKEN" in (run / "recipe.yaml").read_text()  # the recipe keeps it: resume and the launcher post


def test_a_tiny_run_posts_its_end_with_the_best_metric(tmp_path, demo):
    with webhook() as (url, got):
        run, _, out = train(tmp_path, demo, "tiny", {**TINY, "epochs": 2}, url)
    assert out.returncode == 0, out.stderr[-3000:]
    status = read_status(run)
    (m,) = got.messages
    assert m["kind"] == "end" and m["run"] == "tiny" and m["status"] == "completed" and m["finding"] is None
    best = {"name": status["best_metric"]["name"], "value": status["best_metric"]["value"],
            "epoch": status["best_epoch"]}  # fmt: skip
    assert {k: m["best"][k] for k in best} == best and best["epoch"] in (1, 2)
    assert m["text"] == f"run tiny completed: best mAP50-95 {best['value']:.3g} at epoch {best['epoch']}"
    (ev,) = events(run, "notify")
    assert ev["ok"] and ev["kind"] == "end" and ev["endpoint"] == endpoint(url)
    assert events(run, "run_start")[0]["recipe"]["notify"]["url"] == endpoint(url)
    no_secret_in_logs(run)


def test_a_diverging_run_posts_its_critical_finding_while_it_trains(tmp_path, demo):
    with webhook() as (url, got):
        run, _, out = train(tmp_path, demo, "div", {**DIVERGING, "epochs": 2}, url, grad_clip=0)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [m["kind"] for m in got.messages] == ["critical", "end"], got.messages
    critical = got.messages[0]
    assert critical["status"] == "running" and critical["run"] == "div"
    assert critical["finding"]["severity"] == "critical"
    assert critical["finding"]["id"] in {"training.divergence", "training.nonfinite"}
    assert critical["text"] == f"run div: critical finding: {critical['finding']['title']}"
    assert critical["finding"]["evidence"]
    sent = [e for e in events(run, "notify") if e["kind"] == "critical"]
    assert sent[0]["ok"] and sent[0]["t"] < events(run, "epoch")[-1]["t"]  # during training, not at its end
    no_secret_in_logs(run)


def test_a_dead_endpoint_does_not_slow_training(tmp_path, demo):
    """The diverging run posts mid-training; to an endpoint that accepts and never answers, each try hangs for its
    5 s timeout in the sender thread. Training (run_start to the last epoch event) must take as long as without
    notify, and the process waits at most END_WAIT_S more for its end message."""
    # Both runs at the same time, so they share whatever else loads the machine: run one after the other, a load
    # that came and went between them (a full suite under two busy loops, a benchmark beside it) made the same work
    # take x2.6 as long once.
    with silent_endpoint() as url:
        procs, t0 = {}, time.monotonic()
        for name, notify in (("plain", None), ("dead", url)):
            cmd = train_command(tmp_path, demo, name, {**DIVERGING, "epochs": 2}, notify, grad_clip=0)
            procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                           env=ENV)  # fmt: skip
        walls = {}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=900)
            walls[name] = time.monotonic() - t0
            assert proc.returncode == 0, err[-3000:]
    plain, dead = tmp_path / "runs" / "plain", tmp_path / "runs" / "dead"
    plain_wall, dead_wall = walls["plain"], walls["dead"]

    def training_s(run: Path) -> float:
        return events(run, "epoch")[-1]["t"] - events(run, "run_start")[0]["t"]

    ratio = training_s(dead) / training_s(plain)
    print(f"training {training_s(plain):.2f} s without notify, {training_s(dead):.2f} s to a silent endpoint "
          f"(x{ratio:.2f}); process {plain_wall:.1f} s vs {dead_wall:.1f} s")  # fmt: skip
    assert ratio < 1.5, ratio  # the same work; a blocking send would add 5 s per try (x4 tries) to a ~5 s run
    assert dead_wall - plain_wall < END_WAIT_S + 10.0  # the end wait is bounded (plus process noise under load)
    recorded = events(dead, "notify")
    assert {e["kind"] for e in recorded} == {"critical", "end"} and not any(e["ok"] for e in recorded)
    assert any("gave up" in (e["error"] or "") for e in recorded)
    assert read_status(dead)["status"] == "completed"  # a failed delivery is never fatal


def test_the_notify_benchmark_runs_each_variant_and_reports_ratios(capsys):
    """benchmarks/bench_notify.py at its smallest: the three variants, each run's alerts recorded, never delivered."""
    from tests.test_benchmarks_smoke import load

    report = load("bench_notify").main(["--epochs", "1", "--repeats", "1", "--json"])
    rows = report["variants"]
    assert set(rows) == {"without notify", "silent endpoint", "refused endpoint", "answering endpoint"}
    assert rows["answering endpoint"]["alerts"] == rows["answering endpoint"]["delivered"] == 2
    assert rows["without notify"]["alerts"] == 0 and rows["without notify"]["training_s_ratio"] == 1.0
    for label in ("silent endpoint", "refused endpoint"):
        assert rows[label]["alerts"] == 2 and rows[label]["delivered"] == 0  # the critical finding and the end
        assert rows[label]["training_s_ratio"] > 0
