"""The Sweeps page (app/app_pages/sweeps.py) with AppTest, and the detached start it uses (start_detached)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, recipe_for
from trainers.runs.folder import create_run_dir
from trainers.runs.status import write_status
from trainers.sweeps import runner as sweep_runner
from trainers.sweeps.sweep_file import SweepError, load_sweep, record

MAIN = REPO / "app" / "main.py"


def open_sweeps() -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    at.switch_page("app_pages/sweeps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def base(tmp_path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(recipe_for(DEMO_DATA, model=str(DEMO_BASE), train={"epochs": 2})))
    return path


def test_page_starts_the_default_grid_detached(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(sweep_runner, "start_detached", lambda doc, root, name, cluster=None: started.append(
        (doc, Path(root), name, cluster)))  # fmt: skip
    at = open_sweeps()
    assert "No sweeps yet." in [i.value for i in at.info]
    at.text_input(key="sw_name").set_value("lr").run()
    at.button(key="sweeps_start").click().run()
    assert not at.exception
    ((doc, root, name, cluster),) = started
    assert name == "lr" and root == runs_root and cluster is None
    assert doc["grid"] == {"customizations.layer_lr.backbone_ratio": [0.05, 0.3], "customizations.grad_clip.max_norm":
                           [5.0, 10.0]}  # fmt: skip
    assert doc["base"].endswith("assets/recipes/demo-quick.yaml") and doc["parallel"] == 1 and "early_stop" not in doc
    assert any("Started sweep lr" in s.value for s in at.success)


def test_page_shows_a_sweep_problem_in_one_line_and_starts_nothing(runs_root, monkeypatch):
    popen = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: popen.append(a))
    at = open_sweeps()
    at.text_input(key="sw_base").set_value("/no/such/recipe.yaml").run()
    at.button(key="sweeps_start").click().run()
    assert not at.exception and not popen
    (error,) = [e.value for e in at.error]
    assert "base:" in error and "recipe file not found" in error


def test_page_lists_each_sweep_with_its_variants_live(runs_root, base, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": str(base), "grid": {"train.lr0": [0.01, 0.02, 0.03]}}))
    sweep = load_sweep(path, root=runs_root, name="lr")
    record(sweep, runs_root, None, 2)
    for n, state in ((1, "completed"), (2, "stopped")):
        run = create_run_dir(runs_root, f"lr-{n}")
        write_status(run, status=state, epoch=1, epochs=2, sweep="lr", sweep_values={"train.lr0": 0.01 * n},
                     early_stop="fitness 0.1 at epoch 1: outside the best 1 of 2" if n == 2 else None)  # fmt: skip
    at = open_sweeps()
    assert "Sweep lr" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)  # not the grid editor
    assert list(table["run"]) == ["lr-1", "lr-2", "lr-3"]
    assert list(table["status"]) == ["completed", "stopped (early)", "waiting"]
    assert list(table["lr0"]) == ["0.01", "0.02", "0.03"]


def test_start_detached_checks_first_then_runs_workbench_sweep(runs_root, base, monkeypatch):
    calls = []

    class Recorder:
        def __init__(self, cmd, **kwargs):
            calls.append((cmd, kwargs))

        def poll(self):
            return None

    with pytest.raises(SweepError, match="grid.train.lr00: unknown key"):
        sweep_runner.start_detached({"base": str(base), "grid": {"train.lr00": [1]}}, runs_root, "bad")
    assert not (runs_root / ".ui-sweeps" / "bad.yaml").exists()
    monkeypatch.setattr(subprocess, "Popen", Recorder)
    path = sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.01]}}, runs_root, "ok")
    ((cmd, kwargs),) = calls
    assert cmd[1:] == ["-m", "trainers.cli", "sweep", str(path), "--runs-dir", str(runs_root), "--name", "ok"]
    assert kwargs["start_new_session"] is True and "WORKBENCH_CLUSTER" not in kwargs["env"]
