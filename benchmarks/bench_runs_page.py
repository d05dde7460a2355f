"""Runs page with many runs: time ``list_runs``, the page's row builder, ``workbench runs`` and a full page render.

Creates ``--runs`` run folders (default 500) in a temporary runs root, each with a status.json (completed, stopped
or failed, with epochs, best metric and errors; ``--active`` of them ``running`` with this process as their live
pid) and a small telemetry log (2 epochs x 20 steps, written as the trainer writes it). Then it measures:

- ``trainers.runs.list_runs(root)``: the first call and the median of ``--repeats``. Goal <= 1 s.
- ``app.run_views.run_rows(root)``: what the Runs page (``app/app_pages/runs.py``) calls on every render: the list,
  plus a status re-read per run and a liveness check and ETA (telemetry poll) for active runs.
- ``workbench runs --json``: the CLI in a fresh process (interpreter start and imports included).
- a full ``AppTest`` render of the Runs page through the app's entry script (``st.navigation``): first and second
  render, and the number of run rows drawn (the newest ``app.run_filter_bar.PAGE``, 50; "Show 50 more" draws more);
  goal <= 1 s (issue 20).
- the same page filtered, in the same session: the render after choosing the tag ``baseline`` (every
  :data:`FILTER_EVERY`-th run has it: 12 of 500), then the one after it; goal <= 1 s. Every run also has a recipe.yaml
  (model and dataset cycle), a note and tags, as the filters read them.

Usage::

    python benchmarks/bench_runs_page.py               # 500 runs
    python benchmarks/bench_runs_page.py --runs 2000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, Path(__file__).resolve().parent):  # the repository and this folder (bench_dashboard's log writer)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_dashboard  # noqa: E402

GOAL_LIST_S = 1.0
GOAL_FILTERED_S = 1.0  # issue 20: the Runs page at 500 runs, filtered or not
FILTER_EVERY = 42  # runs 0, 42, ... carry the tag "baseline": 12 of 500
MODELS = ("yolo11n.pt", "yolo26n.yaml", "rtdetr-l.yaml")
DATASETS = ("/data/cones/data.yaml", "coco8.yaml", "/data/parts/data.yaml", "VOC.yaml")
STATUS_CYCLE = ("completed", "completed", "completed", "completed", "stopped", "failed")


def make_runs(root: Path, n: int, active: int = 3) -> list[str]:
    """``n`` run folders with status.json and a small telemetry log; the first ``active`` are running (our pid).

    Returns:
        The run names.
    """
    from trainers.run_files import NOTES_FILE, RECIPE_FILE, write_json_atomic
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import write_status

    # One small log, written once by the benchmark's generator (the trainer's byte format) and copied to every run.
    template_root = root.parent / "template"
    template, feed = bench_dashboard.make_run(template_root, epochs=2, steps=20)
    feed.close()
    data = (template / "telemetry.jsonl").read_bytes()
    start = datetime.now().astimezone().replace(microsecond=0)
    names = []
    for i in range(n):
        name = f"exp-{i:04d}"
        run_dir = create_run_dir(root, name)
        (run_dir / "telemetry.jsonl").write_bytes(data)
        shutil.copytree(template / "steps", run_dir / "steps")
        created = (start - timedelta(hours=i)).isoformat()  # one run an hour, newest first
        if i < active:
            fields: dict[str, Any] = {"status": "running", "pid": os.getpid(), "epoch": 2, "epochs": 12}
        else:
            status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
            fields = {"status": status, "epoch": 2 if status != "completed" else 12, "epochs": 12}
            fields["best_metric"] = {"name": "metrics/mAP50-95(B)", "value": 0.3 + (i % 50) / 200}
            fields["best_epoch"] = 2
            if status == "failed":
                fields["error"] = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
        write_status(run_dir, created=created, **fields)
        model, dataset = MODELS[i % len(MODELS)], DATASETS[i % len(DATASETS)]
        (run_dir / RECIPE_FILE).write_text(f"model: {model}\ndata: {dataset}\ntrain: {{epochs: 12}}\n")
        tags = [f"sweep-{i % 7}", "fp16" if i % 2 else "fp32"] + (["baseline"] if i % FILTER_EVERY == 0 else [])
        write_json_atomic(run_dir / NOTES_FILE, {"v": 1, "note": f"try {i}: lr {0.01 * (1 + i % 5):.2f}", "tags": tags})
        names.append(name)
    return names


@contextlib.contextmanager
def runs_dir_env(root: Path) -> Iterator[None]:
    """``$WORKBENCH_RUNS_DIR`` set to ``root`` (the app reads its runs root there), restored afterwards."""
    old = os.environ.get("WORKBENCH_RUNS_DIR")
    os.environ["WORKBENCH_RUNS_DIR"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_RUNS_DIR", None)
        else:
            os.environ["WORKBENCH_RUNS_DIR"] = old


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def apptest_runs_page(root: Path) -> dict[str, Any]:
    """Render the Runs page through ``app/main.py`` twice; count the rows (one Delete button per run)."""
    from streamlit.testing.v1 import AppTest

    with runs_dir_env(root):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=600)
        at.session_state["nr_model_source"] = "builtin"  # the New run page renders first; keep it light
        at.run()
        first, _ = _timed(lambda: at.switch_page("app_pages/runs.py").run())
        assert not at.exception, [e.value for e in at.exception]
        rows = sum(1 for b in at.button if str(b.key).startswith("runs_delete_"))
        unfiltered_count = next((c.value for c in at.caption if c.value.split(" ")[0].isdigit()), "")
        second, _ = _timed(at.run)
        assert not at.exception, [e.value for e in at.exception]
        # the same session, filtered: the render a click on the tag filter triggers, then the next one
        filtered_first, _ = _timed(lambda: at.multiselect(key="runs_f_tag").set_value(["baseline"]).run())
        assert not at.exception, [e.value for e in at.exception]
        filtered_rows = sum(1 for b in at.button if str(b.key).startswith("runs_delete_"))
        count = next((c.value for c in at.caption if " of " in c.value and c.value.endswith(" runs")), "")
        filtered_second, _ = _timed(at.run)
    return {
        "page_first_s": first,
        "page_second_s": second,
        "page_rows": rows,
        "page_count_line": unfiltered_count,
        "page_goal_met": max(first, second) <= GOAL_FILTERED_S,
        "filtered_first_s": filtered_first,
        "filtered_second_s": filtered_second,
        "filtered_rows": filtered_rows,
        "filtered_count_line": count,
        "filtered_goal_s": GOAL_FILTERED_S,
        "filtered_goal_met": max(filtered_first, filtered_second) <= GOAL_FILTERED_S,
    }


def run_benchmark(
    n: int = 500,
    *,
    active: int = 3,
    repeats: int = 5,
    apptest: bool = True,
    cli: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Create the runs and time every way of listing them (see the module docstring)."""
    from app import run_views
    from trainers.runs.folder import list_runs

    with tempfile.TemporaryDirectory(prefix="bench-runs-", dir=workdir) as tmp:
        root = Path(tmp) / "runs"
        make_s, names = _timed(lambda: make_runs(root, n, active))
        first_s, runs = _timed(lambda: list_runs(root))
        list_s = [_timed(lambda: list_runs(root))[0] for _ in range(repeats)]
        rows_first_s, rows = _timed(lambda: run_views.run_rows(root))
        rows_s = [_timed(lambda: run_views.run_rows(root))[0] for _ in range(repeats)]
        result: dict[str, Any] = {
            "runs": n,
            "active": active,
            "make_s": make_s,
            "listed": len(runs),
            "all_listed": sorted(r.name for r in runs) == sorted(names),
            "newest_first": [r.name for r in runs[:3]],
            "list_first_s": first_s,
            "list_median_s": statistics.median(list_s),
            "list_goal_s": GOAL_LIST_S,
            "list_goal_met": statistics.median(list_s) <= GOAL_LIST_S and first_s <= GOAL_LIST_S,
            "run_rows_first_s": rows_first_s,
            "run_rows_median_s": statistics.median(rows_s),
            "run_rows_count": len(rows),
        }
        if cli:
            cmd = [sys.executable, "-m", "trainers.cli", "runs", "--json", "--runs-dir", str(root)]
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            times = []
            for _ in range(3):
                t, out = _timed(lambda: subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env))
                assert out.returncode == 0, out.stderr[-2000:]
                times.append(t)
            result["cli_median_s"] = statistics.median(times)
            result["cli_runs"] = len(json.loads(out.stdout)["runs"])
        if apptest:
            result.update(apptest_runs_page(root))
        for name in names[:active]:
            run_views.forget_run(root / name)
        return result


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.2f}"


