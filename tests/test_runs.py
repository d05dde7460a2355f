"""Run folders: root resolution, names, status.json, listing (trainers/runs/folder.py, trainers/runs/status.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from pathlib import Path

import pytest

import trainers.runs.status as run_status
from trainers.errors import RunError
from trainers.runs.folder import (
    create_run_dir,
    find_run,
    list_runs,
    new_run_name,
    resolve_run,
    runs_root,
    validate_run_name,
)
from trainers.runs.status import StatusWriter, process_start_time, read_status, write_status


# ---- runs root -----------------------------------------------------------------------------------------------------
def test_runs_root_precedence_cli_then_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_RUNS_DIR", raising=False)
    assert runs_root() == tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", "from-env")
    assert runs_root() == tmp_path / "from-env"
    assert runs_root("from-cli") == tmp_path / "from-cli"
    assert runs_root(tmp_path / "a" / ".." / "b").is_absolute()
    assert runs_root(tmp_path / "a" / ".." / "b") == tmp_path / "b"


def test_runs_root_that_is_a_file_is_refused_naming_its_source(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RunError, match="--runs-dir .* is not a directory"):
        runs_root(f)
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(f))
    with pytest.raises(RunError, match="WORKBENCH_RUNS_DIR .* is not a directory"):
        runs_root()


# ---- names ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["demo", "a", "run-1_b.2", "x" * 100, "A.b-C_d", "1run"])
def test_valid_names(name):
    assert validate_run_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "../x", "a/b", "a\\b", "a;rm -rf", "a b", "x" * 101, "-rf", "é", "a\nb", "$(id)", "a*"],
)
def test_invalid_names_are_refused_naming_the_option_and_the_rule(name):
    with pytest.raises(RunError) as e:
        validate_run_name(name)
    msg = str(e.value)
    assert msg.startswith("--name ") and "letters, digits, '-', '_' or '.'" in msg
    assert "\n" not in msg


def test_new_run_name_is_valid_unique_and_sanitized(tmp_path):
    name = new_run_name("names-test")  # a stem no other test uses: this process remembers the names it issued
    assert re.fullmatch(r"names-test-\d{8}-\d{6}", name)
    # Same second, same stem: still different.
    assert len({new_run_name("names-test") for _ in range(5)} | {name}) == 6
    weird = new_run_name("../my recipe;v2")
    assert validate_run_name(weird) and weird.startswith("my-recipe-v2-")
    assert validate_run_name(new_run_name("x" * 300))
    assert new_run_name("...").startswith("run-")
    # Folders already in the root are avoided too.
    base = time.strftime("other-%Y%m%d-%H%M%S")
    (tmp_path / base).mkdir()
    assert new_run_name("other", tmp_path) != base


# ---- create / claim / find -----------------------------------------------------------------------------------------
def test_create_run_dir_writes_a_starting_status_and_never_reuses_a_name(tmp_path):
    root = tmp_path / "runs"
    run_dir = create_run_dir(root, "exp")
    assert run_dir == root / "exp" and run_dir.is_dir()
    status = read_status(run_dir)
    assert status["status"] == "starting" and status["resumes"] == 0 and status["epoch"] == 0
    assert status["created"] == status["updated"]
    (run_dir / "keep.txt").write_text("precious")
    with pytest.raises(RunError, match=r"run name 'exp' is already in use in .*runs; pick another --name"):
        create_run_dir(root, "exp")
    assert (run_dir / "keep.txt").read_text() == "precious"


def _race(root: str, q) -> None:  # module level: picklable for multiprocessing
    try:
        create_run_dir(root, "same")
        q.put("won")
    except RunError:
        q.put("lost")


def test_create_run_dir_is_atomic_across_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), q)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    results = sorted(q.get(timeout=5) for _ in procs)
    assert results == ["lost"] * 7 + ["won"]


def test_create_run_dir_refuses_traversal_names(tmp_path):
    with pytest.raises(RunError, match="--name"):
        create_run_dir(tmp_path / "runs", "../escape")
    assert not (tmp_path / "escape").exists()


def test_find_and_resolve_run(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    run_dir = create_run_dir(root, "exp")
    assert find_run(root, "exp") == run_dir
    with pytest.raises(RunError, match=f"run 'nope' not found in {re.escape(str(root))}"):
        find_run(root, "nope")
    with pytest.raises(RunError, match="run name '../x' is not allowed"):
        find_run(root, "../x")
    assert resolve_run(root, "exp") == run_dir
    assert resolve_run(root, str(run_dir)) == run_dir
    monkeypatch.chdir(root)
    assert resolve_run(tmp_path / "elsewhere", "./exp") == run_dir
    with pytest.raises(RunError, match=r"run '\.\./x' not found: \.\./x is not a run folder"):
        resolve_run(root, "../x")
    (root / "plain").mkdir()
    with pytest.raises(RunError, match="not found in"):
        resolve_run(root, "plain")  # a folder without status.json is not a run


# ---- status.json ---------------------------------------------------------------------------------------------------
def test_write_status_merges_and_updates_timestamp(tmp_path):
    run_dir = create_run_dir(tmp_path, "r")
    before = read_status(run_dir)
    time.sleep(1.1)  # timestamps have one-second resolution
    after = write_status(run_dir, status="running", epochs=10)
    assert after == read_status(run_dir)
    assert after["status"] == "running" and after["epochs"] == 10 and after["created"] == before["created"]
    assert after["updated"] > before["updated"]
    write_status(run_dir, epoch=3)
    assert read_status(run_dir)["status"] == "running"  # merged, not replaced
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]


def test_write_status_records_the_process_start_time_with_a_pid(tmp_path):
    run_dir = create_run_dir(tmp_path, "r")
    status = write_status(run_dir, pid=os.getpid())
    if Path("/proc/self/stat").exists():
        assert status["pid_start"] == process_start_time(os.getpid()) is not None
    assert write_status(run_dir, pid=1, pid_start=42)["pid_start"] == 42


def test_write_status_rejects_unknown_status(tmp_path):
    run_dir = create_run_dir(tmp_path, "r")
    with pytest.raises(ValueError, match="status must be one of"):
        write_status(run_dir, status="done")


def test_read_status_of_a_non_run_and_of_a_corrupt_file(tmp_path):
    with pytest.raises(RunError, match="is not a workbench run"):
        read_status(tmp_path)
    (tmp_path / "status.json").write_text("{torn")
    with pytest.raises(RunError, match="cannot be read"):
        read_status(tmp_path)
    with pytest.raises(RunError, match="cannot be read"):
        write_status(tmp_path, epoch=1)  # never silently replaced
    assert (tmp_path / "status.json").read_text() == "{torn"


def _hammer(run_dir: str, key: str, n: int) -> None:
    for i in range(n):
        write_status(run_dir, **{key: i})


def test_concurrent_writers_never_lose_each_others_fields_or_tear_the_file(tmp_path):
    """The launcher (pid) and the trainer (progress) write at the same time: merges must not undo each other."""
    run_dir = create_run_dir(tmp_path, "r")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(run_dir), f"k{i}", 100)) for i in range(4)]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):
        json.loads((run_dir / "status.json").read_text())  # never torn
        seen += 1
    for p in procs:
        p.join()
    final = read_status(run_dir)
    assert [final[f"k{i}"] for i in range(4)] == [99] * 4
    assert seen > 0


def test_the_status_writer_writes_off_the_callers_thread_in_order_and_merged(tmp_path, monkeypatch):
    """Training hands its per-epoch status to a helper thread: the call returns while the write (its fsync) is still
    blocked, updates given meanwhile are merged with later values winning, and flush waits for all of them."""
    import threading

    run_dir = create_run_dir(tmp_path, "r")
    gate, entered, writes, threads = threading.Event(), threading.Event(), [], set()
    real = run_status.write_status

    def slow_write(run_dir_, **fields):
        threads.add(threading.current_thread().name)
        entered.set()
        assert gate.wait(10)
        writes.append(fields)
        return real(run_dir_, **fields)

    monkeypatch.setattr(run_status, "write_status", slow_write)
    writer = StatusWriter(run_dir)
    t0 = time.perf_counter()
    writer.write(status="running", epoch=1)
    assert entered.wait(10)
    writer.write(epoch=2, best_epoch=2)  # while the first write is blocked
    writer.write(epoch=3)
    assert time.perf_counter() - t0 < 1.0  # none of them waited for the blocked write
    assert read_status(run_dir)["epoch"] == 0  # nothing is on disk yet
    gate.set()
    writer.flush()
    assert threads == {"status-writer"}
    assert writes[0] == {"status": "running", "epoch": 1}
    assert writes[1:] == [{"epoch": 3, "best_epoch": 2}]  # the two later updates went in one write, later wins
    status = read_status(run_dir)
    assert (status["status"], status["epoch"], status["best_epoch"]) == ("running", 3, 2)


def test_the_status_writer_raises_a_failed_write_at_the_next_call_and_writes_on_after(tmp_path, monkeypatch):
    run_dir = create_run_dir(tmp_path, "r")
    real, fail = run_status.write_status, [True]

    def flaky(run_dir_, **fields):
        if fail.pop() if fail else False:
            raise OSError(28, "No space left on device")
        return real(run_dir_, **fields)

    monkeypatch.setattr(run_status, "write_status", flaky)
    writer = StatusWriter(run_dir)
    writer.write(epoch=1)
    with pytest.raises(OSError, match="No space left"):
        writer.flush()
    writer.flush()  # reported once
    writer.write(epoch=2)
    writer.flush()
    assert read_status(run_dir)["epoch"] == 2


# ---- listing -------------------------------------------------------------------------------------------------------
def test_list_runs_reads_status_only_and_is_fast_for_500_runs(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    for i in range(500):
        d = root / f"run-{i:03d}"
        d.mkdir()
        status = {
            "status": "completed",
            "pid": 1000 + i,
            "created": f"2026-11-22T10:{i // 60:02d}:{i % 60:02d}+00:00",
            "updated": "2026-11-22T12:00:00+00:00",
            "epoch": i % 10,
            "epochs": 10,
            "best_metric": {"name": "metrics/mAP50-95(B)", "value": i / 1000},
        }
        (d / "status.json").write_text(json.dumps(status))
        (d / "telemetry.jsonl").write_text("{corrupt\n")  # would warn if anything read it
    (root / "not-a-run").mkdir()
    (root / "stray.txt").write_text("x")

    def no_telemetry(*a, **k):
        raise AssertionError("list_runs must not read telemetry")

    monkeypatch.setattr("trainers.telemetry.events.read_events", no_telemetry)
    t0 = time.perf_counter()
    listed = list_runs(root)
    elapsed = time.perf_counter() - t0
    assert len(listed) == 500
    assert elapsed < 2.0, f"list_runs took {elapsed:.2f}s for 500 runs"
    assert listed[0].name == "run-499" and listed[-1].name == "run-000"  # newest first
    assert listed[0].to_dict() == {
        "name": "run-499",
        "path": str(root / "run-499"),
        "status": "completed",
        "epoch": 9,
        "epochs": 10,
        "best_metric": {"name": "metrics/mAP50-95(B)", "value": 0.499},
        "created": "2026-11-22T10:08:19+00:00",
        "updated": "2026-11-22T12:00:00+00:00",
        "pid": 1499,
    }


def test_list_runs_sorts_by_instant_not_text_and_shows_unreadable_runs(tmp_path):
    root = tmp_path
    for name, created in [("a", "2026-03-29T01:30:00+00:00"), ("b", "2026-03-29T03:00:00+02:00")]:
        (root / name).mkdir()
        (root / name / "status.json").write_text(json.dumps({"status": "completed", "created": created}))
    (root / "c").mkdir()
    (root / "c" / "status.json").write_text("{")
    listed = list_runs(root)
    # b (01:00 UTC) is older than a (01:30 UTC) though its text sorts later.
    assert [r.name for r in listed] == ["a", "b", "c"]
    assert listed[-1].status == "unknown"
    assert list_runs(tmp_path / "missing") == []
