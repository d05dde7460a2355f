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
def test_generated_run_is_schema_valid_with_one_spike(tmp_path):
    from trainers.telemetry.events import read_events
    from trainers.telemetry.schema import validate_event
    from trainers.telemetry.steps import StepStore

    bench = load("bench_dashboard")
    run_dir, feed = bench.make_run(tmp_path / "runs", epochs=4, steps=30, classes=5)
    feed.close()
    events, _ = read_events(run_dir / "telemetry.jsonl")
    assert [p for ev in events for p in validate_event(ev, feed.names)] == []
    assert [ev["event"] for ev in events[:2]] == ["run_start", "freeze"] and any(
        e["event"] == "unfreeze" for e in events
    )
    epochs = [ev for ev in events if ev["event"] == "epoch"]
    assert [ev["epoch"] for ev in epochs] == [1, 2, 3, 4] and len(epochs[0]["per_class"]) == 5
    assert [ev["step"] for ev in epochs] == [30, 60, 90, 120]
    store = StepStore(run_dir / "steps")
    steps = store.to_table(columns=["grad_norm", "lr/head/weight"]).to_pydict()
    store.close()
    assert steps["step"] == list(range(1, 121))
    norms = steps["grad_norm"]
    assert steps["step"][norms.index(max(norms))] == feed.spike and max(norms) == 1e6


def test_dashboard_benchmark_measures_a_tiny_run_and_draws_the_spike():
    bench = load("bench_dashboard")
    r = bench.run_benchmark(epochs=6, steps=2000, classes=4, refreshes=2)  # 12,000 steps: really downsampled
    assert r["spike_drawn"] is True and r["goals_met"]["spike_drawn"] is True
    assert r["first_render_s"] > 0 and r["refresh_ms"] > 0 and r["refresh_ms_max"] >= r["refresh_ms"]
    assert 0 < r["bytes_per_step"] < 200 and set(r["goals_met"]) == {*bench.GOALS, "spike_drawn"}


def test_refresh_profile_times_every_part_of_the_render():
    import subprocess

    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "profile_dashboard_refresh.py"), "--epochs", "3", "--steps", "40",
         "--classes", "4", "--refreshes", "2"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    parts = dict(re.findall(r"^  (.+?) +([0-9.]+) ms$", out, re.M))
    assert {"poll", "doctor", "figure chart_grad_norm", "serialize chart_f1"} <= set(parts), out
    assert len(parts) == 18 and out.startswith("3 x 40 steps, 4 classes: refresh median ")


def test_spike_check_reads_serialized_figures(tmp_path):
    import plotly.io

    from app.charts import grad_norm_figure
    from trainers.telemetry.run_reader import RunReader

    bench = load("bench_dashboard")
    run_dir, feed = bench.make_run(tmp_path / "runs", epochs=2, steps=6000)
    feed.close()
    spec = plotly.io.to_json(grad_norm_figure(RunReader(run_dir).poll()))
    assert bench.spike_in(spec, feed.spike, 1e6)
    assert not bench.spike_in(spec, feed.spike + 1, 1e6)
    assert not bench.spike_in(spec, feed.spike, 2e6)


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


@pytest.mark.slow  # trains the tiny model twice, ours and stock
def test_overhead_benchmark_pairs_epochs_and_splits_step_and_epoch_time(tmp_path):
    bench = load("bench_overhead")
    r = bench.run_benchmark(("tiny",), repeats=1, epochs=3, imgsz=32, workdir=tmp_path)
    assert r["epochs_compared"] == 1 and r["steps_per_epoch"] == 3  # epoch 3 only: after the unfreeze
    assert r["median_ratio"] > 0 and r["per_step"]["median_ratio"] > 0 and r["per_epoch"]["median_ratio"] > 0
    assert set(r["per_step"]) >= {"overhead_us_per_step", "cpu_overhead_us_per_step"}
    assert set(r["per_epoch"]) >= {"overhead_ms", "cpu_overhead_ms"}
    run = tmp_path / "ours0-32"  # ours wrote a real run folder
    assert (run / "telemetry.jsonl").is_file() and (run / "status.json").is_file() and (run / "steps").is_dir()
    assert (run / "evidence" / "epoch-0003").is_dir() and r["evidence_bytes_per_validation"] > 0  # evidence on
    assert (
        0
        < r["evidence_80_classes"]["bytes"]
        == sum(f.stat().st_size for f in (tmp_path / "evidence-worst-case" / "evidence" / "epoch-0001").iterdir())
    )


