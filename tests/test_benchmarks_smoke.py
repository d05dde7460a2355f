"""The benchmarks in ``benchmarks/`` at tiny sizes: the same code paths, asserting on what they produce, never on time.

The full-size figures are in ``docs/benchmarks.md``; these tests keep the benchmark code working and its checks honest
(the generated log is schema-valid, the spike survives downsampling, every run is listed and drawn, the /proc readers
see what they claim to see).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import sys
import time

import pytest

from tests.conftest import REPO


def load(name: str):
    """Import ``benchmarks/<name>.py`` (the folder is not a package) once, under its own name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---- bench_dashboard -----------------------------------------------------------------------------------------------
def test_generated_log_is_schema_valid_with_one_spike(tmp_path):
    from trainers.telemetry.events import read_events
    from trainers.telemetry.schema import validate_event

    bench = load("bench_dashboard")
    run_dir, writer = bench.make_run(tmp_path / "runs", epochs=4, steps=30, spike_step=77, spike_value=5e5)
    events, _ = read_events(run_dir / "telemetry.jsonl")
    assert [p for ev in events for p in validate_event(ev, bench.NAMES)] == []
    steps = [ev for ev in events if ev["event"] == "step"]
    assert [ev["step"] for ev in steps] == list(range(1, 121))
    assert max(steps, key=lambda ev: ev["grad_norm"])["step"] == 77 and steps[76]["grad_norm"] == 5e5
    assert sorted(steps[0]["lr"]) == sorted(bench.GROUPS) and sorted(steps[0]["grad_norms"]) == sorted(bench.GROUPS)
    epochs = [ev for ev in events if ev["event"] == "epoch"]
    assert [ev["epoch"] for ev in epochs] == [1, 2, 3, 4] and len(epochs[0]["per_class"]) == 4
    assert [ev["event"] for ev in events[:2]] == ["run_start", "freeze"] and any(
        e["event"] == "unfreeze" for e in events
    )
    # appending one epoch continues the step count
    writer.write(writer.next_epoch())
    more, _ = read_events(run_dir / "telemetry.jsonl")
    assert [ev["step"] for ev in more if ev["event"] == "step"][-1] == 150


def test_dashboard_benchmark_downsamples_and_keeps_the_spike(tmp_path):
    from app.charts import MAX_POINTS

    bench = load("bench_dashboard")
    # 9,000 steps: more than MAX_POINTS, so the step charts really are downsampled
    r = bench.run_benchmark(epochs=9, steps=1000, refreshes=2, apptest=True, workdir=tmp_path, spike_value=7.5e5)
    assert r["step_events"] == 9000 and r["steps_after_refreshes"] == 11_000
    assert r["events_per_refresh"] == [1001]  # 1,000 steps and the epoch event
    for chart in ("chart_grad_norm", "chart_lr"):
        points = r["points_per_trace"][chart]
        assert len(points) >= 6 and all(0 < n <= MAX_POINTS for n in points.values()), points
        assert min(points.values()) < 9000  # downsampled, not drawn whole
    assert r["spike"] == {"step": r["spike"]["step"], "value": 7.5e5, "drawn": True, "drawn_after_refresh": True}
    assert set(r["first_render"]) >= {"read_fold_s", "figures_s", "serialize_s", "total_s", "total_cpu_s"}
    assert r["apptest_charts"] == 6
    assert isinstance(r["first_render_goal_met"], bool) and isinstance(r["refresh_goal_met"], bool)


def test_spike_check_reads_serialized_figures():
    import plotly.io

    from app.charts import grad_norm_figure

    bench = load("bench_dashboard")
    events = [bench.run_start_event(1, 0.0)]
    events += bench.step_events(__import__("random").Random(0), 1, 1, 10_000, 10_000, 0.0, (4321, 9e9))
    spec = json.loads(plotly.io.to_json(grad_norm_figure(events)))
    assert bench.spike_in_trace(spec, "total (pre-clip)", 4321, 9e9)
    assert not bench.spike_in_trace(spec, "total (pre-clip)", 4322, 9e9)
    assert not bench.spike_in_trace(spec, "no such trace", 4321, 9e9)


# ---- bench_overhead ------------------------------------------------------------------------------------------------
def test_turns_alternate_and_skip_a_finished_name():
    bench = load("bench_overhead")
    turns = bench.Turns(["a", "b"])
    turns.wait("a")  # a's turn first: returns at once
    turns.hand_over("a")
    assert turns.names[turns.i] == "b"
    turns.finish("b")
    assert turns.names[turns.i] == "a"
    turns.hand_over("a")  # b finished: the turn stays with a
    assert turns.names[turns.i] == "a"


