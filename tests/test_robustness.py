"""Bad inputs that no other test file covers, and the "nothing on disk changes" half of the ones they do.

docs/robustness.md lists every bad input with the message a user sees and the test that proves it; the rows whose
tests live here are images, model paths, runs-dir paths, some CLI arguments, class-weight lists and UI fields.
Every rejection here is checked the same way: exit code 2 (or an inline UI error with Start refused), exactly the
documented one-line message, no "Traceback" anywhere, and every file the command could have touched byte-identical
afterwards (no run folder made, no dataset or model file changed, no ultralytics label cache written).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY_TRAIN, make_dataset

# ---- helpers -------------------------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under ``roots`` -> sha256 of its bytes ('dir' for folders, the target for links, 'missing')."""
    out: dict[str, str] = {}
    for root in roots:
        paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
        for p in paths:
            if p.is_symlink():
                out[str(p)] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[str(p)] = "dir"
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[str(p)] = "missing"
    return out


def workbench(*args: str, cwd: Path, env: dict | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process, as a user runs it (no WORKBENCH_RUNS_DIR unless given)."""
    base = {k: v for k, v in os.environ.items() if k != "WORKBENCH_RUNS_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        preexec_fn=preexec_fn,
        timeout=300,
    )


def assert_rejected(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit 2, exactly ``workbench: error: <message>`` on stderr, nothing on stdout, no traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr == f"workbench: error: {message}\n"
    assert result.stdout == ""


def write_recipe(path: Path, data: Path, model: str = "yolo26n.yaml", **customizations) -> Path:
    path.write_text(
        yaml.safe_dump({"model": model, "data": str(data), "train": dict(TINY_TRAIN), "customizations": customizations})
    )
    return path


@pytest.fixture
def ds(tmp_path) -> Path:
    """A small private copy of the 3-class dataset (tests damage it)."""
    return make_dataset(tmp_path / "ds", n_train=4, n_val=2).parent


def train_rejected(tmp_path: Path, recipe: Path, message: str, *watch: Path, extra: tuple = (), **kw) -> None:
    """``workbench train`` is rejected with ``message`` and changes nothing under ``watch`` or the runs root."""
    runs = tmp_path / "runs"
    watched = (runs, recipe, *watch)
    before = snapshot(*watched)
    result = workbench("train", str(recipe), "--runs-dir", str(runs), "--name", "r", *extra, cwd=tmp_path, **kw)
    assert_rejected(result, message)
    assert snapshot(*watched) == before
    assert not (runs / "r").exists()


# ---- images: checked before training (trainers.datasets.files.check_images, called by the runner)
# ---------------------
def _empty(d: Path) -> Path:
    img = d / "images/train/001.png"
    img.write_bytes(b"")
    return img


def _text(d: Path) -> Path:
    img = d / "images/train/002.png"
    img.write_bytes(b"this is not an image at all")
    return img


def _two_empty_val(d: Path) -> Path:
    for name in ("000.png", "001.png"):
        (d / "images/val" / name).write_bytes(b"")
    return d / "images/val/000.png"


def _listed_but_missing(d: Path) -> Path:
    listed = [f"./images/train/{i:03d}.png" for i in range(4)] + ["./images/train/gone.png"]
    (d / "train.txt").write_text("\n".join(listed) + "\n")
    (d / "data.yaml").write_text((d / "data.yaml").read_text().replace("train: images/train", "train: train.txt"))
    return d / "images/train/gone.png"


def _dangling_link(d: Path) -> Path:
    img = d / "images/train/link.png"
    img.symlink_to(d / "elsewhere" / "moved.png")
    return img


def _html_saved_as_jpg(d: Path) -> Path:
    img = d / "images/train/003.png"
    img.unlink()
    img = d / "images/train/003.jpg"
    img.write_bytes(b"<!DOCTYPE html><html>404 Not Found</html>")
    return img


IMAGE_CASES = {
    "zero-byte image": (
        _empty,
        "{img}: empty image file (0 bytes); replace the image, or delete it and its label file",
    ),
    "text saved as .png": (
        _text,
        "{img}: not a JPEG, PNG, BMP, WEBP or TIFF image (it starts with bytes 74 68 69 73 20 69 73 20); "
        "replace the image, or delete it and its label file",
    ),
    "html page saved as .jpg": (
        _html_saved_as_jpg,
        "{img}: not a JPEG, PNG, BMP, WEBP or TIFF image (it starts with bytes 3c 21 44 4f 43 54 59 50); "
        "replace the image, or delete it and its label file",
    ),
    "two empty val images": (
        _two_empty_val,
        "{img}: empty image file (0 bytes) (and 1 more bad image in split 'val'); "
        "replace the image, or delete it and its label file",
    ),
    "image list names a missing file": (
        _listed_but_missing,
        "{img}: image not found (listed in an image list, or a broken link); "
        "replace the image, or delete it and its label file",
    ),
    "dangling symlink in the image folder": (
        _dangling_link,
        "{img}: image not found (listed in an image list, or a broken link); "
        "replace the image, or delete it and its label file",
    ),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES), ids=list(IMAGE_CASES))
def test_bad_images_are_refused_before_training_naming_the_file(case, tmp_path, ds):
    damage, message = IMAGE_CASES[case]
    img = damage(ds)
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml")
    train_rejected(tmp_path, recipe, message.format(img=img), ds)
    assert not list(ds.rglob("*.cache")), "ultralytics never started: no label cache"


def test_every_real_image_format_passes_the_image_check(tmp_path):
    """No false alarms: each suffix we list (jpg, jpeg, png, bmp, webp, tif, tiff) as PIL writes it, any case."""
    from PIL import Image

    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.files import IMAGE_SUFFIXES, check_images

    root = tmp_path / "formats"
    (root / "images/train").mkdir(parents=True)
    im = Image.new("RGB", (8, 8), (200, 30, 30))
    for suffix in sorted(IMAGE_SUFFIXES):
        im.save(root / f"images/train/a{suffix}")
        im.save(root / f"images/train/b{suffix.upper()}")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [a]\n")
    assert check_images(load_dataset(root / "data.yaml"), "train") == 2 * len(IMAGE_SUFFIXES)


def test_image_check_is_cheap_on_the_demo(demo):
    """Measured: the runner's image check (first 12 bytes of each image) next to the label count it follows."""
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.files import check_images
    from trainers.datasets.label_counts import count_labels

    ds = load_dataset(demo[0])
    t0 = time.perf_counter()
    n = check_images(ds, "train") + check_images(ds, "val")
    t_images = time.perf_counter() - t0
    t0 = time.perf_counter()
    count_labels(ds, "train"), count_labels(ds, "val")
    t_labels = time.perf_counter() - t0
    print(f"check_images: {n} demo images in {t_images * 1e3:.1f} ms (count_labels: {t_labels * 1e3:.1f} ms)")
    assert n == 64
    assert t_images < 0.25  # ~7 ms measured on 2 shared cores; the bound only catches an accidental image decode


# ---- model paths: refused before a run folder exists --------------------------------------------------------------
@pytest.fixture(scope="session")
def seg_checkpoint(tmp_path_factory) -> Path:
    """A real ultralytics segmentation checkpoint, built offline from yolo11n-seg.yaml (random weights)."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("seg") / "seg-model.pt"
    YOLO("yolo11n-seg.yaml").save(path)
    return path


def _model_file(tmp: Path, kind: str, seg: Path) -> tuple[str, Path | None]:
    """The recipe's model value for a case, and the file to watch (None for built-in names)."""
    p = tmp / "model.pt"
    if kind == "missing":
        return str(tmp / "nowhere" / "model.pt"), None
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "random":
        p.write_bytes(os.urandom(4096))  # any bytes: the message must not depend on them
    elif kind == "not a model":
        import torch

        torch.save({"weights": torch.zeros(3)}, p)
    elif kind == "segmentation":
        return str(seg), seg
    elif kind == "data yaml as model":
        p = tmp / "ds" / "data.yaml"
    else:
        return kind, None  # a built-in or official name
    return str(p), p


MODEL_CASES = {
    "missing": (
        "missing",
        "model: '{model}' not found; use a built-in YAML such as yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml or the "
        "path of a local .pt/.yaml",
    ),
    "zero-byte .pt": ("empty", "model: {model} is empty (0 bytes); give a checkpoint saved by ultralytics"),
    "random bytes named .pt": (
        "random",
        "model: {model} is not an ultralytics checkpoint (not a torch.save archive); give a .pt saved by "
        "ultralytics, e.g. a run's weights/best.pt",
    ),
    "torch file without a model": (
        "not a model",
        "model: {model} is not an ultralytics checkpoint (TypeError while loading it); give a .pt saved by "
        "ultralytics, e.g. a run's weights/best.pt",
    ),
    "segmentation checkpoint": (
        "segmentation",
        "model: {model} is a segment checkpoint; the workbench trains detection models (give a detection checkpoint "
        "or a built-in YAML such as yolo26n.yaml)",
    ),
    "segmentation YAML": (
        "yolo26n-seg.yaml",
        "model: yolo26n-seg.yaml is a segment model (its output layer is Segment26); the workbench trains detection "
        "models such as yolo26n.yaml, yolo11n.yaml or rtdetr-l.yaml",
    ),
    "classification YAML": (
        "yolo11n-cls.yaml",
        "model: yolo11n-cls.yaml is a classify model (its output layer is Classify); the workbench trains detection "
        "models such as yolo26n.yaml, yolo11n.yaml or rtdetr-l.yaml",
    ),
    "official segmentation asset name": (
        "yolo11n-seg.pt",
        "model: yolo11n-seg.pt is not a detection model; use e.g. yolo26n.pt or yolo26n.yaml",
    ),
    "unknown built-in name": (
        "yolo26z.yaml",
        "model: 'yolo26z.yaml' not found; use a built-in YAML such as yolo26n.yaml, yolo11n.yaml, rtdetr-l.yaml or the "
        "path of a local .pt/.yaml",
    ),
    "data.yaml given as the model": (
        "data yaml as model",
        "model: {model} is not an ultralytics model YAML (it needs 'backbone' and 'head' layer lists); use a built-in "
        "YAML such as yolo26n.yaml",
    ),
}


@pytest.mark.parametrize("case", list(MODEL_CASES), ids=list(MODEL_CASES))
def test_bad_model_paths_exit_2_naming_model_before_a_run_folder_exists(case, tmp_path, ds, seg_checkpoint):
    kind, message = MODEL_CASES[case]
    model, watched = _model_file(tmp_path, kind, seg_checkpoint)
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml", model=model)
    train_rejected(tmp_path, recipe, message.format(model=model), ds, *([watched] if watched else []))


def test_the_segmentation_fixture_is_what_ultralytics_calls_a_segment_checkpoint(seg_checkpoint):
    from ultralytics.nn.tasks import SegmentationModel, load_checkpoint

    model, _ = load_checkpoint(str(seg_checkpoint))
    assert isinstance(model, SegmentationModel) and model.task == "segment"


# ---- runs-dir paths ------------------------------------------------------------------------------------------------
def _drop_root_file_powers() -> None:
    """In the child: drop CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH from the bounding set, so a root process execs
    without them and file permissions apply to it as to any user (a plain chmod does nothing to root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_runs_dir_that_is_a_file_is_refused_for_train(tmp_path, ds):
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml")
    f = tmp_path / "runs-file"
    f.write_text("not a folder\n")
    before = snapshot(f, ds)
    result = workbench("train", str(recipe), "--runs-dir", str(f), cwd=tmp_path)
    assert_rejected(result, f"--runs-dir {f} is not a directory; pass a folder for runs with --runs-dir")
    assert snapshot(f, ds) == before


def test_runs_dir_under_a_file_is_refused(tmp_path, ds):
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml")
    f = tmp_path / "plain-file"
    f.write_text("x\n")
    before = snapshot(f, ds)
    result = workbench("train", str(recipe), "--runs-dir", str(f / "runs"), cwd=tmp_path)
    assert_rejected(
        result,
        f"runs root {f / 'runs'}: cannot create a run folder there (Not a directory); "
        "pass a writable folder with --runs-dir",
    )
    assert snapshot(f, ds) == before


def test_runs_dir_that_is_not_writable_is_refused(tmp_path, ds):
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml")
    runs = tmp_path / "read-only-runs"
    runs.mkdir()
    runs.chmod(0o555)
    preexec = None
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_drop_root_file_powers, check=True)
        except (OSError, subprocess.SubprocessError):
            pytest.skip("running as root without CAP_SETPCAP: cannot make a folder read-only for this process")
        preexec = _drop_root_file_powers
    try:
        result = workbench("train", str(recipe), "--runs-dir", str(runs), cwd=tmp_path, preexec_fn=preexec)
        assert_rejected(
            result,
            f"runs root {runs}: cannot create a run folder there (Permission denied); "
            "pass a writable folder with --runs-dir",
        )
        assert list(runs.iterdir()) == []
    finally:
        runs.chmod(0o755)


def test_ui_start_into_an_unusable_runs_root_is_a_one_line_error_not_a_traceback(tmp_path):
    """The launcher path the UI's Start button takes: the same one-line RunError, nothing spawned."""
    from trainers.errors import RunError
    from trainers.runs import launcher

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: yolo26n.yaml\ndata: data.yaml\n")
    f = tmp_path / "plain-file"
    f.write_text("x\n")
    with pytest.raises(RunError) as err:
        launcher.start_run(recipe, f / "runs", name="r")
    assert str(err.value) == (
        f"runs root {f / 'runs'}: cannot create a run folder there (Not a directory); "
        "pass a writable folder with --runs-dir"
    )


# ---- CLI arguments -------------------------------------------------------------------------------------------------
def test_existing_without_name_is_refused(tmp_path, ds):
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml")
    runs = tmp_path / "runs"
    before = snapshot(runs, ds, recipe)
    result = workbench("train", str(recipe), "--runs-dir", str(runs), "--existing", cwd=tmp_path)
    assert_rejected(result, "--existing needs --name of the run directory reserved by the launcher")
    assert snapshot(runs, ds, recipe) == before


def test_resume_of_a_run_without_last_pt_changes_nothing(tmp_path):
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import write_status

    runs = tmp_path / "runs"
    run = create_run_dir(runs, "early")
    write_status(run, status="failed", epoch=0, epochs=3, error="RuntimeError: boom")
    (run / "recipe.yaml").write_text("model: yolo26n.yaml\ndata: data.yaml\n")
    before = snapshot(runs)
    result = workbench("resume", "early", "--runs-dir", str(runs), cwd=tmp_path)
    assert_rejected(
        result,
        "run 'early' never finished an epoch (no weights/last.pt), so there is nothing to resume; "
        "start it again with 'workbench rerun early'",
    )
    assert snapshot(runs) == before


@pytest.mark.parametrize(
    ("argv", "last_line"),
    [
        (["train", "r.yaml", "--epochs", "3"], "workbench: error: unrecognized arguments: --epochs 3"),
        (["ui", "--port", "http"], "workbench ui: error: argument --port: invalid int value: 'http'"),
        (["counts"], "workbench counts: error: the following arguments are required: DATA.yaml"),
    ],
    ids=["unknown option", "port not a number", "counts without a dataset"],
)
def test_argparse_usage_errors_end_with_one_error_line(argv, last_line, tmp_path):
    before = snapshot(tmp_path)
    result = workbench(*argv, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0].startswith("usage: workbench")
    assert result.stderr.splitlines()[-1] == last_line
    assert snapshot(tmp_path) == before


# ---- class-weight lists --------------------------------------------------------------------------------------------
CLASS_WEIGHT_CASES = {
    "fewer weights than classes": (
        [1.0, 2.0],
        "customizations.class_weights.weights has 2 values but data.yaml has 3 classes (disc, block, ring); "
        "give one weight per class",
    ),
    "more weights than classes": (
        [1, 1, 1, 1],
        "customizations.class_weights.weights has 4 values but data.yaml has 3 classes (disc, block, ring); "
        "give one weight per class",
    ),
    "empty list": (
        [],
        "{recipe}: customizations.class_weights.weights: must list one weight per class, got an empty list",
    ),
    "a word in the list": (
        [1, "heavy", 2],
        "{recipe}: customizations.class_weights.weights.1: Input should be a valid number, unable to parse string "
        "as a number (got 'heavy')",
    ),
    "infinite weight": (
        [1, float("inf"), 2],
        "{recipe}: customizations.class_weights.weights: weights must be finite and >= 0, got inf",
    ),
    "not a list": (
        "1, 2, 3",
        "{recipe}: customizations.class_weights.weights: Input should be a valid list (got '1, 2, 3')",
    ),
}


@pytest.mark.parametrize("case", list(CLASS_WEIGHT_CASES), ids=list(CLASS_WEIGHT_CASES))
def test_bad_class_weight_lists_are_refused_naming_the_field(case, tmp_path, ds):
    weights, message = CLASS_WEIGHT_CASES[case]
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml", class_weights={"weights": weights})
    train_rejected(tmp_path, recipe, message.format(recipe=recipe), ds)


def test_zero_count_error_with_an_unlabelled_class_is_refused_before_training(tmp_path, ds):
    """The trainer would compute the weights (and fail) only after the run folder exists: the runner does it first."""
    for label in (ds / "labels" / "train").glob("*.txt"):  # no 'ring' (class 2) box in the train split
        label.write_text("".join(row for row in label.read_text().splitlines(True) if not row.startswith("2 ")))
    recipe = write_recipe(tmp_path / "r.yaml", ds / "data.yaml", class_weights={"zero_count": "error"})
    train_rejected(
        tmp_path,
        recipe,
        "customizations.class_weights.zero_count is 'error' and class(es) 2 have 0 labels; add labels for them or "
        "set zero_count to 'max' or 'one'",
        ds,
    )


# ---- the rejections other test files prove, re-run here to show they leave every file as it was ------------------
def test_every_dataset_rejection_in_test_data_leaves_the_files_unchanged(tmp_path, monkeypatch):
    from tests import test_dataset_errors as test_data
    from trainers.errors import DatasetError

    # Some cases write their dataset inside the call (make_dataset, then load it): snapshot right after it is built.
    built: dict[str, dict] = {}

    def make_and_snapshot(tmp, *args, **kwargs):
        path = original(tmp, *args, **kwargs)
        built["before"] = snapshot(tmp)
        return path

    original = test_data.make_dataset
    monkeypatch.setattr(test_data, "make_dataset", make_and_snapshot)
    for i, (case, (build, _fragment)) in enumerate(test_data.ERROR_CASES.items()):
        tmp = tmp_path / str(i)
        tmp.mkdir()
        call, _ = build(tmp)
        built["before"] = snapshot(tmp)
        with pytest.raises(DatasetError):
            call()
        assert snapshot(tmp) == built["before"], case


def test_every_cli_rejection_in_test_cli_leaves_the_files_unchanged(tmp_path, tiny_data):
    from tests.test_cli import BAD
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import write_status

    root = tmp_path / "runs"  # the same fixture as tests/test_cli.py::root
    for name, status in (("done", "completed"), ("idle", "stopped")):
        write_status(create_run_dir(root, name), status=status, epoch=3, epochs=3)
    (tmp_path / "recipe.yaml").write_text("model: yolo26n.yaml\ndata: data.yaml\ntrain: {epochs: 1}\n")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\ndata: x\n")
    fill = {"tmp": str(tmp_path), "root": str(root), "data": str(tiny_data)}
    for case, argv, _message in BAD:
        before = snapshot(tmp_path, tiny_data.parent)
        result = workbench(*(a.format(**fill) for a in argv), cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (case, result.stderr)
        assert snapshot(tmp_path, tiny_data.parent) == before, case


# ---- UI fields (New run page) --------------------------------------------------------------------------------------
UI_CASES = {
    "other arguments not YAML": (
        {"nr_extra_train": "cos_lr: [true"},
        "nr_extra_train",
        "train: other arguments are not valid YAML (expected ',' or ']', but got '<stream end>')",
    ),
    "other arguments not a mapping": (
        {"nr_extra_train": "- cos_lr"},
        "nr_extra_train",
        "train: other arguments must be a YAML mapping like 'cos_lr: true'",
    ),
    "local model path is not a .pt": (
        {"nr_model_source": "local", "nr_model_path": "/models/best.onnx", "nr_trust_pt": True},
        "nr_model_path",
        "model: '/models/best.onnx' must be a .pt checkpoint (for a model YAML, choose a built-in model)",
    ),
    "local model path left empty": (
        {"nr_model_source": "local", "nr_model_path": "  ", "nr_trust_pt": True},
        "nr_model_path",
        "model: enter the path of a local .pt checkpoint",
    ),
    "data.yaml path left empty": (
        {"nr_data_source": "path", "nr_data_path": ""},
        "nr_data_source",
        "data: enter the path of a data.yaml",
    ),
    "freeze layers not a layer spec": (
        {"nr_freeze_on": True, "nr_freeze__layers": "head"},
        "nr_freeze__layers",
        "customizations.freeze.layers: 'head' is not 'backbone', a number of leading layers or a list of layer "
        "indices like 0, 1, 2",
    ),
}


@pytest.mark.parametrize("case", list(UI_CASES), ids=list(UI_CASES))
def test_bad_ui_fields_show_one_inline_error_and_refuse_start(case, tmp_path, monkeypatch):
    from tests.test_app_pages import errors, errors_next_to, open_page
    from trainers.runs import launcher

    root = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    monkeypatch.setattr(launcher, "start_run", lambda *a, **k: pytest.fail("Start must be refused"))
    state, key, message = UI_CASES[case]
    at = open_page("new_run", **{"nr_model_source": "builtin", **state})
    assert not at.exception
    assert message in errors_next_to(at, key), errors(at)
    assert errors(at).count(message) == 1
    assert at.button(key="new_run_start").disabled
    assert not root.exists()  # nothing written: no recipe under .ui-recipes, no run folder
