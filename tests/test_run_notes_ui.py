"""A run's note and tags round-trip between the UI and the CLI: edited on the Runs page (AppTest), listed by
``workbench runs --json`` (a subprocess), changed by ``workbench tag --remove``, and shown changed on the page; edited
on the dashboard; a bad tag in the UI is one line and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_app_pages import open_page
from tests.test_runs_filters import RUNS, make_run, shown
from trainers.run_files import NOTES_FILE
from trainers.runs import notes


@pytest.fixture
def two_runs(runs_root):
    from datetime import datetime

    now = datetime.now().astimezone()
    make_run(runs_root, "alpha", *RUNS["alpha"], created=now)
    make_run(runs_root, "delta", *RUNS["delta"], created=now)
    return runs_root


def workbench(root, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "trainers.cli", *args, "--runs-dir", str(root)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def row_markdown(at, name: str) -> str:
    """The markdown drawn in ``name``'s row, after its bold name and before the next row's."""
    texts, inside = [], False
    for m in at.markdown:
        if m.value.startswith("**") and m.value.endswith("**") or m.value.startswith(f"**{name}**"):
            inside = m.value.startswith(f"**{name}**")
        elif inside:
            texts.append(m.value)
    return " ".join(texts)


def opened(at, key: str):
    """``at`` with the popover ``key`` opened (its form is drawn only while open), as a click on it does."""
    at.session_state[key] = True
    return at.run()


def test_a_closed_popover_draws_no_editor(two_runs):
    at = open_page("runs")
    assert not [w for w in at.text_area if str(w.key).startswith("runs_note_")]
    opened(at, "runs_notes_pop_alpha")
    assert [w.key for w in at.text_area] == ["runs_note_alpha"]
    assert at.text_area(key="runs_note_alpha").value == "First try with LR 0.01"
    assert at.text_input(key="runs_tags_alpha").value == "baseline"


def test_runs_page_note_and_tags_round_trip_through_the_cli(two_runs):
    at = opened(open_page("runs"), "runs_notes_pop_delta")
    at.text_area(key="runs_note_delta").set_value("Swapped to RT-DETR\nsecond line")
    at.text_input(key="runs_tags_delta").set_value("Keep, X  detr")
    at.button(key="runs_notes_save_delta").click().run()
    assert not at.exception and not at.error
    assert at.text_input(key="runs_tags_delta").value == "keep, x, detr"  # as stored: lower-cased

    doc = json.loads(workbench(two_runs, "runs", "--json").stdout)
    row = {r["name"]: r for r in doc["runs"]}["delta"]
    assert (row["note"], row["tags"]) == ("Swapped to RT-DETR\nsecond line", ["keep", "x", "detr"])
    assert "keep" in row_markdown(at, "delta") and "Swapped to RT" in row_markdown(at, "delta")

    workbench(two_runs, "tag", "delta", "X", "--remove")
    at.run()
    assert not at.exception
    assert at.text_input(key="runs_tags_delta").value == "keep, detr"  # the editor follows the file
    line = row_markdown(at, "delta")
    assert "keep" in line and "detr" in line and "[x]" not in line
    at.multiselect(key="runs_f_tag").set_value(["keep"]).run()
    assert shown(at) == ["delta"]
    assert at.multiselect(key="runs_f_tag").options == ["baseline", "detr", "keep"]


def test_a_bad_tag_on_the_runs_page_is_one_line_and_writes_nothing(two_runs):
    before = (two_runs / "alpha" / NOTES_FILE).read_bytes()
    at = opened(open_page("runs"), "runs_notes_pop_alpha")
    at.text_area(key="runs_note_alpha").set_value("changed")
    at.text_input(key="runs_tags_alpha").set_value("fine, " + "t" * 41)
    at.button(key="runs_notes_save_alpha").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"alpha: tag {'t' * 20!r}...: 41 characters, at most 40; shorten it"]
    assert (two_runs / "alpha" / NOTES_FILE).read_bytes() == before


def test_dashboard_edits_the_note_under_its_header(two_runs):
    at = open_page("dashboard", query={"run": "alpha"})
    assert "baseline" in " ".join(m.value for m in at.markdown)
    opened(at, "dash_notes_pop_alpha")
    at.text_area(key="dash_note_alpha").set_value("Promoted to prod")
    at.text_input(key="dash_tags_alpha").set_value("baseline prod")
    at.button(key="dash_notes_save_alpha").click().run()
    assert not at.exception and not at.error
    assert notes.read_notes(two_runs / "alpha") == notes.RunNotes("Promoted to prod", ("baseline", "prod"))
    assert any("Promoted to prod" in m.value and "prod" in m.value for m in at.markdown)
