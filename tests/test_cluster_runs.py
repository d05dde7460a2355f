"""Runs on a Ray cluster, end to end: the demo trained through ``workbench train --cluster`` on a real Ray head on
loopback (tests/ray_cluster.py, shared by the session; no mocks of Ray), stopped, resumed, killed; and the backend
seam's pieces that need no head (claims, resources, an unreachable cluster).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, recipe_for, wait_for
from tests.ray_cluster import free_ports
from tests.test_cluster import holding_cpus
from trainers.errors import RunError
from trainers.runs import launcher
from trainers.runs.backends import ray as ray_runs
from trainers.runs.backends import ray_cluster as cluster
from trainers.runs.folder import create_run_dir, resume_refusal
from trainers.runs.status import read_status, write_status
from trainers.telemetry.events import read_events

DEMO_RECIPE = REPO / "assets" / "recipes" / "demo-quick.yaml"


def workbench(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_RUNS_DIR", cluster.CLUSTER_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip


def demo_recipe(tmp_path: Path, epochs: int, name: str = "demo") -> Path:
    """The demo fine-tune at imgsz 64: about a second per epoch here."""
    path = tmp_path / f"{name}.yaml"
    train = {"epochs": epochs, "imgsz": 64, "batch": 16, "nbs": 16}
    path.write_text(yaml.safe_dump(recipe_for(DEMO_DATA, model=str(DEMO_BASE), train=train, per_class_f1={})))
    return path


def until(run_dir: Path, what, timeout: float = 120, interval: float = 0.2):
    return wait_for(lambda: (s := launcher.refresh_status(run_dir)) and what(s) and s, timeout, interval, str(what))


# ---- against the real head -----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_workbench_train_demo_on_the_cluster_completes_and_is_listed_like_a_local_run(ray_head, tmp_path):
    runs = tmp_path / "runs"
    t0 = time.monotonic()
    result = workbench("train", str(DEMO_RECIPE), "--cluster", ray_head, "--runs-dir", str(runs), "--name", "demo",
                       "--cpus", "2")  # fmt: skip
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stderr[-3000:]
    assert "run 'demo' completed" in result.stderr
    assert "Ray job workbench-demo-" in result.stdout  # the console, followed as it grew
    run_dir = runs / "demo"
    status = read_status(run_dir)
    assert status["status"] == "completed" and status["epoch"] == status["epochs"] == 3
    assert status["backend"] == "ray" and status["cluster"] == ray_head and status["job_id"].startswith("workbench-")
    assert cluster.job_status(ray_head, status["job_id"]) == "SUCCEEDED"
    assert status["num_gpus"] == 0 and status["num_cpus"] == 2
    assert (run_dir / "weights" / "last.pt").is_file() and (run_dir / "weights" / "best.pt").is_file()
    events = read_events(run_dir / "telemetry.jsonl")[0]
    assert [e["event"] for e in events].count("epoch") >= 3 and events[-1]["event"] == "run_end"
    assert events[-1]["status"] == "completed"
    listed = json.loads(workbench("runs", "--json", "--runs-dir", str(runs)).stdout)["runs"]
    assert [(r["name"], r["status"], r["epoch"]) for r in listed] == [("demo", "completed", 3)]
    print(f"demo-quick through Ray, CLI start to exit: {took:.1f} s")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_workbench_stop_on_a_cluster_run_then_resume_completes(ray_head, tmp_path):
    import torch

    runs = tmp_path / "runs"
    # 10 epochs: the stop, sent through Ray after epoch 1, must land before the last epoch ends even on a loaded
    # machine (with 6, a run under 5x oversubscription finished first: a stop after the last epoch ends it completed)
    recipe = demo_recipe(tmp_path, epochs=10)
    result = workbench("train", str(recipe), "--cluster", ray_head, "--runs-dir", str(runs), "--name", "s", "--detach")
    assert result.returncode == 0, result.stderr
    run_dir = runs / "s"
    until(run_dir, lambda s: s.get("epoch", 0) >= 1 and s["status"] == "running")
    t0 = time.monotonic()
    result = workbench("stop", "s", "--runs-dir", str(runs))
    assert result.returncode == 0 and "sent SIGTERM to run 's' (through Ray, job workbench-s-" in result.stdout, (
        result.stderr
    )
    status = until(run_dir, lambda s: s["status"] != "running", timeout=60)
    took = time.monotonic() - t0
    assert status["status"] == "stopped", status
    assert took < 60
    job = status["job_id"]
    wait_for(lambda: cluster.job_status(ray_head, job) == "STOPPED", 30, 0.2, "Ray to say STOPPED")
    ckpt = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert (ckpt.get("ema") or ckpt.get("model")) is not None and ckpt["epoch"] >= 0
    stopped_at = status["epoch"]

    result = workbench("resume", "s", "--runs-dir", str(runs))  # goes back to the cluster it ran on, followed
    assert result.returncode == 0, result.stderr[-3000:]
    status = read_status(run_dir)
    assert status["status"] == "completed" and status["epoch"] == 10 and status["resumes"] == 1
    assert status["job_id"] != job
    assert cluster.job_status(ray_head, status["job_id"]) == "SUCCEEDED"  # followed until the job itself ended
    starts = [e for e in read_events(run_dir / "telemetry.jsonl")[0] if e["event"] == "run_start"]
    assert [e["resumed"] for e in starts] == [False, True] and starts[1]["start_epoch"] == stopped_at + 1
    print(f"stop -> stopped in {took:.2f} s (stopped after epoch {stopped_at})")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_job_is_failed_within_10s_and_resume_works(ray_head, tmp_path):
    recipe = demo_recipe(tmp_path, epochs=4)
    run_dir = launcher.start_run(recipe, tmp_path / "runs", name="k", cluster=ray_head)
    status = until(run_dir, lambda s: s.get("epoch", 0) >= 1 and s["status"] == "running")
    os.kill(status["pid"], signal.SIGKILL)  # the OOM killer, or a node's process lost; one node: we can reach it
    t0 = time.monotonic()
    wait_for(lambda: cluster.job_status(ray_head, status["job_id"]) == "FAILED", 10, 0.05, "Ray to report FAILED")
    ray_said = time.monotonic() - t0
    status = until(run_dir, lambda s: s["status"] == "failed", timeout=10, interval=0.1)
    took = time.monotonic() - t0
    assert took - ray_said < 10 and took < 10, (ray_said, took)
    assert status["error"] == (
        f"Ray job {status['job_id']} failed (exit code -9): killed by SIGKILL (out of memory, or killed outside the "
        "workbench?)"
    )
    assert status["exit_code"] == -9 and status["ray_status"] == "FAILED"
    end = read_events(run_dir / "telemetry.jsonl")[0][-1]
    assert end["event"] == "run_end" and end["status"] == "failed" and end["source"] == "launcher"

    assert resume_refusal(run_dir, status) is None
    launcher.resume_run_detached(run_dir)  # a new job on the same cluster
    status = until(run_dir, lambda s: s["status"] not in ("starting", "running"), timeout=180, interval=0.5)
    assert status["status"] == "completed" and status["epoch"] == 4, status
    print(f"SIGKILL -> Ray FAILED {ray_said:.2f} s -> run failed {took:.2f} s")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_stop_while_queued_is_stopped_at_once_and_the_late_job_does_not_train(ray_head, tmp_path):
    with holding_cpus(ray_head, tmp_path):  # queued for as long as the test needs, however loaded the machine
        run_dir = launcher.start_run(demo_recipe(tmp_path, 1), tmp_path / "runs", name="q", cluster=ray_head, cpus=2)
        status = until(run_dir, lambda s: s.get("ray_status") == "PENDING", timeout=60)
        assert status["status"] == "starting"
        assert launcher.stop_run(run_dir) == status["job_id"]
        assert read_status(run_dir)["status"] == "stopped"  # settled here: Ray says so only once it gets its turn
    job = status["job_id"]
    wait_for(lambda: cluster.job_status(ray_head, job) in cluster.RAY_TERMINAL, 60, 0.2, "the late job to end")
    assert launcher.refresh_status(run_dir)["status"] == "stopped"
    assert not any(e["event"] == "run_start" for e in read_events(run_dir / "telemetry.jsonl")[0])


# ---- no head needed ------------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["train", "sweep", "ui", "resume"])
def test_unreachable_cluster_exits_2_with_one_line_naming_the_address(command, tmp_path):
    pytest.importorskip("ray.job_submission")
    (port,) = free_ports(1)
    address = f"http://127.0.0.1:{port}"
    runs = tmp_path / "runs"
    if command == "resume":
        run_dir = create_run_dir(runs, "r")
        (run_dir / "recipe.yaml").write_text(demo_recipe(tmp_path, 1).read_text())
        write_status(run_dir, status="stopped")
        from tests.conftest import fake_last_pt

        fake_last_pt(run_dir)
    target = {
        "train": [str(DEMO_RECIPE)], "ui": ["--port", str(free_ports(1)[0])], "resume": ["r"],
        "sweep": [str(_write(tmp_path / "s.yaml", {"base": str(DEMO_RECIPE), "grid": {"train.lr0": [0.01]}}))],
    }[command]  # fmt: skip
    t0 = time.monotonic()
    result = workbench(command, *target, "--cluster", address, "--runs-dir", str(runs), timeout=60)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("workbench: error: cannot reach the Ray job API")
    assert address in result.stderr
    assert time.monotonic() - t0 < 30  # no waiting on the refused port (a few seconds here: starting Python and Ray)
    if command == "resume":
        assert read_status(runs / "r")["status"] == "stopped"  # nothing changed
    else:
        assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_claim_inside_a_job(tmp_path, monkeypatch):
    run_dir = create_run_dir(tmp_path, "r")
    write_status(run_dir, job_id="workbench-r-1")
    monkeypatch.delenv(cluster.JOB_ID_ENV, raising=False)
    assert ray_runs.claim_refusal(run_dir, read_status(run_dir)) is None  # not in a job: nothing to check
    monkeypatch.setenv(cluster.JOB_ID_ENV, "workbench-r-1")
    assert ray_runs.claim_refusal(run_dir, read_status(run_dir)) is None
    assert ray_runs.owns_run_here(read_status(run_dir))
    write_status(run_dir, job_id="workbench-r-2")  # resumed under another job meanwhile
    assert "no longer waiting for Ray job workbench-r-1" in ray_runs.claim_refusal(run_dir, read_status(run_dir))
    write_status(run_dir, job_id="workbench-r-1", status="stopped")  # stopped while it was queued
    assert "status stopped" in ray_runs.claim_refusal(run_dir, read_status(run_dir))
    from trainers.cli import commands as cli

    assert cli.main(["train", "x.yaml", "--runs-dir", str(tmp_path), "--name", "r", "--existing"]) == 2
    assert read_status(run_dir)["status"] == "stopped"  # the stale job did not mark the run failed


def test_a_ray_runs_pid_is_never_checked_here(tmp_path):
    """The trainer's pid is on a node: a running Ray run cannot be resumed, whatever pid it names."""
    run_dir = create_run_dir(tmp_path, "r")
    from tests.conftest import fake_last_pt

    fake_last_pt(run_dir)
    write_status(run_dir, status="running", pid=2**22 + 7, pid_start=1, backend="ray", job_id="j", cluster="x")
    assert "is already running" in resume_refusal(run_dir, read_status(run_dir))
    write_status(run_dir, backend=None)
    assert resume_refusal(run_dir, read_status(run_dir)) is None  # a local run with a dead pid


@pytest.mark.parametrize(("value", "env", "expected"), [(None, None, 1.0), ("2", None, 2.0), (None, "0.5", 0.5)])
def test_cpus_request(value, env, expected, monkeypatch):
    monkeypatch.delenv(ray_runs.CPUS_ENV, raising=False)
    if env:
        monkeypatch.setenv(ray_runs.CPUS_ENV, env)
    assert ray_runs.cpus_request(value) == expected


@pytest.mark.parametrize("bad", ["0", "-1", "many"])
def test_cpus_request_rejects(bad):
    with pytest.raises(RunError, match="--cpus must be a number of CPUs > 0"):
        ray_runs.cpus_request(bad)


def test_job_gpus_from_train_device():
    assert ray_runs.job_gpus(None) == (0, None) and ray_runs.job_gpus("cpu") == (0, None)
    assert ray_runs.job_gpus("2,3") == (2, "0,1") and ray_runs.job_gpus(0) == (1, "0")
    with pytest.raises(RunError, match="train.device 'gpu'"):
        ray_runs.job_gpus("gpu")
