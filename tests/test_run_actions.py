"""Who did what (issue 20 item 2): ``status.json``'s ``actions`` (trainers/runs/actions.py), appended under the run
folder's lock by the Runs page's Stop, Resume and Run again with the signed-in name (app/who.py)."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

import app.who
from tests.test_app_pages import BUILTIN, make_run, open_page
from trainers.runs import launcher
from trainers.runs.actions import actions_of, last_action_line, record_action
from trainers.runs.status import process_start_time, read_status, write_status
from trainers.statuses import RunStatus


def test_actions_append_in_order_with_who_and_when_and_keep_the_other_fields(tmp_path):
    run = make_run(tmp_path, "r", None, status=RunStatus.FAILED, epoch=2, epochs=5)
    record_action(run, "resume", "Ada")
    record_action(run, "stop", None)
    status = read_status(run)
    assert [(a["action"], a["by"]) for a in status["actions"]] == [("resume", "Ada"), ("stop", None)]
    assert all(a["at"][:2] == "20" and "T" in a["at"] for a in status["actions"])
    assert (status["status"], status["epoch"], status["epochs"]) == (RunStatus.FAILED, 2, 5)
    assert last_action_line(status).startswith(f"{RunStatus.STOPPED} by someone, 20")
    with pytest.raises(ValueError, match="unknown run action 'delete'"):
        record_action(run, "delete", "Ada")


def test_actions_written_beside_the_training_process_status_writes_are_all_kept(tmp_path):
    run = make_run(tmp_path, "r", None, status=RunStatus.RUNNING, epoch=0, epochs=50)

    def train() -> None:  # the training process' own writes, racing the UI's
        for epoch in range(1, 51):
            write_status(run, epoch=epoch)

    trainer = threading.Thread(target=train)
    trainer.start()
    for i in range(50):
        record_action(run, "stop" if i % 2 else "resume", f"u{i}")
    trainer.join()
    status = read_status(run)
    assert [a["by"] for a in status["actions"]] == [f"u{i}" for i in range(50)] and status["epoch"] == 50


def test_a_status_from_before_actions_or_with_garbage_has_none():
    assert actions_of({}) == [] and actions_of({"actions": "x"}) == [] and actions_of({"actions": [1, {"a": 1}]}) == [
        {"a": 1}]  # fmt: skip
    assert last_action_line({}) is None


@pytest.fixture
def page_runs(runs_root, monkeypatch):
    me = os.getpid()  # a "running" run owned by a live process, so refresh_status keeps it running
    make_run(runs_root, "live", "failed", status="running", pid=me, pid_start=process_start_time(me), epoch=2, epochs=5)
    make_run(runs_root, "crashed", "failed", status="failed", epoch=2, epochs=5)
    monkeypatch.setattr(launcher, "stop_run", lambda path: None)
    monkeypatch.setattr(launcher, "resume_run_detached", lambda path: None)
    return runs_root


def test_the_runs_page_records_who_stopped_resumed_and_started_a_run(page_runs, monkeypatch):
    monkeypatch.setattr(app.who, "current_user", lambda: "Ada L.")
    started = make_run(page_runs.parent / "elsewhere", "again-1", None, status="starting")
    monkeypatch.setattr(launcher, "start_again", lambda path: started)
    at = open_page("runs")
    at.button(key="runs_stop_live").click().run()
    at.button(key="runs_resume_crashed").click().run()
    at.button(key="runs_again_crashed").click().run()
    assert not at.exception
    for run, action in ((page_runs / "live", "stop"), (page_runs / "crashed", "resume"), (started, "start")):
        [entry] = read_status(run)["actions"]
        assert (entry["action"], entry["by"]) == (action, "Ada L.")


def test_without_sign_in_the_action_is_recorded_by_nobody_and_a_vanished_run_still_stops(page_runs, monkeypatch):
    at = open_page("runs")
    at.button(key="runs_stop_live").click().run()
    [entry] = read_status(page_runs / "live")["actions"]
    assert entry["by"] is None  # no proxy header: loopback, no sign-in
    monkeypatch.setattr(launcher, "stop_run", lambda path: shutil.rmtree(path))  # gone as it stopped
    at.button(key="runs_stop_live").click().run()
    assert not at.exception and [s.value for s in at.success] == [
        "Stop requested for live: it saves and ends at the next batch."]  # fmt: skip
    assert not at.error


def test_new_run_records_who_started_it_and_the_runs_page_shows_the_last_action(runs_root, monkeypatch):
    monkeypatch.setattr(app.who, "current_user", lambda: "Ada L.")

    def fake_start(recipe_path, root, name=None, **_):
        return make_run(root, name or "started", None, status="starting")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    at = open_page("new_run", **BUILTIN)
    at.button(key="new_run_start").click().run()
    assert not at.exception
    [run] = [p for p in runs_root.iterdir() if not p.name.startswith(".")]
    assert [(a["action"], a["by"]) for a in read_status(run)["actions"]] == [("start", "Ada L.")]
    at = open_page("runs")
    assert any(c.value.startswith("started by Ada L., 20") for c in at.caption)
