"""Issue-3 acceptance on real training processes: stop mid-epoch and resume, SIGKILL detection, concurrent runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY_TRAIN, make_dataset, step_rows, wait_for
from trainers.runs import launcher
from trainers.runs.status import read_status
from trainers.telemetry.events import read_events
from trainers.telemetry.schema import validate_event

pytestmark = pytest.mark.slow


def events_of(run_dir: Path) -> list[dict]:
    return read_events(run_dir / "telemetry.jsonl")[0]


def write_recipe(tmp_path: Path, data: Path, **train) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": "yolo26n.yaml",
                "data": str(data),
                "train": {**TINY_TRAIN, **train},
                "customizations": {
                    "per_class_f1": {},
                    "layer_lr": {"backbone_ratio": 0.5},
                    "grad_clip": {"max_norm": 5.0},
                    "freeze": {"layers": "backbone", "frozen_epochs": 1},
                },
            }
        )
    )
    return recipe


def epochs_logged(evs: list[dict]) -> list[int]:
    return [e["epoch"] for e in evs if e["event"] == "epoch" and not e["final_eval"]]


def schema_problems(evs: list[dict]) -> dict:
    names = evs[0]["names"]
    return {i: p for i, p in ((i, validate_event(e, names=names)) for i, e in enumerate(evs)) if p}


def test_sigterm_mid_epoch_stops_cleanly_and_resume_logs_every_epoch_once(tmp_path):
    # 96 images at batch 2 -> 48 optimizer steps per epoch. Step events are flushed every 32 steps or 1 s, so the
    # first visible step of epoch 2 arrives well before epoch 2 ends and the signal lands inside it.
    data = make_dataset(tmp_path / "data", n_train=96, n_val=4)
    recipe = write_recipe(tmp_path, data, epochs=3, batch=2, nbs=2)
    run_dir = launcher.start_run(recipe, tmp_path / "runs", name="term")
    pid = wait_for(lambda: read_status(run_dir).get("pid"), 30)
    wait_for(lambda: any(r["epoch"] == 2 for r in step_rows(run_dir)), 240, 0.02)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: read_status(run_dir)["status"] == "stopped", 60)
    evs = events_of(run_dir)
    assert epochs_logged(evs) == [1]  # stopped inside epoch 2: epoch 2 never finished
    assert evs[-1]["event"] == "run_end" and evs[-1]["status"] == "stopped"
    last = run_dir / "weights" / "last.pt"
    import torch

    assert torch.load(last, weights_only=False)["epoch"] == 0  # the last *finished* epoch (0-based)
    probe = f"from ultralytics import YOLO; m = YOLO({str(last)!r}); print(len(m.model.names))"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ})
        .stdout.strip()
        .endswith("3")
    )

    out = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "resume", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    evs = events_of(run_dir)
    assert epochs_logged(evs) == [1, 2, 3]  # every epoch exactly once
    starts = [e for e in evs if e["event"] == "run_start"]
    assert [s["resumed"] for s in starts] == [False, True] and starts[1]["start_epoch"] == 2
    assert [e["status"] for e in evs if e["event"] == "run_end"] == ["stopped", "completed"]
    # steps after the resume continue from the last finished epoch's step count (the interrupted ones are redone):
    # the standing steps are 1..N once each, epoch 1's then the resumed attempt's
    rows = step_rows(run_dir)
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["epoch"] for r in rows] == sorted(r["epoch"] for r in rows) and {r["epoch"] for r in rows} == {1, 2, 3}
    from trainers.telemetry.steps import StepStore

    attempts = StepStore(run_dir / "steps").attempts
    epoch1 = [r["step"] for r in rows if r["epoch"] == 1]
    assert len(attempts) == 2 and attempts[1]["first_step"] == epoch1[-1]
    assert read_status(run_dir)["status"] == "completed" and read_status(run_dir)["resumes"] == 1
    assert schema_problems(evs) == {}


def test_sigkill_is_marked_failed_within_5s_and_resume_completes(tmp_path, tiny_data):
    recipe = write_recipe(tmp_path, tiny_data, epochs=3, batch=2, nbs=2)
    run_dir = launcher.start_run(recipe, tmp_path / "runs", name="kill")
    wait_for(lambda: 1 in epochs_logged(events_of(run_dir)), 240, 0.05)
    pid = read_status(run_dir)["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    status = wait_for(lambda: (s := launcher.refresh_status(run_dir))["status"] == "failed" and s, 5, 0.1)
    assert time.monotonic() - t0 < 5
    assert "without a run-end event" in status["error"]
    launcher.resume_run_detached(run_dir)
    wait_for(lambda: launcher.refresh_status(run_dir)["status"] in {"completed", "failed"}, 300, 0.2)
    assert read_status(run_dir)["status"] == "completed"
    assert epochs_logged(events_of(run_dir)) == [1, 2, 3]


def test_three_real_runs_at_once_complete_with_separate_logs(tmp_path, tiny_data):
    recipe = write_recipe(tmp_path, tiny_data, epochs=2)
    runs = [launcher.start_run(recipe, tmp_path / "runs", name=f"r{i}") for i in range(3)]
    wait_for(lambda: all(launcher.refresh_status(r)["status"] not in {"starting", "running"} for r in runs), 600, 0.5)
    pids = set()
    for run_dir in runs:
        evs = events_of(run_dir)
        assert read_status(run_dir)["status"] == "completed", (run_dir / "console.log").read_text()[-2000:]
        assert schema_problems(evs) == {}
        assert epochs_logged(evs) == [1, 2]
        assert all(e["recipe"]["data"] == str(tiny_data) for e in evs if e["event"] == "run_start")
        pids.add(evs[0]["pid"])
        # every line is whole JSON and belongs to this run: one run_start, one run_end
        raw = (run_dir / "telemetry.jsonl").read_text().splitlines()
        assert len(raw) == len(evs) and sum(e["event"] == "run_start" for e in evs) == 1
        assert (run_dir / "weights" / "best.pt").is_file()
    assert len(pids) == 3


def test_log_every_writes_every_nth_step_and_survives_resume(tmp_path, tiny_data):
    recipe = write_recipe(tmp_path, tiny_data, epochs=2, batch=2, nbs=2)  # 8 optimizer steps per epoch
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(tmp_path / "runs")]
    out = subprocess.run([*cmd, "--name", "sparse", "--log-every", "3"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "sparse"
    steps = [r["step"] for r in step_rows(run_dir)]
    assert steps == [3, 6, 9, 12, 15]  # 16 steps, every third one written
    assert read_status(run_dir)["step_stride"] == 3
    bad = subprocess.run([*cmd, "--log-every", "0"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--log-every: must be an integer >= 1" in bad.stderr
