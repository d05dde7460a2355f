"""The Sweeps page (app/app_pages/sweeps.py) with AppTest, and the detached start it uses (start_detached)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, recipe_for
from trainers.errors import WorkbenchError
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


def write_doc(root: Path, name: str, doc: dict) -> Path:
    path = Path(root).parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_page_starts_the_default_grid_detached(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(sweep_runner, "start_detached", lambda doc, root, name, cluster=None, cpus=None: started.append(
        (doc, Path(root), name, cluster)) or load_sweep(write_doc(root, name, doc), name=name))  # fmt: skip
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
    path = sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.01]}}, runs_root, "ok").source
    ((cmd, kwargs),) = calls
    assert cmd[1:] == ["-m", "trainers.cli", "sweep", str(path), "--runs-dir", str(runs_root), "--name", "ok"]
    assert kwargs["start_new_session"] is True and "WORKBENCH_CLUSTER" not in kwargs["env"]


# ---- issue 18: listed at once, errors in the page's words, names never reused, cluster defaults ---------------------
class NoDriver:
    """subprocess.Popen stand-in: the sweep process is never started (it would record the sweep later)."""

    calls: list = []

    def __init__(self, cmd, **kwargs):
        NoDriver.calls.append(cmd)

    def poll(self):
        return None


def test_a_sweep_started_on_the_page_is_listed_in_the_same_refresh(runs_root, base, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", NoDriver)
    at = open_sweeps()
    at.text_input(key="sw_base").set_value(str(base)).run()
    at.text_input(key="sw_name").set_value("lr").run()
    at.button(key="sweeps_start").click().run()
    assert not at.exception and not at.error
    assert "Sweep lr" in [h.value for h in at.subheader]  # before its process recorded it
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(table["run"]) == ["lr-1", "lr-2", "lr-3", "lr-4"] and set(table["status"]) == {"waiting"}
    # once the sweep process records it, the record is what is listed (once)
    record(load_sweep(runs_root / ".ui-sweeps" / "lr.yaml", root=runs_root, name="lr"), runs_root, None, 1)
    at.run()
    assert [h.value for h in at.subheader].count("Sweep lr") == 1 and at.session_state["sw_pending"] == {}


def test_sweep_errors_speak_of_the_page_not_of_its_file_or_of_name_options(runs_root, base, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", NoDriver)
    with pytest.raises(SweepError) as e:
        sweep_runner.start_detached({"base": str(base), "grid": {"train.lr00": [1]}}, runs_root, "bad")
    assert str(e.value).startswith("sweep: grid.train.lr00: unknown key") and ".ui-sweeps" not in str(e.value)
    create_run_dir(runs_root, "taken-2")  # a run named like the sweep's second variant
    with pytest.raises(SweepError) as e:
        sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.01, 0.02]}}, runs_root, "taken")
    assert "run 'taken-2' already exists" in str(e.value) and "choose another sweep name" in str(e.value)
    assert "--name" not in str(e.value) and ".ui-sweeps" not in str(e.value)


def test_reusing_a_sweep_name_is_refused_and_never_deletes_the_earlier_sweeps_file(runs_root, base, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", NoDriver)
    first = sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.01]}}, runs_root, "lr").source
    kept = first.read_text()
    for doc in ({"base": str(base), "grid": {"train.lr0": [0.05]}}, {"base": "/no/such.yaml", "grid": {}}):
        with pytest.raises(SweepError, match="sweep name 'lr' is already used in .*; choose another sweep name"):
            sweep_runner.start_detached(doc, runs_root, "lr")
        assert first.read_text() == kept  # neither replaced nor deleted
    record(load_sweep(first, root=runs_root, name="lr"), runs_root, None, 1)
    first.unlink()  # the file gone, the record still there: the name is still used
    with pytest.raises(SweepError, match="already used"):
        sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.05]}}, runs_root, "lr")
    outside = runs_root / "x.yaml"  # where a name of '../x' would put the sweep file
    outside.write_text("mine")
    with pytest.raises(WorkbenchError, match="sweep name '../x-256' is not allowed"):
        sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.05]}}, runs_root, "../x")
    assert outside.read_text() == "mine"


def test_on_a_cluster_variants_at_a_time_and_cpus_default_to_the_clis(runs_root, monkeypatch):
    from trainers.runs.backends.ray import DEFAULT_CPUS

    started = []
    monkeypatch.setattr(
        sweep_runner, "start_detached",
        lambda doc, root, name, cluster=None, cpus=None: started.append((doc, cluster, cpus))
        or load_sweep(write_doc(root, name, doc), name=name),
    )  # fmt: skip
    at = open_sweeps()
    assert at.number_input(key="sw_parallel").value == sweep_runner.default_parallel(False) == 1
    at.radio(key="sw_run_on").set_value("cluster").run()
    assert at.number_input(key="sw_parallel").value == sweep_runner.DEFAULT_PARALLEL_CLUSTER == 4
    assert at.number_input(key="sw_cpus").value == DEFAULT_CPUS
    at.text_input(key="sw_cluster").set_value("http://head:8265").run()
    at.number_input(key="sw_cpus").set_value(6).run()
    at.button(key="sweeps_start").click().run()
    ((doc, cluster, cpus),) = started
    assert doc["parallel"] == 4 and cluster == "http://head:8265" and cpus == 6
    at.radio(key="sw_run_on").set_value("local").run()
    assert at.number_input(key="sw_parallel").value == 1


def test_start_detached_asks_ray_for_the_chosen_cpus(runs_root, base, monkeypatch):
    NoDriver.calls = []
    monkeypatch.setattr(subprocess, "Popen", NoDriver)
    monkeypatch.setattr("trainers.runs.placement.check_reachable", lambda address: None)
    sweep_runner.start_detached({"base": str(base), "grid": {"train.lr0": [0.01]}}, runs_root, "c", "http://h:8265", 6)
    (cmd,) = NoDriver.calls
    assert cmd[-4:] == ["--cluster", "http://h:8265", "--cpus", "6"]


def test_new_run_on_a_cluster_asks_ray_for_the_chosen_cpus(runs_root, monkeypatch):
    from tests.test_app_pages import open_page
    from trainers.runs import launcher

    captured = {}

    def fake_start(recipe_path, root, name=None, **kwargs):
        captured.update(kwargs)
        return create_run_dir(root, "r")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    at = open_page("new_run")
    at.radio(key="nr_run_on").set_value("cluster").run()
    at.text_input(key="nr_cluster").set_value("http://head:8265").run()
    assert at.number_input(key="nr_cpus").value == 1
    at.number_input(key="nr_cpus").set_value(8).run()
    at.button(key="new_run_start").click().run()
    assert not at.exception
    assert captured == {"cluster": "http://head:8265", "cpus": 8}
