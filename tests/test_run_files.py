"""What a run folder holds (trainers/run_files.py): the names, and the atomic JSON writer everything shares."""

from __future__ import annotations

import json
import math

import pytest

from trainers import run_files


def test_write_json_atomic_replaces_the_file_whole_and_leaves_nothing_behind_on_error(tmp_path):
    path = tmp_path / run_files.STATUS_FILE
    run_files.write_json_atomic(path, {"status": "running", "name": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"status": "running", "name": "é"}
    with pytest.raises(ValueError):
        run_files.write_json_atomic(path, {"value": math.nan})  # not JSON: the old file stays
    assert json.loads(path.read_text(encoding="utf-8"))["status"] == "running"
    assert [p.name for p in tmp_path.iterdir()] == [run_files.STATUS_FILE]  # no temporary file left


def test_run_folder_names_are_the_ones_the_runs_use(tmp_path):
    from trainers.runs.folder import create_run_dir, list_runs

    run = create_run_dir(tmp_path, "r1")
    assert (run / run_files.STATUS_FILE).is_file()
    (tmp_path / run_files.UI_RECIPES_DIR).mkdir()
    (tmp_path / run_files.SWEEPS_DIR).mkdir()
    assert [s.name for s in list_runs(tmp_path)] == ["r1"]  # the runs root's own folders are not runs
    assert run_files.LAST_CHECKPOINT == f"{run_files.WEIGHTS_DIR}/last.pt"
