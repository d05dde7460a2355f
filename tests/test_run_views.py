"""Runs as the UI shows them (app/run_views.py): the telemetry cache, ETA, console tails."""

from __future__ import annotations

import pytest

from app import run_views
from tests.fixtures.make_telemetry import FIXTURES
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.run_reader import RunReader


# ---- event cache ---------------------------------------------------------------------------------------------------
def test_run_events_reads_only_new_complete_lines(tmp_path):
    lines = (FIXTURES / "complete.jsonl").read_bytes().splitlines(keepends=True)
    log_file = tmp_path / "telemetry.jsonl"
    cache = RunReader(tmp_path)
    assert cache.poll().n_events == 0  # no file yet
    log_file.write_bytes(b"".join(lines[:10]) + lines[10][:7])
    first = cache.poll()
    assert first.n_events == 10 and cache.offset == sum(map(len, lines[:10]))
    assert cache.poll() is first  # nothing new: the same snapshot, nothing re-read
    with open(log_file, "ab") as f:
        f.write(lines[10][7:] + b"".join(lines[11:]))
    full = cache.poll()
    assert full.n_events == len(lines) and full.status == "completed"
    assert first.n_events == 10  # snapshots are independent of later reads
    log_file.write_bytes(b"".join(lines[:3]))  # replaced by a shorter file: start over
    assert cache.poll().n_events == 3


def test_run_events_is_shared_per_run(tmp_path):
    assert run_views.run_events(tmp_path) is run_views.run_events(tmp_path / ".")
    run_views.forget_run(tmp_path)
    assert run_views.run_events(tmp_path) is not None


# ---- summaries -----------------------------------------------------------------------------------------------------
def test_eta_from_epoch_times():
    from trainers.telemetry.run_log import RunLog

    log = RunLog.from_events(
        [
            {"event": "run_start", "epochs": 10, "start_epoch": 1},
            {"event": "epoch", "epoch": 1, "epoch_time": 10.0, "t": 1000.0},
            {"event": "epoch", "epoch": 2, "epoch_time": 20.0, "t": 1020.0},
        ]
    )
    assert run_views.eta_seconds(log, 10, now=1020.0) == pytest.approx(8 * 15.0)
    assert run_views.eta_seconds(log, 10, now=1025.0) == pytest.approx(8 * 15.0 - 5)
    assert run_views.eta_seconds(log, None, now=1020.0) == pytest.approx(120.0)  # epochs from run_start
    assert run_views.eta_seconds(log, 2) == 0.0
    assert run_views.eta_seconds(RunLog(), 10) is None
    assert [run_views.format_duration(s) for s in (None, 42, 125, 3725)] == ["-", "42s", "2m 05s", "1h 02m"]
    assert run_views.format_metric({"name": "metrics/mAP50-95(B)", "value": 0.41}) == "mAP50-95 0.410"
    assert run_views.format_metric(None) == "-"


def test_console_tail_collapses_progress_redraws_and_colours(tmp_path):
    text = "a\n" * 100 + "\x1b[Kepoch 1: 10%\repoch 1: 50%\repoch 1: 100%\n\x1b[32mdone\x1b[0m\n"
    (tmp_path / "console.log").write_text(text)
    assert run_views.console_tail(tmp_path, lines=3) == "a\nepoch 1: 100%\ndone"
    assert run_views.console_tail(tmp_path / "missing") == ""
    (tmp_path / "console.log").write_text("x" * 100 + "\nlast\n")
    assert run_views.console_tail(tmp_path, max_bytes=20) == "last"  # the cut first line is dropped


def test_the_header_follows_the_log_when_status_json_is_one_epoch_behind():
    """The trainer logs an epoch just before it writes status.json: the README screenshot caught the header at 2/40
    under charts and a doctor finding that already showed epoch 3."""
    from tests.doctor.synthetic import epoch, run_start

    best3 = {"name": "fitness", "value": 0.7}
    events = [run_start(), epoch(1), epoch(2), {**epoch(3), "best_saved": True, "best_metric": best3}]
    log = RunLog.from_events(events)
    behind = {"status": "running", "epoch": 2, "epochs": 40, "best_epoch": 1, "best_metric": {"name": "fitness"}}
    assert run_views.progress(behind, log) == run_views.Progress(3, 40, 3, best3)
    no_new_best = RunLog.from_events(events[:3] + [{**epoch(3), "best_saved": False}])
    assert run_views.progress(behind, no_new_best) == run_views.Progress(3, 40, 1, {"name": "fitness"})
    # status.json ahead of or level with the log (a resumed attempt keeps every attempt's best): status.json wins
    level = {**behind, "epoch": 3, "best_epoch": 2, "best_metric": {"name": "fitness", "value": 0.6}}
    assert run_views.progress(level, log) == run_views.Progress(3, 40, 2, level["best_metric"])
    ended = {**behind, "status": "stopped"}  # an ended run's status.json is final, whatever the log holds
    assert run_views.progress(ended, log) == run_views.Progress(2, 40, 1, {"name": "fitness"})


def test_the_dashboard_header_shows_the_logs_epoch_and_best(runs_root):
    from tests.doctor.runs import make_run
    from tests.doctor.synthetic import epoch, recipe
    from tests.test_app_pages import open_page
    from trainers.runs.status import write_status

    best3 = {"name": "fitness", "value": 0.7}
    run = make_run(
        runs_root, "behind", recipe(), [epoch(1), epoch(2), {**epoch(3), "best_saved": True, "best_metric": best3}]
    )
    import os

    from trainers.runs.status import process_start_time

    alive = {"status": "running", "pid": os.getpid(), "pid_start": process_start_time(os.getpid())}
    write_status(run, **alive, epoch=2, epochs=40, best_epoch=1, best_metric={"name": "fitness", "value": 0.4})
    at = open_page("dashboard", {"run": "behind"})
    header = {m.label: m.value for m in at.metric}
    assert header["Epoch"] == "3/40" and header["Best fitness"] == "0.700"


def test_counts_fit_the_header():
    """A 2.1M-step run's header read "2,100..." in Chromium (cut off)."""
    assert [run_views.format_count(n) for n in (0, 9_999, 99_999, 100_000, 123_456, 2_100_000)] == [
        "0", "9,999", "99,999", "100k", "123k", "2.10M"
    ]  # fmt: skip


def test_best_metric_from_the_log_when_status_json_has_none():
    from tests.doctor.synthetic import epoch, run_start

    best2 = {"name": "fitness", "value": 0.6}
    log = RunLog.from_events([run_start(), epoch(1), {**epoch(2), "best_saved": True, "best_metric": best2}, epoch(3)])
    ended = {"status": "completed", "epoch": 3, "epochs": 3}
    assert run_views.progress(ended, log) == run_views.Progress(3, 3, 2, best2)
