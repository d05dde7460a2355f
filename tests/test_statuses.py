"""Run statuses and finding severities (trainers/statuses.py): the same words on disk, one label and colour each."""

from __future__ import annotations

import json
import pickle

import pytest
import yaml

from trainers.statuses import (
    ACTIVE_STATUSES,
    ENDED,
    SEVERITIES,
    STATUSES,
    SUCCEEDED,
    UNKNOWN_COLOUR,
    RunStatus,
    Severity,
    ended_status,
)


def test_a_status_is_its_word_in_json_text_and_comparisons():
    assert RunStatus.COMPLETED == "completed" and "completed" in ACTIVE_STATUSES + ENDED
    assert json.dumps({"status": RunStatus.FAILED}) == '{"status": "failed"}'
    assert str(RunStatus.RUNNING) == "running" and f"{RunStatus.STOPPED:>8}|" == " stopped|"
    assert RunStatus("starting") is RunStatus.STARTING
    assert pickle.loads(pickle.dumps(RunStatus.QUEUED)) is RunStatus.QUEUED
    assert {"stopped": 1}[RunStatus.STOPPED] == 1  # same hash as the word: dicts read from JSON find it
    assert yaml.safe_dump(str(RunStatus.FAILED)).startswith("failed")


def test_the_status_groups():
    assert set(STATUSES) == set(ACTIVE_STATUSES) | set(ENDED) and not set(ACTIVE_STATUSES) & set(ENDED)
    assert set(SUCCEEDED) == {RunStatus.COMPLETED, RunStatus.STOPPED}
    assert RunStatus.QUEUED not in STATUSES and RunStatus.EMPTY not in STATUSES  # shown, never written
    assert [] not in STATUSES  # a damaged status.json's list is not a status (and no TypeError)
    assert ended_status("stopped") is RunStatus.STOPPED
    assert ended_status("running") is ended_status(None) is ended_status(["x"]) is RunStatus.FAILED


def test_update_status_refuses_a_word_that_is_not_a_status(tmp_path):
    from trainers.runs.status import write_status

    write_status(tmp_path, status=RunStatus.RUNNING)
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "running"
    with pytest.raises(ValueError, match="one of starting, running, completed, stopped, failed, got 'queued'"):
        write_status(tmp_path, status="queued")
    with pytest.raises(ValueError, match="must be one of"):
        write_status(tmp_path, status=RunStatus.EMPTY)


def test_every_status_and_severity_has_a_label_and_one_colour():
    for word in (*RunStatus, *Severity):
        assert word.label and word.colour in {"red", "orange", "green", "blue", "gray", "violet"}
    assert RunStatus.colour_of("failed") == "red" and RunStatus.colour_of("weird") == UNKNOWN_COLOUR
    assert Severity.colour_of(None) == UNKNOWN_COLOUR
    assert Severity.INFO.colour == "blue"  # one colour for info on every page (it was gray on the Runs page)
    assert [s.chart_colour is not None for s in SEVERITIES] == [True, True, False]  # info is never marked


def test_severities_are_most_severe_first_and_the_doctor_still_names_them():
    from trainers.doctor.finding import Severity as FindingSeverity
    from trainers.doctor.finding import count_by_severity, severity_count

    assert FindingSeverity is Severity
    assert SEVERITIES == (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
    assert severity_count(Severity.WARNING, 2) == "2 warnings"
    assert json.dumps(count_by_severity([])) == '{"critical": 0, "warning": 0, "info": 0}'


def test_the_pages_colour_statuses_and_severities_from_the_enums():
    from app import run_findings

    count = run_findings.FindingsCount({"critical": 1, "warning": 0, "info": 2})
    assert count.badges() == ":red-badge[1 critical] :blue-badge[2 info]"


@pytest.mark.parametrize("word", ["weird", None, "running"])
def test_a_run_end_that_is_not_an_end_settles_a_dead_run_as_failed_on_both_backends(tmp_path, word):
    """A damaged or foreign run_end status is adopted as ``failed`` (never written to status.json as it is)."""
    from trainers.run_files import TELEMETRY_FILE
    from trainers.runs.backends import local
    from trainers.runs.backends.ray_cluster.jobs import JobState
    from trainers.runs.backends.ray_cluster.settle import settle
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import read_status, write_status
    from trainers.telemetry.events import TelemetryWriter

    run = create_run_dir(tmp_path, "r")
    write_status(run, status=RunStatus.RUNNING, pid=None)
    with TelemetryWriter(run / TELEMETRY_FILE) as out:
        out.emit("run_start", attempt=1)
        out.emit("run_end", status=word)
    local.settle_dead(run, read_status(run))
    assert read_status(run)["status"] == "failed"
    end = {"status": word}
    settled = settle(JobState("SUCCEEDED", exit_code=0), {"status": "running", "job_id": "j"}, last_run_end=end)
    assert settled is not None and settled.fields["status"] is RunStatus.FAILED