# ---- bench_runs_page -----------------------------------------------------------------------------------------------
def test_runs_page_benchmark_lists_every_run_and_draws_the_first_page(tmp_path, monkeypatch):
    from app import run_filter_bar

    monkeypatch.setattr(run_filter_bar, "PAGE", 15)  # 20 runs: a page of 15 and 5 more
    bench = load("bench_runs_page")
    env_before = os.environ.get("WORKBENCH_RUNS_DIR")
    r = bench.run_benchmark(20, active=2, repeats=1, apptest=True, cli=False, workdir=tmp_path)
    assert os.environ.get("WORKBENCH_RUNS_DIR") == env_before  # the AppTest render does not leak its runs root
    assert r["listed"] == 20 and r["all_listed"]
    assert r["newest_first"] == ["exp-0000", "exp-0001", "exp-0002"]  # created an hour apart, newest first
    assert r["run_rows_count"] == 20 and r["page_rows"] == 15 and r["page_count_line"] == "20 runs · the first 15 shown"
    assert r["filtered_rows"] == 1 and r["filtered_count_line"] == "1 of 20 runs"  # the tag filter: exp-0000 only


# ---- bench_dataset_page --------------------------------------------------------------------------------------------
def test_dataset_page_benchmark_thumbnails_only_the_page_and_lists_problems_first(tmp_path):
    bench = load("bench_dataset_page")
    env_before = os.environ.get("WORKBENCH_DATASETS_DIR")
    r = bench.run_benchmark(200, repeats=1, apptest=True, workdir=tmp_path)
    assert os.environ.get("WORKBENCH_DATASETS_DIR") == env_before  # the AppTest render does not leak its folder
    cold, warm, clean = r["cold"], r["warm"], r["clean_page_cold"]
    planted = sum(bench.PLANTED.values())
    assert cold["images"] == 200 - bench.PLANTED["orphan"] and cold["flagged"] == planted
    assert cold["tiles"] == warm["tiles"] == 48 and cold["problem_tiles"] == 48  # 60 problems: the first page
    assert cold["cached"] == 0 and warm["cached"] == cold["thumbnailed"] + bench.PLANTED["text"] + bench.PLANTED["cut"]
    assert cold["thumbnailed"] == 48 - bench.PLANTED["orphan"] - bench.PLANTED["text"] - bench.PLANTED["cut"]
    assert clean["thumbnailed"] == 48 and clean["problem_tiles"] == 0 and clean["cached"] == 0
    assert r["page_charts"] == 0  # the grid, not the charts, is what the page opens on


@pytest.mark.browser
def test_dataset_page_benchmark_in_chromium(tmp_path):
    bench = load("bench_dataset_page")
    r = bench.run_benchmark(100, repeats=1, browser=True, workdir=tmp_path)
    assert all(len(r[key.replace("_s", "_all_s")]) == 1 and r[key] > 0 for key in bench.BROWSER_CASES)


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


@pytest.mark.browser  # the fake live source only: nothing trains
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


@pytest.mark.browser
def test_side_by_side_first_paint_from_a_worktree_of_the_code_before(tmp_path):
    """ui_side_by_side.py: a worktree of the ref is checked out and removed, and a first paint is timed from it."""
    from playwright.sync_api import sync_playwright

    from tests.ui_server import CHROMIUM_ARGS, chromium_path

    sbs = load("ui_side_by_side")
    with sbs.worktree("HEAD") as old, sync_playwright() as p:
        assert (old / "app" / "main.py").is_file()
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            paint = sbs.first_paint(browser, tmp_path / "runs", old)
        finally:
            browser.close()
    assert not old.exists()  # the worktree is removed afterwards
    assert 0 < paint["server_ready_s"] < paint["title_visible_s"] <= paint["start_visible_s"]