def test_overhead_benchmark_pairs_epochs_and_splits_step_and_epoch_time(tmp_path):
    bench = load("bench_overhead")
    r = bench.run_benchmark(("tiny",), repeats=1, epochs=3, imgsz=32, workdir=tmp_path)
    assert r["epochs_compared"] == 1 and r["steps_per_epoch"] == 3  # epoch 3 only: after the unfreeze
    assert r["median_ratio"] > 0 and r["per_step"]["median_ratio"] > 0 and r["per_epoch"]["median_ratio"] > 0
    assert set(r["per_step"]) >= {"overhead_us_per_step", "cpu_overhead_us_per_step"}
    assert set(r["per_epoch"]) >= {"overhead_ms", "cpu_overhead_ms"}
    run = tmp_path / "ours0-32"  # ours wrote a real run folder
    assert (run / "telemetry.jsonl").is_file() and (run / "status.json").is_file() and (run / "steps").is_dir()


# ---- bench_runs_page -----------------------------------------------------------------------------------------------
def test_runs_page_benchmark_lists_and_draws_every_run(tmp_path):
    bench = load("bench_runs_page")
    env_before = os.environ.get("WORKBENCH_RUNS_DIR")
    r = bench.run_benchmark(20, active=2, repeats=1, apptest=True, cli=False, workdir=tmp_path)
    assert os.environ.get("WORKBENCH_RUNS_DIR") == env_before  # the AppTest render does not leak its runs root
    assert r["listed"] == 20 and r["all_listed"]
    assert r["newest_first"] == ["exp-0000", "exp-0001", "exp-0002"]  # created an hour apart, newest first
    assert r["run_rows_count"] == 20 and r["page_rows"] == 20


# ---- bench_ui: the /proc readers behind the proofs ------------------------------------------------------------------
def test_listening_reads_our_own_socket():
    bench = load("bench_ui")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"127.0.0.1:{port}" in bench.listening(os.getpid())
    assert f"127.0.0.1:{port}" not in bench.listening(os.getpid())


def test_cpu_and_maps_readers():
    bench = load("bench_ui")
    c0 = bench.cpu_seconds(os.getpid())
    t_end = time.process_time() + 0.3
    while time.process_time() < t_end:
        pass
    assert bench.cpu_seconds(os.getpid()) - c0 >= 0.2
    files = bench.mapped_files(os.getpid())
    assert any("libpython" in f or "/python3" in f for f in files)
    assert bench.HEAVY.search("/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so")
    assert bench.HEAVY.search("/venv/lib/python3.11/site-packages/cv2/cv2.abi3.so")
    assert not bench.HEAVY.search("/venv/lib/python3.11/site-packages/numpy/_core/_multiarray_umath.so")


def test_ui_benchmark_uses_the_dashboards_refresh_interval():
    bench = load("bench_ui")
    page = (REPO / "app" / "app_pages" / "dashboard.py").read_text(encoding="utf-8")
    (interval,) = re.findall(r"^REFRESH_S = ([0-9.]+)", page, flags=re.MULTILINE)
    assert float(interval) == bench.DASHBOARD_REFRESH_S


@pytest.mark.slow
def test_ui_benchmark_in_chromium(tmp_path):
    bench = load("bench_ui")
    r = bench.run_benchmark(paint_repeats=1, live=("fake",), window=6.0, tabs=2, workdir=tmp_path)
    assert r["first_paint"][0]["first_paint_s"] > r["first_paint"][0]["server_ready_s"] > 0
    assert r["pages_ok"] and len(r["pages"]) == 5
    assert r["no_torch"] and r["torch_at_end"]["server_has_numpy"]  # the maps check sees libraries, not torch
    assert r["listen_default_loopback_only"]
    assert [a.split(":")[0] for a in r["listen_control_host_127_0_0_2"]] == ["127.0.0.2"]
    (live,) = r["live"]
    # live: the tabs ask for refreshes, the server does work, and the charts move on (how many times depends on
    # how much CPU the browser gets, so only "at least once" is asserted)
    assert live["source"] == "fake" and live["server_cpu_s"] > 0 and sum(live["messages_sent_per_tab"]) > 0
    assert max(live["tab_updates_seen"]) >= 1 and live["steps_logged_in_window"] > 0