def report(r: dict[str, Any]) -> str:
    lines = [
        f"machine: {r['machine']} (load average before the benchmark)",
        f"{r['runs']} runs ({r['active']} running), created in {r['make_s']:.1f} s",
        f"list_runs: first {r['list_first_s'] * 1000:.0f} ms, median {r['list_median_s'] * 1000:.0f} ms, "
        f"{r['listed']} listed, all: {r['all_listed']} "
        f"(goal <= {r['list_goal_s']:g} s: {'met' if r['list_goal_met'] else 'NOT MET'})",
        f"run_views.run_rows (the Runs page's list): first {r['run_rows_first_s'] * 1000:.0f} ms, "
        f"median {r['run_rows_median_s'] * 1000:.0f} ms, {r['run_rows_count']} rows",
    ]
    if "cli_median_s" in r:
        lines.append(f"workbench runs --json (fresh process): median {r['cli_median_s']:.2f} s, {r['cli_runs']} runs")
    if "page_first_s" in r:
        lines.append(
            f"AppTest render of the Runs page: first {r['page_first_s']:.2f} s, second {r['page_second_s']:.2f} s, "
            f"{r['page_rows']} rows drawn ({r['page_count_line']}) "
            f"(goal <= {r['filtered_goal_s']:g} s: {'met' if r['page_goal_met'] else 'NOT MET'})"
        )
        lines.append(
            f"AppTest render filtered by tag: first {r['filtered_first_s']:.2f} s, "
            f"second {r['filtered_second_s']:.2f} s, "
            f"{r['filtered_rows']} rows drawn ({r['filtered_count_line']}) "
            f"(goal <= {r['filtered_goal_s']:g} s: {'met' if r['filtered_goal_met'] else 'NOT MET'})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=500)
    p.add_argument("--active", type=int, default=3, help="runs with status running (this process as their pid)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-apptest", action="store_true", help="skip the AppTest page render")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = p.parse_args(argv)
    load_before = machine()
    r = run_benchmark(args.runs, active=args.active, repeats=args.repeats, apptest=not args.no_apptest)
    r["machine"] = load_before
    print(json.dumps(r, indent=2) if args.json else report(r))
    from app.run_filter_bar import PAGE

    drawn = min(r["runs"], PAGE)
    ok = r["all_listed"] and r["run_rows_count"] == r["runs"] and r.get("page_rows", drawn) == drawn
    tagged = len(range(0, r["runs"], FILTER_EVERY))
    ok = ok and r.get("filtered_rows", tagged) == tagged
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