# ---- bench_class_weights -------------------------------------------------------------------------------------------
def _epoch(n: int, f1: list[float]) -> dict:
    names = ["circle", "square", "triangle", "cross"]
    rows = [{"name": name, "f1": f, "present": True} for name, f in zip(names, f1, strict=True)]
    return {"event": "epoch", "epoch": n, "per_class": rows, "mean_f1": sum(f1) / len(f1)}


def test_class_weight_summary_reads_the_rare_class_from_epoch_events():
    bench = load("bench_class_weights")
    cross = [0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.55, 0.5, 0.7, 0.6]
    s = bench.summarize([_epoch(i + 1, [1.0, 0.9, 0.8, c]) for i, c in enumerate(cross)], "cross", 0.5)
    assert s["rare_f1"] == {"1": 0.0, "3": 0.1, "5": 0.3, "10": 0.6}
    assert (s["rare_best_f1"], s["rare_best_epoch"], s["first_epoch_reaching"]) == (0.7, 9, 7)
    assert (s["final_rare_f1"], s["final_others_f1"], s["final_mean_f1"]) == (0.6, 0.9, 0.825)
    assert s["lag_epochs_1_3"] == [0.675, 0.675, 0.6]
    never = bench.summarize([_epoch(1, [1.0, 1.0, 1.0, 0.0])], "cross", 0.5)
    assert never["first_epoch_reaching"] is None and never["rare_f1"] == {"1": 0.0}
    m = bench.mean_of([s, never])
    assert m["runs_reaching"] == 1 and m["first_epoch_reaching"] == [7, None] and m["rare_f1"]["1"] == 0.0


def test_class_weight_arms_are_the_new_run_pages_recipes():
    bench = load("bench_class_weights")
    plain, weighted = bench.recipe(3, 10, None), bench.recipe(3, 10, {})
    assert plain["train"] == weighted["train"] and plain["train"]["seed"] == 3 and plain["train"]["nbs"] == 16
    assert plain["model"].endswith("assets/demo_base.pt") and plain["data"].endswith("assets/demo/data.yaml")
    from app.recipe_form import ON_BY_DEFAULT  # the arms are the page's defaults, with class weights on or off

    assert set(plain["customizations"]) == set(ON_BY_DEFAULT)
    assert set(weighted["customizations"]) == {*ON_BY_DEFAULT, "class_weights"}
    cw = weighted["customizations"]["class_weights"]
    assert (cw["scheme"], cw["normalize"], cw["cap"]) == ("inverse_frequency", "mean", None)  # the page's defaults
    assert bench.recipe(0, 10, {"scheme": "effective_number"})["customizations"]["class_weights"]["scheme"] == (
        "effective_number"
    )


@pytest.mark.slow
def test_class_weight_benchmark_trains_both_arms(tmp_path, capsys):
    bench = load("bench_class_weights")
    assert bench.main(["--seeds", "0", "--epochs", "2", "--json", "--save", str(tmp_path / "r.json")]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc == json.loads((tmp_path / "r.json").read_text())
    assert doc["rare_class"] == "cross" and doc["train_counts"]["cross"] == 8
    assert set(doc["runs"]) == {"none", "class_weights"}
    for rows in doc["runs"].values():
        (row,) = rows
        assert row["seed"] == 0 and len(row["rare_f1_by_epoch"]) == len(row["mean_f1_by_epoch"]) == 2
        assert all(lag >= 0.2 for lag in row["lag_epochs_1_3"])  # the demo's lag, in both arms
    assert doc["runs"]["class_weights"][0]["class_weights"]["scheme"] == "inverse_frequency"
