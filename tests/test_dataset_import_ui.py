"""Imported datasets in the UI: New run and Class weights list the datasets folder by name, and a zip uploaded on New
run is imported in a ``workbench import`` subprocess (progress shown), then chosen; the UI process never imports
ultralytics or torch on the way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from app import dataset_upload
from tests.export_zips import NAMES, coco_zip, roboflow_zip, yolo_counts
from tests.test_app_pages import MAIN, REPO, errors, open_page
from trainers.datasets.importer import import_dataset


@pytest.fixture
def datasets_dir(tmp_path, monkeypatch) -> Path:
    """An empty datasets folder that the pages use through $WORKBENCH_DATASETS_DIR (as `workbench ui` sets it)."""
    root = tmp_path / "datasets"
    monkeypatch.setenv("WORKBENCH_DATASETS_DIR", str(root))
    return root


def recipe_data(at) -> str:
    return yaml.safe_load(at.code[0].value)["data"]


def test_new_run_lists_the_imported_datasets_and_trains_the_chosen_one(runs_root, datasets_dir, tmp_path):
    import_dataset(roboflow_zip(tmp_path / "rf.zip"), datasets_dir=datasets_dir, name="shapes")
    import_dataset(coco_zip(tmp_path / "c.zip")[0], datasets_dir=datasets_dir, name="coco-shapes")
    at = open_page("new_run", nr_data_source="imported")
    box = at.selectbox(key="nr_data_name")
    assert box.options == ["coco-shapes", "shapes"] and box.value == "coco-shapes"  # the first, chosen for the user
    assert recipe_data(at) == str(datasets_dir / "coco-shapes" / "data.yaml")
    assert errors(at) == [] and not at.button(key="new_run_start").disabled
    box.set_value("shapes").run()
    assert recipe_data(at) == str(datasets_dir / "shapes" / "data.yaml")
    assert ", ".join(NAMES) in at.success[0].value  # counted inline, as a path is
    assert f"{sum(yolo_counts()['train'].values())} boxes" in at.success[0].value


def test_new_run_without_imported_datasets_says_how_to_import(runs_root, datasets_dir):
    at = open_page("new_run", nr_data_source="imported")
    assert any(str(datasets_dir) in i.value and "workbench import" in i.value for i in at.info)
    assert any(e.startswith("data: choose an imported dataset") for e in errors(at))
    assert at.button(key="new_run_start").disabled


def test_a_zip_uploaded_on_new_run_is_imported_and_chosen(runs_root, datasets_dir, tmp_path):
    content = roboflow_zip(tmp_path / "rf.zip").read_bytes()
    at = open_page("new_run")
    at.file_uploader(key="import_upload").set_value(("My shapes.zip", content, "application/zip")).run()
    at.button(key="import_start").click().run()
    assert not at.exception and errors(at) == []
    assert (datasets_dir / "My-shapes" / "data.yaml").is_file()
    assert at.radio(key="nr_data_source").value == "imported"
    assert at.selectbox(key="nr_data_name").value == "My-shapes"
    assert recipe_data(at) == str(datasets_dir / "My-shapes" / "data.yaml")
    assert any("Imported **My-shapes**" in s.value for s in at.success)
    report = next(t.value for t in at.text if t.value.startswith("My-shapes: YOLO export"))
    assert f"train: 48 images (2 background), {sum(yolo_counts()['train'].values())} boxes" in report


def test_a_bad_upload_shows_one_line_and_leaves_nothing(runs_root, datasets_dir):
    at = open_page("new_run")
    at.file_uploader(key="import_upload").set_value(("broken.zip", b"not a zip at all", "application/zip")).run()
    at.text_input(key="import_name").set_value("mine").run()
    at.button(key="import_start").click().run()
    assert not at.exception
    assert any(e.startswith("broken.zip: not a zip archive") for e in errors(at)), errors(at)
    assert not datasets_dir.exists()
    assert at.radio(key="nr_data_source").value == "demo"


def test_the_upload_subprocess_reports_progress_to_the_end(datasets_dir, tmp_path):
    seen: list[tuple[float, str]] = []
    outcome = dataset_upload.run_import(
        roboflow_zip(tmp_path / "rf.zip"), datasets_dir, name="rf", on_progress=lambda f, m: seen.append((f, m))
    )
    assert outcome.error is None and outcome.name == "rf"
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1] == (1.0, "imported rf")
    assert any(m.startswith("unpacking") for _, m in seen) and len(seen) >= 5


def test_class_weights_counts_an_imported_dataset_and_passes_it_to_new_run(runs_root, datasets_dir, tmp_path):
    import_dataset(roboflow_zip(tmp_path / "rf.zip"), datasets_dir=datasets_dir, name="shapes")
    at = open_page("class_weights", cw_data_source="imported")
    assert at.selectbox(key="cw_data_name").value == "shapes"
    assert any(f"{sum(yolo_counts()['train'].values())} boxes in 4 classes" in c.value for c in at.caption)
    at.button(key="weights_use").click().run()
    assert at.title[0].value == "New run"
    assert at.radio(key="nr_data_source").value == "imported" and at.selectbox(key="nr_data_name").value == "shapes"
    assert recipe_data(at) == str(datasets_dir / "shapes" / "data.yaml")


def test_the_ui_process_imports_an_upload_without_ultralytics_or_torch(tmp_path):
    """Upload and import on New run in a fresh interpreter, then list its modules: the import ran elsewhere."""
    zip_path = roboflow_zip(tmp_path / "rf.zip")
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        os.environ["WORKBENCH_RUNS_DIR"] = {str(tmp_path / "runs")!r}
        os.environ["WORKBENCH_DATASETS_DIR"] = {str(tmp_path / "datasets")!r}
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(MAIN)!r}, default_timeout=120).run()
        content = open({str(zip_path)!r}, "rb").read()
        at.file_uploader(key="import_upload").set_value(("rf.zip", content, "application/zip")).run()
        at.button(key="import_start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.selectbox(key="nr_data_name").value == "rf"
        at.switch_page("app_pages/class_weights.py").run()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics", "torchvision"))
        print("HEAVY:" + ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "datasets" / "rf" / "data.yaml").is_file()
    heavy = next(line for line in out.stdout.splitlines() if line.startswith("HEAVY:"))
    assert heavy == "HEAVY:", heavy


def test_a_run_on_an_imported_dataset_is_named_after_it():
    from app.recipe_form import FormValues, recipe_stem

    assert recipe_stem(FormValues(data_source="imported", data_name="coco-shapes")) == "coco-shapes-demo_base"
