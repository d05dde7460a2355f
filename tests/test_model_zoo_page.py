"""New run's pretrained checkpoints (app.model_choices through the page): each marked on disk or "download (size)",
the one-line refusal when it is missing, the Allow download switch only when the server allows downloads, the hint
for an official name typed as a local path, and Start downloading (from 127.0.0.1) before the run is created.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from tests.conftest import DEMO_BASE, REPO
from tests.loopback import serve
from tests.test_app_pages import MAIN, errors, errors_next_to, open_page
from trainers.runs import downloads, launcher, model_zoo
from trainers.runs.folder import create_run_dir


def weights_folder(tmp_path: Path, monkeypatch, *names: str, allow: bool = False) -> Path:
    """A weights folder holding demo_base.pt (a real yolo26n) under each of ``names``, as this server's."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in names:
        shutil.copy(DEMO_BASE, folder / name)
    monkeypatch.setenv(model_zoo.WEIGHTS_DIR_ENV, str(folder))
    if allow:
        monkeypatch.setenv(model_zoo.ALLOW_DOWNLOADS_ENV, "1")
    else:
        monkeypatch.delenv(model_zoo.ALLOW_DOWNLOADS_ENV, raising=False)
    return folder


def test_pretrained_checkpoints_show_on_disk_or_download(runs_root, tmp_path, monkeypatch):
    folder = weights_folder(tmp_path, monkeypatch, "yolo26n.pt")
    at = open_page("new_run", nr_model_source="pretrained")
    box = at.selectbox(key="nr_pretrained")
    assert box.options[0] == "yolo26n.pt · YOLO26 · on disk"
    assert "yolo11n.pt · YOLO11 · download (5.4 MB)" in box.options and len(box.options) == 12
    assert errors(at) == [] and not at.button(key="new_run_start").disabled
    assert yaml.safe_load(at.code[0].value)["model"] == "yolo26n.pt"
    assert "nr_allow_download" not in [t.key for t in at.toggle]  # this server does not allow downloads

    box.set_value("yolo11n.pt").run()
    line = f"model: yolo11n.pt is not in {folder}; put the file there or allow downloads (--allow-downloads)"
    assert errors_next_to(at, "nr_pretrained") == [line]
    assert at.button(key="new_run_start").disabled


def test_allow_download_switch_only_when_the_server_allows(runs_root, tmp_path, monkeypatch):
    folder = weights_folder(tmp_path, monkeypatch, allow=True)
    at = open_page("new_run", nr_model_source="pretrained")
    (msg,) = errors_next_to(at, "nr_pretrained")
    assert msg == f"model: yolo26n.pt is not in {folder}; put the file there or switch on 'Allow download' beside Start"
    assert at.button(key="new_run_start").disabled
    at.toggle(key="nr_allow_download").set_value(True).run()
    assert errors(at) == [] and not at.button(key="new_run_start").disabled


def test_an_official_name_typed_as_a_path_gets_the_hint(runs_root, tmp_path, monkeypatch):
    folder = weights_folder(tmp_path, monkeypatch, "yolo11n.pt")
    at = open_page("new_run", nr_model_source="local")
    at.text_input(key="nr_model_path").set_value("yolo11n.pt").run()
    assert errors_next_to(at, "nr_model_path") == [
        "model: yolo11n.pt is an official pretrained checkpoint, not a file in this folder; "
        f"choose 'Pretrained checkpoint' above; it is looked for in {folder} (on disk)"
    ]  # not "file not found", and no trust asked for a file that is not there


def test_start_downloads_before_the_run_is_created(runs_root, tmp_path, monkeypatch):
    folder = weights_folder(tmp_path, monkeypatch, allow=True)
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(DEMO_BASE, served / "yolo11n.pt")
    started = []

    def fake_start(recipe_path, root, name=None):
        started.append((folder / "yolo11n.pt").is_file())  # the checkpoint was there before the run was created
        return create_run_dir(root, "zoo")

    monkeypatch.setattr(launcher, "start_run", fake_start)
    at = open_page("new_run", nr_model_source="pretrained", nr_pretrained="yolo11n.pt", nr_allow_download=True)
    with serve(served) as (url, requested):
        monkeypatch.setenv(downloads.WEIGHTS_URL_ENV, url)
        at.button(key="new_run_start").click().run()
    assert not at.exception and errors(at) == []
    assert started == [True] and requested == ["/yolo11n.pt"]
    assert (folder / "yolo11n.pt").read_bytes() == DEMO_BASE.read_bytes()


def test_the_zoo_never_imports_torch_or_ultralytics_in_the_ui(tmp_path):
    """New run with the pretrained choice and the path hint, rendered in a fresh interpreter."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        os.environ.update(WORKBENCH_RUNS_DIR={str(tmp_path / "runs")!r}, WORKBENCH_WEIGHTS_DIR={str(tmp_path)!r},
                          WORKBENCH_ALLOW_DOWNLOADS="1")
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(MAIN)!r}, default_timeout=60)
        at.session_state["nr_model_source"] = "pretrained"
        at.run()
        assert not at.exception and at.selectbox(key="nr_pretrained").options
        at.radio(key="nr_model_source").set_value("local").run()
        at.text_input(key="nr_model_path").set_value("rtdetr-l.pt").run()
        assert not at.exception
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics", "torchvision"))
        print("HEAVY:" + ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY:\n" in out.stdout, out.stdout
