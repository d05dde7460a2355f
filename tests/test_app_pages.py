"""Every page of the Streamlit app through ``streamlit.testing.v1.AppTest`` (widgets addressed by key).

The app is opened through its entry script (``app/main.py``, ``st.navigation``) and switched to each page, as a user
would. The launcher is monkeypatched where a test would otherwise start or signal a training process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.errors import AppTestError

from app import recipe_form, run_views, settings_form
from tests.conftest import fake_last_pt
from tests.fixtures.make_telemetry import FIXTURES
from trainers.customizations.class_weights import ClassWeights
from trainers.customizations.grad_clip import GradClip
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.label_counts import count_labels
from trainers.errors import RunError
from trainers.recipe import Recipe
from trainers.runs import launcher
from trainers.runs.folder import create_run_dir
from trainers.runs.status import process_start_time, read_status, write_status

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "app" / "main.py"
PAGES = ("new_run", "runs", "dashboard", "compare", "class_weights", "datasets")
BUILTIN = {"nr_model_source": "builtin"}  # no dependency on the demo checkpoint where the model is not under test


def open_page(page: str, query: dict | None = None, **state) -> AppTest:
    """Run the app, preset session state, and switch to ``page`` (a name from PAGES)."""
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page != "new_run":
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [as_line(e.value) for e in at.error]


def errors_next_to(at: AppTest, key: str) -> list[str]:
    """The errors in the innermost container (column, bordered box) that holds the widget ``key``."""

    def find(block):
        for child in block.children.values():
            if getattr(child, "key", None) == key:
                return block
            if hasattr(child, "children"):
                found = find(child)
                if found is not None:
                    return found
        return None

    block = find(at.main)
    assert block is not None, f"no widget with key {key}"
    return [as_line(e.value) for e in block.error]


def as_line(shown: str) -> str:
    """An inline error as the one line the CLI prints (the UI puts the fix on a line of its own)."""
    return shown.replace("  \n**Fix:** ", "; ")


def make_run(root: Path, name: str, fixture: str | None, **status) -> Path:
    run_dir = create_run_dir(root, name)
    if fixture:
        shutil.copy(FIXTURES / f"{fixture}.jsonl", run_dir / "telemetry.jsonl")
    if status.get("epoch"):
        fake_last_pt(run_dir)  # a run that finished an epoch has a checkpoint to resume from
    write_status(run_dir, **status)
    return run_dir


def charts_by_key(at: AppTest) -> dict[str, dict]:
    """Plotly charts on the page: element key -> figure spec (``data`` and ``layout``)."""
    out = {}
    for el in at.get("plotly_chart"):
        key = el.proto.id.rsplit("-", 1)[-1] if el.proto.id else str(len(out))
        out[key] = json.loads(el.proto.spec)
    return out


def trace_names(spec: dict) -> list[str]:
    return [t.get("name") for t in spec["data"]]


# ---- every page renders --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_no_runs(page, runs_root):
    at = open_page(page, **BUILTIN)
    assert not at.exception
    assert at.title, "page has a title"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_runs(page, runs_root):
    make_run(runs_root, "done", "complete", status="completed", epoch=6, epochs=6)
    make_run(runs_root, "crashed", "failed", status="failed", epoch=2, epochs=5, error="RuntimeError: CUDA oom")
    at = open_page(page, **BUILTIN)
    assert not at.exception


def test_ui_process_never_imports_torch_or_ultralytics(tmp_path):
    """Render every page (with runs, so the dashboard draws charts) in a fresh interpreter and check its modules."""
    root = tmp_path / "runs"
    script = textwrap.dedent(
        f"""
        import os, shutil, sys
        sys.path.insert(0, {str(REPO)!r})
        os.environ["WORKBENCH_RUNS_DIR"] = {str(root)!r}
        from trainers.runs.folder import create_run_dir
        from trainers.runs.status import write_status
        d = create_run_dir({str(root)!r}, "done")
        shutil.copy({str(FIXTURES / "complete.jsonl")!r}, d / "telemetry.jsonl")
        write_status(d, status="completed", epoch=6, epochs=6)
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(MAIN)!r}, default_timeout=60).run()
        for page in {list(PAGES)!r}:
            at.switch_page(f"app_pages/{{page}}.py").run()
            assert not at.exception, (page, [e.value for e in at.exception])
        assert len(at.switch_page("app_pages/dashboard.py").run().get("plotly_chart")) == 6
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics", "torchvision"))
        print("HEAVY:" + ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    heavy = next(line for line in out.stdout.splitlines() if line.startswith("HEAVY:"))
    assert heavy == "HEAVY:", heavy


# ---- New run -------------------------------------------------------------------------------------------------------
def test_new_run_defaults_are_the_demo_and_valid(runs_root):
    at = open_page("new_run")
    assert at.radio(key="nr_model_source").value == "demo"
    assert at.radio(key="nr_data_source").value == "demo"
    assert errors(at) == []
    assert not at.button(key="new_run_start").disabled
    recipe = Recipe.from_yaml(at.code[0].value)  # the live preview is a valid recipe
    assert recipe.model == str(recipe_form.DEMO_MODEL) and recipe.data == str(recipe_form.DEMO_DATA)
    assert "circle, square, triangle, cross" in at.success[0].value  # the dataset was checked inline


def test_backbone_ratio_zero_is_an_inline_error_and_start_is_refused(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(launcher, "start_run", lambda *a, **k: started.append(a))
    at = open_page("new_run", **BUILTIN)
    at.toggle(key="nr_layer_lr_on").set_value(True).run()
    at.number_input(key="nr_layer_lr__backbone_ratio").set_value(0.0).run()
    near = errors_next_to(at, "nr_layer_lr__backbone_ratio")
    assert len(near) == 1 and near[0].startswith("customizations.layer_lr.backbone_ratio: ")
    assert "greater than 0" in near[0]
    assert at.button(key="new_run_start").disabled
    with pytest.raises(AppTestError, match="disabled"):  # a browser user cannot press it either
        at.button(key="new_run_start").click()
    assert started == []
    at.number_input(key="nr_layer_lr__backbone_ratio").set_value(0.5).run()
    assert errors(at) == [] and not at.button(key="new_run_start").disabled


def test_missing_data_yaml_is_an_inline_error(runs_root, tmp_path):
    at = open_page("new_run", **BUILTIN)
    at.radio(key="nr_data_source").set_value("path").run()
    missing = tmp_path / "nowhere" / "data.yaml"
    at.text_input(key="nr_data_path").set_value(str(missing)).run()
    near = errors_next_to(at, "nr_data_path")
    assert len(near) == 1 and near[0].startswith("data: ") and "file not found" in near[0] and str(missing) in near[0]
    assert at.button(key="new_run_start").disabled


def test_dataset_error_from_the_label_checker_is_shown(runs_root, tmp_path):
    ds = tmp_path / "ds"
    (ds / "images" / "train").mkdir(parents=True)
    (ds / "labels" / "train").mkdir(parents=True)
    shutil.copy(next((REPO / "assets/demo/images/train").iterdir()), ds / "images/train/a.jpg")
    (ds / "labels/train/a.txt").write_text("7 0.5 0.5 0.1 0.1\n")  # class 7 of 2
    (ds / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [a, b]\n")
    at = open_page("new_run", **BUILTIN, nr_data_source="path", nr_data_path=str(ds / "data.yaml"))
    near = errors_next_to(at, "nr_data_path")
    assert len(near) == 1 and "class id 7 is out of range for nc=2" in near[0]


def test_class_weights_of_the_wrong_length_are_an_inline_error(runs_root):
    at = open_page("new_run", **BUILTIN, nr_class_weights_on=True)
    at.text_input(key="nr_class_weights__weights").set_value("1.0, 2.0").run()
    near = errors_next_to(at, "nr_class_weights__weights")
    assert near == [
        "customizations.class_weights.weights has 2 values but the dataset has 4 classes "
        "(circle, square, triangle, cross); give one weight per class"
    ]
    assert at.button(key="new_run_start").disabled
    at.text_input(key="nr_class_weights__weights").set_value("1, x, 2, 3").run()
    assert errors_next_to(at, "nr_class_weights__weights") == [
        "customizations.class_weights.weights: 'x' is not a number"
    ]
    at.text_input(key="nr_class_weights__weights").set_value("1, 2, -3, 4").run()
    (msg,) = errors_next_to(at, "nr_class_weights__weights")
    assert msg.startswith("customizations.class_weights.weights") and "-3" in msg
    at.text_input(key="nr_class_weights__weights").set_value("1, 2.5, 3, 4").run()
    assert errors(at) == []


def test_local_pt_needs_an_explicit_trust_confirmation(runs_root, tmp_path):
    ckpt = tmp_path / "mine.pt"
    shutil.copy(REPO / "assets" / "demo_base.pt", ckpt)
    at = open_page("new_run")
    at.radio(key="nr_model_source").set_value("local").run()
    assert any("pickles" in w.value for w in at.warning)
    at.text_input(key="nr_model_path").set_value(str(tmp_path / "other.pt")).run()
    assert any("other.pt: file not found" in e for e in errors(at))
    at.text_input(key="nr_model_path").set_value(str(ckpt)).run()
    near = errors_next_to(at, "nr_trust_pt")
    assert len(near) == 1 and "tick 'I trust this file'" in near[0]
    assert at.button(key="new_run_start").disabled
    at.checkbox(key="nr_trust_pt").check().run()
    assert errors(at) == [] and not at.button(key="new_run_start").disabled
    assert yaml.safe_load(at.code[0].value)["model"] == str(ckpt)


def test_a_pt_that_is_not_an_ultralytics_checkpoint_is_refused_on_the_form(runs_root, tmp_path):
    """Found by hand: such a file was accepted after the trust tick and failed only after Start."""
    import torch

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint at all\n")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)  # a real torch.save archive, but no ultralytics model in it
    at = open_page("new_run")
    at.radio(key="nr_model_source").set_value("local").run()
    at.text_input(key="nr_model_path").set_value(str(text)).run()  # refused before any trust: never unpickled
    assert any("notes.pt is not a PyTorch checkpoint" in e for e in errors_next_to(at, "nr_model_path"))
    at.text_input(key="nr_model_path").set_value(str(plain)).run()
    at.checkbox(key="nr_trust_pt").check().run()
    (msg,) = errors_next_to(at, "nr_model_path")
    assert "plain.pt is not an ultralytics checkpoint" in msg
    assert at.button(key="new_run_start").disabled


def test_recipe_cross_checks_and_training_arguments_show_inline(runs_root):
    at = open_page("new_run", **BUILTIN, nr_freeze_on=True)
    at.number_input(key="nr_epochs").set_value(3).run()
    at.number_input(key="nr_freeze__frozen_epochs").set_value(5).run()
    (msg,) = errors_next_to(at, "nr_freeze__frozen_epochs")
    assert msg.startswith("customizations.freeze.frozen_epochs (5) must be less than train.epochs (3)")
    at.checkbox(key="nr_freeze__frozen_epochs__none").check().run()
    assert errors(at) == []
    at.text_area(key="nr_extra_train").set_value("cos_lr: true\nfoo: 1").run()
    assert errors_next_to(at, "nr_extra_train") == [
        next(e for e in errors(at) if e.startswith("train.foo is not an ultralytics training argument"))
    ]
    at.text_area(key="nr_extra_train").set_value("epochs: 4").run()
    assert errors_next_to(at, "nr_extra_train") == [
        "train.epochs: set it in its own field above, not in other arguments"
    ]
    at.text_area(key="nr_extra_train").set_value("cos_lr: true").run()
    assert errors(at) == []
    assert yaml.safe_load(at.code[0].value)["train"]["cos_lr"] is True


def test_run_name_is_checked(runs_root):
    make_run(runs_root, "taken", None, status="completed")
    at = open_page("new_run", **BUILTIN)
    at.text_input(key="nr_name").set_value("a b").run()
    assert "run name 'a b' is not allowed" in errors_next_to(at, "nr_name")[0]
    at.text_input(key="nr_name").set_value("taken").run()
    assert "already in use" in errors_next_to(at, "nr_name")[0]


def test_start_with_a_patched_launcher_writes_the_expected_recipe(runs_root, monkeypatch):
    captured = {}

    def fake_start(recipe_path, root, name=None):
        captured.update(text=Path(recipe_path).read_text(), root=Path(root), name=name)
        return create_run_dir(root, name)

    monkeypatch.setattr(launcher, "start_run", fake_start)
    at = open_page("new_run", **BUILTIN)
    at.selectbox(key="nr_builtin").set_value("yolo11n.yaml").run()
    at.number_input(key="nr_epochs").set_value(4).run()
    at.selectbox(key="nr_optimizer").set_value("AdamW").run()
    at.number_input(key="nr_lr0").set_value(0.002).run()
    at.toggle(key="nr_class_weights_on").set_value(True).run()
    at.selectbox(key="nr_class_weights__scheme").set_value("effective_number").run()
    at.number_input(key="nr_class_weights__beta").set_value(0.99).run()
    at.toggle(key="nr_best_metric_on").set_value(True).run()
    at.selectbox(key="nr_best_metric__metric").set_value("f1").run()
    at.toggle(key="nr_freeze_on").set_value(True).run()
    at.number_input(key="nr_freeze__frozen_epochs").set_value(2).run()
    at.toggle(key="nr_layer_lr_on").set_value(True).run()
    at.number_input(key="nr_layer_lr__backbone_ratio").set_value(0.25).run()
    at.toggle(key="nr_sync_bn_on").set_value(True).run()
    at.toggle(key="nr_grad_clip_on").set_value(True).run()
    at.number_input(key="nr_grad_clip__max_norm").set_value(5.0).run()
    at.text_area(key="nr_extra_train").set_value("plots: false").run()
    at.text_input(key="nr_name").set_value("my-run").run()
    assert errors(at) == []
    preview = at.code[0].value
    at.button(key="new_run_start").click().run()
    assert not at.exception

    assert captured["root"] == runs_root and captured["name"] == "my-run"
    assert captured["text"].rstrip("\n") == preview.rstrip("\n")  # what you see is what runs
    assert yaml.safe_load(captured["text"]) == {
        "model": "yolo11n.yaml",
        "data": str(recipe_form.DEMO_DATA),
        "train": {
            "epochs": 4, "imgsz": 128, "batch": 16, "optimizer": "AdamW", "lr0": 0.002, "seed": 0, "patience": 100,
            "plots": False,
        },
        "customizations": {
            "per_class_f1": {},
            "class_weights": {
                "weights": None, "scheme": "effective_number", "power": 0.5, "beta": 0.99, "cap": None,
                "normalize": "mean", "zero_count": "one",
            },
            "best_metric": {"metric": "f1", "mode": None},
            "freeze": {"layers": "backbone", "frozen_epochs": 2},
            "layer_lr": {"backbone_ratio": 0.25},
            "sync_bn": {},
            "grad_clip": {"max_norm": 5.0},
        },
    }  # fmt: skip
    # Start opens the dashboard of the new run
    assert at.title[0].value == "Run dashboard"
    assert at.query_params["run"] == ["my-run"] or at.query_params["run"] == "my-run"
    assert at.session_state["selected_run"] == "my-run"


def test_start_with_the_defaults_runs_the_demo(runs_root, monkeypatch):
    captured = {}

    def fake_start(recipe_path, root, name=None):
        captured["recipe"] = yaml.safe_load(Path(recipe_path).read_text())
        return create_run_dir(root, "demo-1")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    at = open_page("new_run")
    at.button(key="new_run_start").click().run()
    assert captured["recipe"]["model"] == str(recipe_form.DEMO_MODEL)
    assert captured["recipe"]["data"] == str(recipe_form.DEMO_DATA)
    # per-class F1 and clipping at grad_clip's own default (the form's ON_BY_DEFAULT): no stock-clipping finding
    assert captured["recipe"]["customizations"] == {"per_class_f1": {}, "grad_clip": {"max_norm": GradClip().max_norm}}


def test_form_values_survive_a_page_switch(runs_root):
    at = open_page("new_run", **BUILTIN)
    at.number_input(key="nr_epochs").set_value(7).run()
    at.toggle(key="nr_grad_clip_on").set_value(True).run()
    at.switch_page("app_pages/runs.py").run()
    at.switch_page("app_pages/new_run.py").run()
    assert at.number_input(key="nr_epochs").value == 7
    assert at.toggle(key="nr_grad_clip_on").value is True


# ---- Runs ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def three_runs(runs_root):
    me = os.getpid()  # a "running" run owned by a live process, so refresh_status keeps it running
    make_run(runs_root, "live", "failed", status="running", pid=me, pid_start=process_start_time(me), epoch=2, epochs=5)
    make_run(runs_root, "crashed", "failed", status="failed", epoch=2, epochs=5, error="RuntimeError: CUDA oom",
             best_metric={"name": "metrics/mAP50-95(B)", "value": 0.25})  # fmt: skip
    make_run(runs_root, "done", "complete", status="completed", epoch=6, epochs=6)
    return runs_root


def test_runs_page_lists_every_run_with_status_progress_and_actions(three_runs):
    at = open_page("runs")
    text = " ".join(m.value for m in at.markdown)
    for name in ("live", "crashed", "done"):
        assert f"**{name}**" in text
    progress = {p.proto.text: p.value for p in at.get("progress")}
    assert progress["epoch 2/5"] == 40 and progress["epoch 6/6"] == 100  # percent
    assert "RuntimeError: CUDA oom" in " ".join(c.value for c in at.caption)
    assert any(m.label == "Best mAP50-95" and m.value == "0.250" for m in at.metric)  # the name in the label
    eta = next(m for m in at.metric if m.label == "ETA" and m.value != "-")  # only the live run has an ETA
    assert eta.value.endswith("s")
    assert at.button(key="runs_stop_live")
    assert not at.button(key="runs_resume_crashed").disabled
    assert at.button(key="runs_resume_done").disabled  # a completed run cannot be resumed
    assert at.button(key="runs_delete_live").disabled  # an active run cannot be deleted


def test_runs_page_stop_and_resume_call_the_launcher(three_runs, monkeypatch):
    calls = []
    monkeypatch.setattr(launcher, "stop_run", lambda path: calls.append(("stop", Path(path).name)))
    monkeypatch.setattr(launcher, "resume_run_detached", lambda path: calls.append(("resume", Path(path).name)))
    at = open_page("runs")
    at.button(key="runs_stop_live").click().run()
    at.button(key="runs_resume_crashed").click().run()
    assert calls == [("stop", "live"), ("resume", "crashed")]
    assert any("Resuming crashed" in s.value for s in at.success)


def test_runs_page_shows_launcher_errors(three_runs, monkeypatch):
    def refuse(path):
        raise RunError(f"run {Path(path).name!r} has no weights/last.pt (it ended before its first epoch)")

    monkeypatch.setattr(launcher, "resume_run_detached", refuse)
    at = open_page("runs")
    at.button(key="runs_resume_crashed").click().run()
    assert not at.exception
    assert "run 'crashed' has no weights/last.pt (it ended before its first epoch)" in errors(at)


def test_runs_page_delete_asks_for_confirmation(three_runs):
    at = open_page("runs")
    at.button(key="runs_delete_done").click().run()
    assert (three_runs / "done").is_dir()
    assert any("Archive run **done**" in w.value for w in at.warning)  # delete = archive (tests/test_run_archive.py)
    at.button(key="runs_cancel_done").click().run()
    assert (three_runs / "done").is_dir() and not at.warning
    at.button(key="runs_delete_done").click().run()
    at.button(key="runs_confirm_done").click().run()
    assert not (three_runs / "done").exists()
    assert "**done**" not in " ".join(m.value for m in at.markdown)


# ---- Run dashboard -------------------------------------------------------------------------------------------------
def test_dashboard_draws_every_chart_of_a_completed_run(runs_root):
    run = make_run(runs_root, "done", "complete", status="completed", epoch=6, epochs=6, best_epoch=5,
                   best_metric={"name": "metrics/mAP50-95(B)", "value": 0.41})  # fmt: skip
    (run / "weights" / "last.pt").unlink()  # only best.pt is left: the downloads list what exists
    (run / "weights" / "best.pt").write_bytes(b"best")
    (run / "results.csv").write_text("epoch,x\n1,2\n")
    (run / "recipe.yaml").write_text("model: yolo26n.yaml\n")
    (run / "console.log").write_text("start\nEpoch 1/6 10%\rEpoch 1/6 100%\ndone\n")
    at = open_page("dashboard", query={"run": "done"})
    assert at.selectbox(key="dash_run").value == "done"
    figs = charts_by_key(at)
    assert set(figs) == {"chart_f1", "chart_f1_heatmap", "chart_metrics", "chart_losses", "chart_lr", "chart_grad_norm"}
    assert trace_names(figs["chart_f1"]) == ["mean F1", "person", "car", "dog", "bicycle"]
    assert trace_names(figs["chart_lr"]) == [
        "head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias",
    ]  # fmt: skip
    assert trace_names(figs["chart_grad_norm"])[:2] == ["total (pre-clip)", "clip threshold"]
    shapes = [s["name"] for s in figs["chart_metrics"]["layout"]["shapes"]]
    assert shapes == ["best epoch 5", "unfreeze (epoch 3)", "frozen"]  # epochs 1-2 trained frozen: shaded
    assert errors(at) == []
    header = {m.label: m.value for m in at.metric}
    assert header["Best mAP50-95"] == "0.410"  # the metric's name in the label: the value is never cut off
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Per-class table (CSV)", "best.pt", "recipe.yaml", "telemetry.jsonl", "results.csv"]  # no last.pt
    assert "Epoch 1/6 100%\ndone" in at.code[0].value  # console tail, progress redraws collapsed
    assert at.button(key="run_resume").disabled  # completed


def test_dashboard_shows_a_failure_banner_with_the_error(runs_root):
    make_run(
        runs_root, "crashed", "failed", status="failed", epoch=2, epochs=5, error="RuntimeError: CUDA out of memory"
    )
    at = open_page("dashboard", query={"run": "crashed"})
    (banner,) = errors(at)
    assert banner.startswith("**Run failed:** RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert any("Traceback (most recent call last)" in c.value for c in at.code)
    assert len(charts_by_key(at)) == 6  # the charts of the epochs that ran are still there
    assert not at.button(key="run_resume").disabled


def test_dashboard_failure_without_telemetry_uses_the_status_error(runs_root):
    make_run(runs_root, "early", None, status="failed", error="data: assets/x.yaml: file not found")
    at = open_page("dashboard", query={"run": "early"})
    assert errors(at) == ["**Run failed:** data: assets/x.yaml: file not found"]
    assert all(len(spec["data"]) == 0 for spec in charts_by_key(at).values())


def test_dashboard_resumed_run_has_no_superseded_steps(runs_root):
    make_run(runs_root, "resumed", "resumed", status="completed", epoch=4, epochs=4)
    at = open_page("dashboard", query={"run": "resumed"})
    total = charts_by_key(at)["chart_grad_norm"]["data"][0]
    assert total["name"] == "total (pre-clip)"
    ys = total["y"] if isinstance(total["y"], list) else None
    if ys is None:  # plotly may encode numpy arrays as typed arrays
        import base64

        import numpy as np

        ys = np.frombuffer(base64.b64decode(total["y"]["bdata"]), dtype=total["y"]["dtype"]).tolist()
    assert len(ys) == 80 and 999.0 not in ys


def test_dashboard_live_run_reads_only_new_events(runs_root, monkeypatch):
    me = os.getpid()
    run = make_run(runs_root, "live", None, status="running", pid=me, pid_start=process_start_time(me), epochs=6)
    lines = (FIXTURES / "complete.jsonl").read_bytes().splitlines(keepends=True)
    n_steps = lambda chunk: sum(b'"event":"step"' in line for line in chunk)  # noqa: E731
    (run / "telemetry.jsonl").write_bytes(b"".join(lines[:40]))
    stops = []
    monkeypatch.setattr(launcher, "stop_run", lambda path: stops.append(Path(path).name))
    at = open_page("dashboard", query={"run": "live"})
    steps = lambda: {m.label: m.value for m in at.metric}["Steps"]  # noqa: E731
    assert steps() == str(n_steps(lines[:40]))
    assert {m.label: m.value for m in at.metric}["ETA"] != "-"  # epoch 1 ended: the ETA is known
    cache = run_views.run_events(run)
    offset = cache.offset
    with open(run / "telemetry.jsonl", "ab") as f:
        f.write(b"".join(lines[40:60]))
        f.write(lines[60][:25])  # a half-written line is left for the next poll
    at.run()
    assert cache.offset == offset + sum(map(len, lines[40:60]))  # only the new complete lines were read
    assert steps() == str(n_steps(lines[:60]))
    assert len(trace_names(charts_by_key(at)["chart_lr"])) == 6
    at.button(key="run_stop").click().run()
    assert stops == ["live"]
    assert any("Stop requested" in s.value for s in at.success)


def test_dashboard_resume_switches_to_the_live_view(runs_root, monkeypatch):
    run = make_run(runs_root, "halted", "resumed", status="stopped", epoch=2, epochs=4)

    def fake_resume(path):  # what the launcher does before spawning: reserve the run as starting
        write_status(path, status="starting", pid=os.getpid(), pid_start=process_start_time(os.getpid()))

    monkeypatch.setattr(launcher, "resume_run_detached", fake_resume)
    at = open_page("dashboard", query={"run": "halted"})
    assert any("Stopped after epoch 2" in i.value for i in at.info)
    at.button(key="run_resume").click().run()
    assert not at.exception
    assert at.button(key="run_stop")  # the page now shows the active run
    assert not any("Stopped after epoch" in i.value for i in at.info)
    assert run.is_dir()


def test_dashboard_reattaches_after_a_ui_restart(runs_root):
    run = make_run(runs_root, "r", "complete", status="completed", epoch=6, epochs=6)
    first = open_page("dashboard", query={"run": "r"})
    run_views._CACHE.clear()  # a restarted UI process has no cache: it reads the log from the start
    again = open_page("dashboard", query={"run": "r"})
    steps = [{m.label: m.value for m in at.metric}["Steps"] for at in (first, again)]
    assert steps == ["150", "150"]
    assert run_views.run_events(run).offset == (run / "telemetry.jsonl").stat().st_size


def test_dashboard_with_no_runs_links_to_new_run(runs_root):
    at = open_page("dashboard")
    assert "No runs yet" in at.info[0].value


# ---- Compare -------------------------------------------------------------------------------------------------------
def test_compare_overlays_selected_runs(runs_root):
    make_run(runs_root, "a", "complete", status="completed")
    make_run(runs_root, "b", "one_epoch", status="completed")
    at = open_page("compare", cmp_runs=["a", "b"])
    figs = charts_by_key(at)
    assert trace_names(figs["chart_compare_metric"]) == ["a", "b"]
    assert trace_names(figs["chart_compare_f1"]) == ["a", "b"]
    at.selectbox(key="cmp_metric").set_value("mean F1").run()
    at.selectbox(key="cmp_class").set_value("bicycle").run()
    figs = charts_by_key(at)
    assert figs["chart_compare_metric"]["layout"]["title"]["text"] == "mean F1 by run"
    assert figs["chart_compare_f1"]["layout"]["title"]["text"] == "F1 of 'bicycle' by run"
    summary = at.dataframe[0].value  # the final metrics (the diff is a table, st.table)
    assert list(summary["run"]) == ["a", "b"] and list(summary["epochs"]) == ["6/6", "1/1"]
    assert not [c for c in summary.columns if c.startswith("F1 ")]  # per class: the heatmap, not one column each
    heat = figs["chart_compare_classes"]["data"][0]
    assert heat["x"] == ["a", "b"] and sorted(heat["y"]) == ["bicycle", "car", "dog", "person"]
    at.multiselect(key="cmp_runs").set_value(["b"]).run()
    assert trace_names(charts_by_key(at)["chart_compare_metric"]) == ["b"]


# ---- Class-weight calculator ---------------------------------------------------------------------------------------
def editor_table(at: AppTest):
    return at.data_editor(key="weights_editor").value


@pytest.mark.parametrize("split", ["train", "val"])
def test_calculator_matches_count_labels_and_compute_weights_on_the_demo(runs_root, split):
    at = open_page("class_weights")
    at.selectbox(key="cw_split").set_value(split).run()
    counts = count_labels(load_dataset(recipe_form.DEMO_DATA), split)
    table = editor_table(at)
    assert list(table["class"]) == counts.names
    assert list(table["instances"]) == counts.instances
    assert list(table["images"]) == counts.images
    assert list(table["weight"]) == pytest.approx(ClassWeights().from_counts(counts.instances))
    at.selectbox(key="cw_scheme").set_value("effective_number").run()
    at.number_input(key="cw_beta").set_value(0.99).run()
    at.checkbox(key="cw_cap__none").uncheck().run()
    at.number_input(key="cw_cap").set_value(2.0).run()
    at.selectbox(key="cw_normalize").set_value("min").run()
    expected = ClassWeights(scheme="effective_number", beta=0.99, cap=2.0, normalize="min").from_counts(
        counts.instances
    )
    assert list(editor_table(at)["weight"]) == pytest.approx(expected)
    counts_fig = charts_by_key(at)["chart_counts"]
    assert trace_names(counts_fig) == ["instances", "images"]
    at.toggle(key="cw_log").set_value(True).run()
    assert charts_by_key(at)["chart_counts"]["layout"]["yaxis"]["type"] == "log"


def test_calculator_flags_zero_count_classes(runs_root, tmp_path):
    ds = tmp_path / "ds"
    (ds / "images/train").mkdir(parents=True)
    (ds / "labels/train").mkdir(parents=True)
    demo_image = next((REPO / "assets/demo/images/train").iterdir())
    for i in range(3):
        shutil.copy(demo_image, ds / f"images/train/{i}.jpg")
        (ds / f"labels/train/{i}.txt").write_text("0 0.5 0.5 0.1 0.1\n" + "1 0.4 0.4 0.1 0.1\n" * i)
    (ds / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [a, b, never]\n")
    at = open_page("class_weights", cw_data_source="path", cw_data_path=str(ds / "data.yaml"))
    assert any("no labels in this split: never" in w.value for w in at.warning)
    table = editor_table(at)
    assert list(table["zero count"]) == [False, False, True]
    assert list(table["weight"]) == pytest.approx(ClassWeights().from_counts([3, 3, 0]))
    at.selectbox(key="cw_zero_count").set_value("error").run()
    assert any(e.startswith("class_weights.zero_count is 'error'") for e in errors(at))


def test_calculator_reports_a_missing_dataset(runs_root, tmp_path):
    at = open_page("class_weights", cw_data_source="path", cw_data_path=str(tmp_path / "none.yaml"))
    assert any("file not found" in e for e in errors(at))


def test_use_in_new_run_prefills_the_scheme(runs_root):
    at = open_page("class_weights")
    at.selectbox(key="cw_scheme").set_value("sqrt_inverse").run()
    at.button(key="weights_use").click().run()
    assert at.title[0].value == "New run"
    assert at.toggle(key="nr_class_weights_on").value is True
    assert at.text_input(key="nr_class_weights__weights").value == ""  # derived from the scheme
    assert at.selectbox(key="nr_class_weights__scheme").value == "sqrt_inverse"
    assert yaml.safe_load(at.code[0].value)["customizations"]["class_weights"]["scheme"] == "sqrt_inverse"


def test_use_in_new_run_passes_hand_edited_weights(runs_root):
    at = open_page("class_weights")
    at.session_state["weights_editor"] = {"edited_rows": {3: {"weight": 7.5}}, "added_rows": [], "deleted_rows": []}
    at.run()
    counts = count_labels(load_dataset(recipe_form.DEMO_DATA), "train")
    expected = ClassWeights().from_counts(counts.instances)[:3] + [7.5]
    assert any("Edited by hand" in c.value for c in at.caption)
    at.button(key="weights_use").click().run()
    assert at.title[0].value == "New run"
    assert settings_form.parse_float_list(at.text_input(key="nr_class_weights__weights").value) == pytest.approx(
        expected, rel=1e-5
    )
    assert not any("class_weights" in e for e in errors(at))


def test_calculator_parameter_change_drops_hand_edits(runs_root):
    at = open_page("class_weights")
    at.session_state["weights_editor"] = {"edited_rows": {0: {"weight": 9.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert any("Edited by hand" in c.value for c in at.caption)
    at.selectbox(key="cw_scheme").set_value("sqrt_inverse").run()
    assert not any("Edited by hand" in c.value for c in at.caption)


# ---- for real: the New run page starts a tiny training, the dashboard follows it -----------------------------------
@pytest.mark.slow
def test_start_from_the_ui_trains_and_the_dashboard_follows(runs_root):
    at = open_page("new_run")
    at.number_input(key="nr_epochs").set_value(2).run()
    at.number_input(key="nr_imgsz").set_value(64).run()
    at.number_input(key="nr_batch").set_value(8).run()
    at.text_area(key="nr_extra_train").set_value("plots: false\nworkers: 0\nnbs: 8\ndevice: cpu").run()
    at.toggle(key="nr_layer_lr_on").set_value(True).run()
    at.toggle(key="nr_grad_clip_on").set_value(True).run()
    at.number_input(key="nr_grad_clip__max_norm").set_value(1.0).run()
    assert errors(at) == []
    at.button(key="new_run_start").click().run()
    assert at.title[0].value == "Run dashboard"
    name = at.session_state["selected_run"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        at.run()
        if read_status(runs_root / name)["status"] not in ("starting", "running"):
            break
        time.sleep(2)
    at.run()
    status = read_status(runs_root / name)
    assert status["status"] == "completed", (status, run_views.console_tail(runs_root / name, 30))
    figs = charts_by_key(at)
    assert trace_names(figs["chart_f1"]) == ["mean F1", "circle", "square", "triangle", "cross"]
    assert len([n for n in trace_names(figs["chart_lr"]) if n.startswith(("head/", "backbone/"))]) >= 2
    assert trace_names(figs["chart_grad_norm"])[:2] == ["total (pre-clip)", "clip threshold"]
    labels = [b.label for b in at.get("download_button")]
    assert labels[:3] == ["Per-class table (CSV)", "best.pt", "last.pt"]


def test_lr0_says_it_is_ignored_while_the_optimizer_is_auto(runs_root):
    """ultralytics' optimizer=auto ignores lr0 (and momentum): a user who set lr0 saw no effect and no sign why."""
    at = open_page("new_run", **BUILTIN)
    ignored = [c.value for c in at.caption if "Ignored with optimizer auto" in c.value]
    assert len(ignored) == 1 and "0.01/(4 + classes)" in ignored[0]
    at.selectbox(key="nr_optimizer").set_value("SGD").run()
    assert not [c for c in at.caption if "Ignored with optimizer auto" in c.value]


def test_a_number_outside_its_range_is_shown_under_the_field_and_start_is_refused(runs_root):
    """Before: epochs -5 was silently ignored (the widget's min kept 10) and Start stayed enabled (issue 11)."""
    at = open_page("new_run", **BUILTIN)
    at.number_input(key="nr_epochs").set_value(-5).run()
    assert not at.exception
    (msg,) = errors_next_to(at, "nr_epochs")
    assert msg.startswith("train.epochs") and "-5" in msg
    assert at.button(key="new_run_start").disabled
    at.number_input(key="nr_epochs").set_value(3).run()
    assert not errors_next_to(at, "nr_epochs") and not at.button(key="new_run_start").disabled


def test_the_system_panel_shows_the_last_epochs_readings(runs_root):
    from tests.doctor.runs import make_run
    from tests.doctor.synthetic import epoch, recipe

    system = {"batches": 10, "data_s": 6.0, "compute_s": 4.0, "data_share": 0.6, "cpu_percent": 180.0,
              "rss_mb": 2500.0, "gpu_mem_mb": 7300.0, "gpu_util": 85.0}  # fmt: skip
    make_run(runs_root, "sys", recipe(), [epoch(1), epoch(2, system=system)])
    at = open_page("dashboard", {"run": "sys"})
    shown = {m.label: m.value for m in at.metric}
    assert shown["Waiting for data"] == "60%" and shown["Data / compute"] == "6.0 s / 4.0 s"
    assert shown["CPU"] == "180%" and shown["RAM"] == "2.50 GB" and shown["GPU memory"] == "7.3 GB, 85%"
