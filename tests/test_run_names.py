"""Runs started from the UI are named after what they train, ``<dataset>-<model>-<time>`` (issue 18 item 5): one
was named ``config-20261207-...`` after its data YAML's file name. The CLI keeps the recipe file's stem or --name."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from app import recipe_form
from tests.test_app_pages import open_page
from tests.test_launcher import RecordingPopen
from trainers.runs.backends import local as local_processes
from trainers.runs.folder import list_runs
from trainers.runs.run_names import run_stem


@pytest.mark.parametrize(
    ("data", "model", "stem"),
    [
        ("/d/coco80/data.yaml", "yolo11n.pt", "coco80-yolo11n"),
        ("/d/exports/config.yaml", "/w/yolo26s.pt", "exports-yolo26s"),  # a generic YAML name: its folder
        ("/d/exports/Dataset.yml", "rtdetr-l.yaml", "exports-rtdetr-l"),
        ("coco8.yaml", "yolo26n.yaml", "coco8-yolo26n"),  # an ultralytics dataset name
        ("/d/shapes.yaml", None, "shapes"),  # no model chosen yet
        (None, None, "run"),
    ],
)
def test_run_stem_is_the_dataset_and_the_model(data, model, stem):
    assert run_stem(data, model) == stem


def test_a_run_started_from_new_run_is_named_after_its_dataset_and_model(runs_root, tmp_path, monkeypatch):
    shapes = tmp_path / "shapes"
    shutil.copytree(recipe_form.DEMO_DATA.parent, shapes)
    (shapes / "data.yaml").rename(shapes / "config.yaml")  # the YAML's own name says nothing
    RecordingPopen.calls = []
    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)  # the real launcher names the run; nothing trains
    monkeypatch.setattr(local_processes, "_children", {})
    at = open_page("new_run", nr_data_source="path", nr_data_path=str(shapes / "config.yaml"),
                   nr_model_source="builtin", nr_builtin="yolo26s.yaml")  # fmt: skip
    at.button(key="new_run_start").click().run()
    assert not at.exception
    (run,) = list_runs(runs_root)
    assert re.fullmatch(r"shapes-yolo26s-\d{8}-\d{6}", run.name), run.name
    assert at.session_state["selected_run"] == run.name
    args, _ = RecordingPopen.calls[-1]
    assert args[args.index("--name") + 1] == run.name and args[4].endswith("shapes-yolo26s.yaml")
