"""The model zoo (trainers.runs.model_zoo, trainers.runs.downloads): official checkpoint and ultralytics dataset names
found in the weights and datasets folders, refused offline in one line before any run folder exists, or downloaded
first when allowed. No internet: real checkpoints are placed under official names, downloads come from 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_BASE, REPO
from tests.loopback import serve
from trainers.errors import RecipeError
from trainers.recipe import Recipe, load_recipe
from trainers.runs import downloads, launcher, model_zoo
from trainers.runs.model_zoo import Missing

# `workbench` in a fresh interpreter that refuses every connection and name lookup, and says at exit whether torch or
# ultralytics were imported (the refusal must come before either: they take seconds to import).
GUARDED_CLI = """
import atexit, socket, sys
def refuse(*args, **kwargs):
    sys.stderr.write("SOCKET: a connection was attempted\\n")
    raise OSError("no network in this test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = socket.create_connection = refuse
atexit.register(lambda: print("HEAVY:" + ",".join(m for m in ("torch", "ultralytics") if m in sys.modules)))
from trainers.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


def workbench(*args: str, env: dict | None = None, guarded: bool = False, timeout: int = 600):
    head = ["-c", GUARDED_CLI] if guarded else ["-m", "trainers.cli"]
    return subprocess.run(
        [sys.executable, *head, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1", **(env or {})},
    )  # fmt: skip


def write_recipe(folder: Path, model: str, data: str | Path, epochs: int = 1) -> Path:
    recipe = folder / "recipe.yaml"
    train = {"epochs": epochs, "imgsz": 64, "batch": 8, "workers": 0, "plots": False}
    recipe.write_text(yaml.safe_dump({"model": model, "data": str(data), "train": train}))
    return recipe


def coco8_zip(data_yaml: Path, out: Path) -> Path:
    """coco8.zip as ultralytics' release lays it out (coco8/images/..., coco8/labels/...), from a small dataset."""
    root = data_yaml.parent
    with zipfile.ZipFile(out / "coco8.zip", "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.parts[len(root.parts)] in ("images", "labels"):
                z.write(p, Path("coco8") / p.relative_to(root))
    return out / "coco8.zip"


# ---- the catalogue, against ultralytics --------------------------------------------------------------------------
def test_catalogue_names_are_ultralytics_release_names():
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    names = [c.name for c in model_zoo.CHECKPOINTS]
    assert names == [f"{f}{s}.pt" for f in ("yolo26", "yolo11", "rtdetr-") for s in ("nsmlx" if "yolo" in f else "lx")]
    assert set(names) <= GITHUB_ASSETS_NAMES
    assert all(model_zoo.is_official_checkpoint(n) for n in names)


def test_the_default_url_is_the_one_attempt_download_asset_builds(tmp_path, monkeypatch):
    """Our download URL must stay ultralytics' own: fails when an ultralytics upgrade moves its release."""
    from ultralytics.utils import downloads as ul

    seen = []
    monkeypatch.setattr(ul, "safe_download", lambda url, **kw: seen.append(url))
    ul.attempt_download_asset(str(tmp_path / "yolo11n.pt"))
    item = Missing("model", "yolo11n.pt", tmp_path, tmp_path / "yolo11n.pt")
    monkeypatch.delenv(downloads.WEIGHTS_URL_ENV, raising=False)
    assert seen == [downloads.url_for(item)] == [f"{downloads.DEFAULT_WEIGHTS_URL}/yolo11n.pt"]


@pytest.mark.parametrize(
    ("name", "official"),
    [("yolo11n.pt", True), ("rtdetr-x.pt", True), ("yolov8s.pt", True), ("yolo11n.yaml", False),
     ("yolo11n-seg.pt", False), ("weights/yolo11n.pt", False), ("/abs/yolo26n.pt", False), ("mine.pt", False)],
)  # fmt: skip
def test_official_names(name, official):
    assert model_zoo.is_official_checkpoint(name) is official


def test_weights_folder_flag_then_env_then_ultralytics_setting(tmp_path, monkeypatch):
    config = tmp_path / "config"
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(config))
    monkeypatch.delenv(model_zoo.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert model_zoo.weights_dir() == tmp_path / "weights"  # no settings file: ultralytics' default
    (config / "Ultralytics").mkdir(parents=True)
    (config / "Ultralytics" / "settings.json").write_text(json.dumps({"weights_dir": str(tmp_path / "ul")}))
    assert model_zoo.weights_dir() == tmp_path / "ul"
    monkeypatch.setenv(model_zoo.WEIGHTS_DIR_ENV, str(tmp_path / "env"))
    assert model_zoo.weights_dir() == tmp_path / "env"
    assert model_zoo.weights_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_ui_gets_the_weights_folder_and_the_download_permission_through_its_environment(tmp_path, monkeypatch):
    from tests.test_cli import FakePopen
    from trainers.cli import commands as cli

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    monkeypatch.delenv(model_zoo.ALLOW_DOWNLOADS_ENV, raising=False)
    monkeypatch.delenv(model_zoo.WEIGHTS_DIR_ENV, raising=False)
    FakePopen.calls = []
    args = ["ui", "--runs-dir", str(tmp_path / "r"), "--weights-dir", str(tmp_path / "w")]
    assert cli.main([*args, "--allow-downloads"]) == 0 and cli.main(args) == 0
    (_, allowed), (_, plain) = FakePopen.calls
    assert allowed["env"][model_zoo.WEIGHTS_DIR_ENV] == plain["env"][model_zoo.WEIGHTS_DIR_ENV] == str(tmp_path / "w")
    assert allowed["env"][model_zoo.ALLOW_DOWNLOADS_ENV] == "1" and model_zoo.ALLOW_DOWNLOADS_ENV not in plain["env"]
    assert model_zoo.WEIGHTS_DIR_ENV not in os.environ  # restored: main() ran in this process


# ---- the preflight -----------------------------------------------------------------------------------------------
def test_an_official_name_resolves_to_the_weights_folder_and_the_recipe_keeps_the_name(tmp_path, tiny_data):
    recipe = load_recipe(write_recipe(tmp_path, "yolo26n.pt", tiny_data))
    assert recipe.model == "yolo26n.pt" and recipe.family == "yolo"
    with pytest.raises(RecipeError) as e:
        model_zoo.resolve_assets(recipe, tmp_path / "w")
    line = f"model: yolo26n.pt is not in {tmp_path / 'w'}; put the file there or allow downloads (--allow-downloads)"
    assert str(e.value) == line and e.value.problems[0].field == "model"
    (tmp_path / "w").mkdir()
    shutil.copy(DEMO_BASE, tmp_path / "w" / "yolo26n.pt")
    assert model_zoo.resolve_assets(recipe, tmp_path / "w").model == str(tmp_path / "w" / "yolo26n.pt")


def test_a_named_dataset_is_its_folder_in_the_datasets_folder(tmp_path, tiny_data):
    recipe = Recipe.from_dict({"model": "yolo26n.yaml", "data": "coco8.yaml"}).resolve_paths(tmp_path)
    assert recipe.data == "coco8.yaml"  # not resolved against the recipe's folder: it names ultralytics' dataset
    datasets = tmp_path / "datasets"
    with pytest.raises(RecipeError, match=rf"^data: coco8.yaml is not in {datasets} \(no coco8/ there\); put it"):
        model_zoo.resolve_assets(recipe, tmp_path, datasets)
    shutil.copytree(tiny_data.parent / "images", datasets / "coco8" / "images")
    shutil.copytree(tiny_data.parent / "labels", datasets / "coco8" / "labels")
    resolved = model_zoo.resolve_assets(recipe, tmp_path, datasets)
    assert resolved.data == str(datasets / "coco8" / "data.yaml")
    assert len(yaml.safe_load((datasets / "coco8" / "data.yaml").read_text())["names"]) == 80


def test_offline_refusal_is_one_line_fast_with_no_run_folder_and_no_socket(tmp_path, tiny_data):
    """The acceptance line: exit 2 in <= 5 s, one line, no traceback, no run folder, no connection attempted."""
    recipe = write_recipe(tmp_path, "yolo11n.pt", tiny_data)
    runs, weights = tmp_path / "runs", tmp_path / "weights"
    weights.mkdir()
    env = {"WORKBENCH_ALLOW_DOWNLOADS": "", "WORKBENCH_WEIGHTS_URL": "http://127.0.0.1:9/never"}
    t0 = time.monotonic()
    out = workbench("train", str(recipe), "--runs-dir", str(runs), "--weights-dir", str(weights), env=env, guarded=True)
    elapsed = time.monotonic() - t0
    expected = f"model: yolo11n.pt is not in {weights}; put the file there or allow downloads (--allow-downloads)"
    assert (out.returncode, out.stderr) == (2, f"workbench: error: {expected}\n")
    assert elapsed <= 5.0, elapsed
    assert "HEAVY:\n" in out.stdout  # neither torch nor ultralytics was imported
    assert not runs.exists() or not any(runs.iterdir())


def test_the_launcher_and_a_sweep_refuse_before_any_run_folder(tmp_path, tiny_data, monkeypatch):
    monkeypatch.setenv(model_zoo.WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.delenv(model_zoo.ALLOW_DOWNLOADS_ENV, raising=False)
    recipe, runs = write_recipe(tmp_path, "yolo11n.pt", tiny_data), tmp_path / "runs"
    with pytest.raises(RecipeError, match=r"^model: yolo11n.pt is not in .*weights; put the file there"):
        launcher.start_run(recipe, runs)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(recipe), "grid": {"train.lr0": [0.01, 0.02]}}))
    out = workbench("sweep", str(sweep), "--runs-dir", str(runs), "--weights-dir", str(tmp_path / "weights"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "model: yolo11n.pt is not in" in out.stderr
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


# ---- downloads from 127.0.0.1 ------------------------------------------------------------------------------------
def test_a_named_dataset_downloads_into_the_datasets_folder(tmp_path, tiny_data, monkeypatch):
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.label_counts import count_labels

    served = tmp_path / "served"
    served.mkdir()
    coco8_zip(tiny_data, served)
    recipe = Recipe.from_dict({"model": "yolo26n.yaml", "data": "coco8.yaml"})
    with serve(served) as (url, requested):
        monkeypatch.setenv(downloads.DATASETS_URL_ENV, url)
        resolved = model_zoo.resolve_assets(recipe, tmp_path, tmp_path / "datasets", download=downloads.fetch)
    assert requested == ["/coco8.zip"]
    assert not (tmp_path / "datasets" / "coco8.zip").exists()  # unzipped, archive removed
    ds = load_dataset(resolved.data)
    ours = count_labels(load_dataset(tiny_data), "train").instances
    assert sum(count_labels(ds, "train").instances) == sum(ours) > 0


def test_a_failed_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(downloads.WEIGHTS_URL_ENV, "http://127.0.0.1:9")  # discard port: nothing listens
    item = model_zoo.find_model("yolo11n.pt", tmp_path)[1]
    with pytest.raises(RecipeError, match=r"^model: could not download yolo11n.pt from http://127.0.0.1:9/yolo11n"):
        downloads.fetch(item, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_download_in_a_child_process_reports_its_progress(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(DEMO_BASE, served / "yolo26n.pt")
    item = model_zoo.find_model("yolo26n.pt", tmp_path / "weights")[1]
    seen = []
    with serve(served, chunk_delay_s=0.01) as (url, requested):  # about 0.8 s for the 5.3 MB
        os.environ[downloads.WEIGHTS_URL_ENV] = url  # the child's environment is this process'
        try:
            path = downloads.fetch_with_progress(item, lambda done, total: seen.append((done, total)), poll_s=0.01)
        finally:
            del os.environ[downloads.WEIGHTS_URL_ENV]
    assert path == tmp_path / "weights" / "yolo26n.pt" and path.read_bytes() == DEMO_BASE.read_bytes()
    assert requested == ["/yolo26n.pt"]
    assert seen[-1] == (5_300_000, 5_300_000) and all(total == 5_300_000 for _, total in seen)
    # Seen half-way, from ultralytics' partial file (.<name>.<uuid>.part): fails if it names that file otherwise.
    assert any(0 < done < DEMO_BASE.stat().st_size for done, _ in seen[:-1]), seen


# ---- training from a checkpoint found by name (slow: trains) -----------------------------------------------------
@pytest.mark.slow
def test_a_checkpoint_in_the_weights_folder_fine_tunes_with_a_new_head(tmp_path, tiny_data):
    """demo_base.pt is a yolo26n with 4 classes; placed as yolo26n.pt it trains the 3-class tiny set as ultralytics
    does: every matching weight transferred, the class head built anew."""
    weights, runs = tmp_path / "weights", tmp_path / "runs"
    weights.mkdir()
    shutil.copy(DEMO_BASE, weights / "yolo26n.pt")
    recipe = write_recipe(tmp_path, "yolo26n.pt", tiny_data)
    out = workbench("train", str(recipe), "--runs-dir", str(runs), "--weights-dir", str(weights), "--name", "ft")
    assert out.returncode == 0, out.stderr[-3000:]
    run = runs / "ft"
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert yaml.safe_load((run / "recipe.yaml").read_text())["model"] == "yolo26n.pt"  # the name, portable
    console = (run / "console.log").read_text() + out.stdout + out.stderr
    moved, total = (int(x) for x in console.split("Transferred ")[1].split(" ")[0].split("/"))
    assert 0.8 * total < moved < total  # all but the class outputs of the head
    import torch

    best = torch.load(run / "weights" / "best.pt", weights_only=False)["model"]
    assert best.nc == 3 and list(best.names.values()) == ["disc", "block", "ring"]


@pytest.mark.slow
def test_allowed_downloads_fetch_before_the_run_then_train(tmp_path, tiny_data):
    served, runs, weights = tmp_path / "served", tmp_path / "runs", tmp_path / "weights"
    served.mkdir()
    shutil.copy(DEMO_BASE, served / "yolo26n.pt")
    recipe = write_recipe(tmp_path, "yolo26n.pt", tiny_data)
    args = ["train", str(recipe), "--runs-dir", str(runs), "--weights-dir", str(weights), "--name", "dl"]
    with serve(served) as (url, requested):
        out = workbench(*args, "--allow-downloads", env={downloads.WEIGHTS_URL_ENV: url})
    assert out.returncode == 0, out.stderr[-3000:]
    assert requested == ["/yolo26n.pt"] and (weights / "yolo26n.pt").read_bytes() == DEMO_BASE.read_bytes()
    assert f"workbench: downloading yolo26n.pt from {url}/yolo26n.pt" in out.stderr
    assert json.loads((runs / "dl" / "status.json").read_text())["status"] == "completed"
