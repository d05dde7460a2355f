"""A run's note and tags (trainers/runs/notes.py) and ``workbench note`` / ``workbench tag``: normalised tags, one-line
errors that name the fix, a file of their own that a training process writing status.json at the same time neither
loses nor disturbs, and ``workbench runs --json`` listing them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from trainers.cli.commands import main
from trainers.errors import RunError
from trainers.run_files import NOTES_FILE, STATUS_FILE
from trainers.runs import notes
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status, write_status
from trainers.statuses import RunStatus


@pytest.fixture
def run(runs_root):
    run_dir = create_run_dir(runs_root, "r1")
    write_status(run_dir, status=RunStatus.COMPLETED, epoch=3, epochs=3)
    return run_dir


def workbench(*args: str, root) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "trainers.cli", *args, "--runs-dir", str(root)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


# ---- tags ----------------------------------------------------------------------------------------------------------
def test_tags_are_stripped_lower_cased_and_deduplicated_in_order(run):
    assert notes.add_tags(run, [" Baseline ", "lr-sweep", "BASELINE", "fp16"]).tags == ("baseline", "lr-sweep", "fp16")
    assert notes.add_tags(run, ["fp16", "new"]).tags == ("baseline", "lr-sweep", "fp16", "new")
    assert notes.split_tags("a, B  c,,a") == ("a", "b", "c")


def test_removing_a_tag_removes_that_tag_only_whatever_its_case(run):
    notes.add_tags(run, ["keep", "drop", "other"])
    assert notes.remove_tags(run, ["DROP", "absent"]).tags == ("keep", "other")
    assert notes.read_notes(run).tags == ("keep", "other")


@pytest.mark.parametrize(
    ("tag", "says"),
    [
        ("two words", "join the words with '-' ('two-words')"),
        ("a,b", "join the words with '-' ('a-b')"),
        ("x" * 41, "41 characters, at most 40; shorten it"),
        ("   ", "tag: empty"),
    ],
)
def test_a_bad_tag_is_one_line_naming_the_fix_and_nothing_is_written(run, tag, says):
    notes.add_tags(run, ["kept"])
    before = (run / NOTES_FILE).read_bytes()
    with pytest.raises(RunError) as e:
        notes.add_tags(run, ["fine", tag])
    assert says in str(e.value) and "\n" not in str(e.value)
    assert (run / NOTES_FILE).read_bytes() == before


def test_a_tag_of_exactly_40_characters_is_accepted(run):
    assert notes.add_tags(run, ["y" * 40]).tags == ("y" * 40,)


def test_cli_bad_tag_exits_2_with_one_line(run, runs_root):
    out = workbench("tag", "r1", "my tag", root=runs_root)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "workbench: error: tag 'my tag': a tag cannot hold spaces or commas; join the words with '-' ('my-tag')"
    ]
    assert not (run / NOTES_FILE).exists()


# ---- notes ---------------------------------------------------------------------------------------------------------
def test_cli_note_and_tag_show_in_runs_json_and_empty_text_clears(run, runs_root, capsys):
    assert main(["note", "r1", "  tried lr 0.02  ", "--runs-dir", str(runs_root)]) == 0
    assert main(["tag", "r1", "Baseline", "x", "--runs-dir", str(runs_root)]) == 0
    assert main(["tag", "r1", "x", "--remove", "--runs-dir", str(runs_root)]) == 0
    assert "tags baseline" in capsys.readouterr().out
    row = json.loads(workbench("runs", "--json", root=runs_root).stdout)["runs"][0]
    assert (row["note"], row["tags"]) == ("tried lr 0.02", ["baseline"])
    assert main(["note", "r1", "", "--runs-dir", str(runs_root)]) == 0
    assert notes.read_notes(run) == notes.RunNotes("", ("baseline",))  # the tags stay


def test_a_run_without_notes_lists_empty_ones_and_a_damaged_file_does_not_break_the_listing(run, runs_root):
    row = json.loads(workbench("runs", "--json", root=runs_root).stdout)["runs"][0]
    assert (row["note"], row["tags"]) == ("", [])
    (run / NOTES_FILE).write_text("{not json")
    assert notes.read_notes(run) == notes.RunNotes()
    assert workbench("runs", "--json", root=runs_root).returncode == 0


def test_notes_are_refused_for_a_folder_that_is_not_a_run(runs_root):
    (runs_root / "plain").mkdir(parents=True)
    with pytest.raises(RunError, match="not a workbench run"):
        notes.set_note(runs_root / "plain", "x")
    assert not (runs_root / "plain" / NOTES_FILE).exists()


def test_a_too_long_note_is_refused_in_one_line(run):
    with pytest.raises(RunError, match=r"note: 10,001 characters, at most 10,000; shorten it"):
        notes.set_note(run, "n" * 10_001)


# ---- a file of its own ---------------------------------------------------------------------------------------------
TRAINER = textwrap.dedent(
    """
    import sys
    from trainers.runs.status import write_status
    for epoch in range(1, 151):  # as the trainer does: progress merged into status.json, epoch after epoch
        write_status(sys.argv[1], epoch=epoch, best_metric={"name": "fitness", "value": epoch / 1000})
    """
)


def test_notes_written_while_a_run_trains_neither_lose_nor_disturb_status_json(run):
    write_status(run, status=RunStatus.RUNNING, epochs=150, pid=None)
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(run)], cwd=REPO)
    edits = 0
    try:
        while proc.poll() is None or edits < 60:  # UI and CLI edits for as long as the trainer writes
            notes.add_tags(run, [f"t{edits}"])
            notes.set_note(run, f"note {edits}")
            assert read_status(run)["status"] == RunStatus.RUNNING  # readable and whole at every moment
            edits += 1
    finally:
        assert proc.wait(timeout=120) == 0
    status = read_status(run)
    assert status["epoch"] == 150 and status["best_metric"]["value"] == 0.15 and status["epochs"] == 150
    assert "note" not in status and "tags" not in status  # status.json knows nothing of the notes
    assert notes.read_notes(run) == notes.RunNotes(f"note {edits - 1}", tuple(f"t{i}" for i in range(edits)))
    before = (run / NOTES_FILE).read_bytes()
    write_status(run, status=RunStatus.COMPLETED)
    assert (run / NOTES_FILE).read_bytes() == before  # and status writes leave the notes file alone
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no temp file left behind
    assert (run / STATUS_FILE).is_file()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from trainers.runs.notes import add_tags
    run, who, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():  # both writers start together
        time.sleep(0.001)
    for i in range(150):
        add_tags(run, [f"{who}{i}"])
    """
)


def test_two_writers_at_once_lose_no_tag(run, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(run), who, str(go)], cwd=REPO) for who in "ab"]
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert set(notes.read_notes(run).tags) == {f"{who}{i}" for who in "ab" for i in range(150)}
