"""Delete = archive (issue 20 item 2): Archive on the Runs page moves the run to ``<runs root>/.archive/<name>``
(trainers/runs/archive.py), names never collide, "Show archived" lists it with who archived it, and Restore brings
it back; every move is recorded in status.json's actions."""

from __future__ import annotations

import os

import pytest

import app.who
from tests.test_app_pages import make_run, open_page
from trainers.errors import RunError
from trainers.run_files import ARCHIVE_DIR
from trainers.runs.archive import archive_run, archived_runs, restore_run
from trainers.runs.folder import list_runs
from trainers.runs.status import process_start_time, read_status
from trainers.statuses import RunStatus


def done_run(root, name: str):
    return make_run(root, name, "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)


def test_archive_moves_the_whole_folder_out_of_the_list_and_restore_brings_it_back(tmp_path):
    run = done_run(tmp_path, "r")
    files = sorted(p.relative_to(run) for p in run.rglob("*"))
    archived = archive_run(run, "Ada")
    assert archived == tmp_path / ARCHIVE_DIR / "r" and not run.exists()
    assert sorted(p.relative_to(archived) for p in archived.rglob("*")) == files  # nothing lost
    assert [r.name for r in list_runs(tmp_path)] == [] and archived_runs(tmp_path) == [archived]
    restored = restore_run(archived, "Bo")
    assert restored == run and [r.name for r in list_runs(tmp_path)] == ["r"] and archived_runs(tmp_path) == []
    assert [(a["action"], a["by"]) for a in read_status(run)["actions"]] == [("archive", "Ada"), ("restore", "Bo")]


def test_archive_names_never_collide_either_way(tmp_path):
    first = archive_run(done_run(tmp_path, "r"))
    second = archive_run(done_run(tmp_path, "r"))  # a new run of the same name, archived too
    third = archive_run(done_run(tmp_path, "r"))
    assert [first.name, second.name, third.name] == ["r", "r-2", "r-3"]
    assert set(archived_runs(tmp_path)) == {first, second, third}
    done_run(tmp_path, "r")  # the name is taken again when the first comes back
    back = restore_run(first)
    assert back.name == "r-2" and (tmp_path / "r").is_dir() and len(list_runs(tmp_path)) == 2


def test_an_active_run_or_a_folder_that_is_no_run_is_not_archived(tmp_path):
    me = os.getpid()
    live = make_run(tmp_path, "live", None, status=RunStatus.RUNNING, pid=me, pid_start=process_start_time(me))
    with pytest.raises(RunError, match="run 'live' is running; stop it before archiving"):
        archive_run(live)
    (tmp_path / "notarun").mkdir()
    with pytest.raises(RunError, match="is not a run folder"):
        archive_run(tmp_path / "notarun")
    with pytest.raises(RunError, match="is not an archived run"):
        restore_run(live)
    assert live.is_dir() and (tmp_path / "notarun").is_dir() and archived_runs(tmp_path) == []


def test_the_runs_page_archives_shows_archived_with_who_and_restores(runs_root, monkeypatch):
    monkeypatch.setattr(app.who, "current_user", lambda: "Ada L.")
    done_run(runs_root, "done")
    at = open_page("runs")
    at.button(key="runs_delete_done").click().run()
    assert at.button(key="runs_delete_done").label == "Archive"
    at.button(key="runs_confirm_done").click().run()
    assert not at.exception and not (runs_root / "done").exists() and (runs_root / ARCHIVE_DIR / "done").is_dir()
    assert "**done**" not in " ".join(m.value for m in at.markdown)
    at.toggle(key="runs_show_archived").set_value(True).run()
    assert "**done**" in " ".join(m.value for m in at.markdown)
    assert any(c.value.startswith("archived by Ada L., 20") for c in at.caption)
    at.button(key="runs_restore_done").click().run()
    assert not at.exception and (runs_root / "done").is_dir() and archived_runs(runs_root) == []
    assert any("Restored done." in s.value for s in at.success)
    actions = [(a["action"], a["by"]) for a in read_status(runs_root / "done")["actions"]]
    assert actions == [("archive", "Ada L."), ("restore", "Ada L.")]
