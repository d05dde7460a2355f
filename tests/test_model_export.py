"""``workbench export-model`` (trainers/runs/model_export.py, export_check.py, trainers/cli/model_export.py): a real
tiny run exported to ONNX, TorchScript (and OpenVINO where installed) and verified; a wrong export caught; every
refusal one line with the run left as it was. The box comparison itself is tested on plain arrays."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, fake_last_pt, make_dataset
from trainers import cli
from trainers.run_files import DATA_FILE, MODEL_EXPORT_DIR, RECIPE_FILE, VERIFY_SUFFIX
from trainers.runs import export_check, model_export
from trainers.runs.export_check import Boxes, Tolerance, compare
from trainers.runs.folder import create_run_dir

TOL = Tolerance()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes: equal snapshots, untouched folder."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---- the comparison, on plain arrays -------------------------------------------------------------------------------
def boxes(*rows: tuple[float, float, float, float, float, int]) -> Boxes:
    """Boxes from ``(x1, y1, x2, y2, conf, cls)`` rows."""
    a = np.array(rows, dtype=float).reshape(-1, 6)
    return Boxes.of(a[:, :4], a[:, 4], a[:, 5])


REF = boxes((10, 10, 50, 50, 0.9, 0), (60, 60, 90, 100, 0.6, 1), (5, 70, 30, 95, 0.1, 2))


def test_identical_boxes_pass_with_no_difference():
    found = compare([REF], [REF], ["a.png"])
    assert found.passed and found.boxes_compared == 2  # the 0.1 box is below the threshold: not compared
    assert found.max_box_diff_px == 0 and found.max_conf_diff == 0


def test_a_box_moved_beyond_the_tolerance_fails_and_the_largest_difference_is_reported():
    moved = boxes((10, 10, 50, 52.5, 0.9, 0), (60, 60.4, 90, 100, 0.6, 1))
    found = compare([REF, REF], [REF, moved], ["a.png", "b.png"])
    assert not found.passed
    assert found.max_box_diff_px == pytest.approx(2.5) and found.worst_image == "b.png"
    assert compare([REF], [boxes((10, 10, 50, 50.9, 0.9, 0), (60, 60, 90, 100, 0.6, 1))], ["a"]).passed  # 0.9 px


def test_a_confidence_beyond_the_tolerance_fails():
    found = compare([REF], [boxes((10, 10, 50, 50, 0.88, 0), (60, 60, 90, 100, 0.6, 1))], ["a"])
    assert not found.passed and found.max_conf_diff == pytest.approx(0.02)
    assert compare([REF], [boxes((10, 10, 50, 50, 0.895, 0), (60, 60, 90, 100, 0.6, 1))], ["a"]).passed


def test_a_missing_an_extra_and_a_relabelled_box_are_unmatched():
    found = compare([REF], [boxes((10, 10, 50, 50, 0.9, 0))], ["a"])
    assert (found.missing, found.extra, found.passed) == (1, 0, False)
    found = compare([REF], [boxes((10, 10, 50, 50, 0.9, 0), (60, 60, 90, 100, 0.6, 1), (0, 0, 5, 5, 0.3, 0))], ["a"])
    assert (found.missing, found.extra, found.passed) == (0, 1, False)
    found = compare([REF], [boxes((10, 10, 50, 50, 0.9, 2), (60, 60, 90, 100, 0.6, 1))], ["a"])  # class 0 -> 2
    assert (found.missing, found.extra, found.passed) == (1, 1, False)


def test_a_box_that_crossed_the_threshold_within_the_tolerance_still_matches():
    ref = boxes((10, 10, 50, 50, 0.255, 0))
    found = compare([ref], [boxes((10, 10, 50, 50, 0.246, 0))], ["a"])
    assert found.passed and found.boxes_compared == 1 and found.max_conf_diff == pytest.approx(0.009)
    assert compare([boxes((10, 10, 50, 50, 0.2, 0))], [boxes()], ["a"]).passed  # below the threshold in both


def test_verify_asks_both_models_for_boxes_down_to_the_threshold_less_the_tolerance(monkeypatch):
    asked = []

    def predict(path, images, imgsz, conf):
        asked.append((str(path), imgsz, conf))
        return [REF for _ in images]

    monkeypatch.setattr(export_check, "predict_boxes", predict)
    found = export_check.verify("best.pt", "best.onnx", ["a", "b"], 64)
    assert found.passed and found.boxes_compared == 4
    assert asked == [("best.pt", 64, pytest.approx(0.24)), ("best.onnx", 64, pytest.approx(0.24))]


def test_degenerate_boxes_of_an_undertrained_model_match_their_copy():
    # seen after one epoch on the demo: x2 < x1 (IoU 0 even with itself), and a box of zero width
    odd = boxes((22.01, 49.89, 20.23, 54.67, 0.93, 0), (40, 40, 40, 60, 0.5, 1))
    near = boxes((22.01, 49.89, 20.23, 54.67, 0.93, 0), (40, 40, 40.3, 60, 0.5, 1))
    found = compare([odd], [near], ["a"])
    assert found.passed and found.boxes_compared == 2 and found.max_box_diff_px == pytest.approx(0.3)
    assert not compare([odd], [boxes((22.01, 49.89, 21.5, 54.67, 0.93, 0), (40, 40, 40, 60, 0.5, 1))], ["a"]).passed


def test_matching_pairs_boxes_by_highest_iou_within_a_class():
    a = boxes((0, 0, 10, 10, 0.9, 0), (5, 0, 15, 10, 0.9, 0))
    b = boxes((5.2, 0, 15.2, 10, 0.9, 0), (0.1, 0, 10.1, 10, 0.9, 0))
    assert export_check.match(a, b, 0.5) == [(0, 1), (1, 0)]  # IoU 0.98 first, then 0.96
    assert compare([a], [b], ["a"]).max_box_diff_px == pytest.approx(0.2)


# ---- packages ------------------------------------------------------------------------------------------------------
def test_a_missing_or_too_old_package_is_named():
    assert model_export.Requirement(("no-such-package-xyz",), "1.0").problem() == "no-such-package-xyz is not installed"
    too_old = model_export.Requirement(("pytest",), "999.0").problem()
    assert too_old is not None and too_old.startswith("pytest ") and "pytest>=999.0" in too_old
    assert model_export.Requirement(("pytest",), "1.0").problem() is None
    assert model_export.missing_packages("torchscript") == []


# ---- refusals: one line, exit 2, the run untouched -----------------------------------------------------------------
@pytest.fixture
def fake_run(tmp_path) -> Path:
    """A run folder with a best.pt and last.pt that are no models, a recipe and the data.yaml of a tiny dataset."""
    run = create_run_dir(tmp_path / "runs", "r")
    fake_last_pt(run)
    shutil.copy(run / "weights" / "last.pt", run / "weights" / "best.pt")
    data = make_dataset(tmp_path / "ds", n_train=2, n_val=20)
    shutil.copy(data, run / DATA_FILE)
    (run / RECIPE_FILE).write_text(yaml.safe_dump({"model": "x.pt", "data": str(data), "train": {"imgsz": 100}}))
    return run


def export_cli(capsys, run: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["export-model", str(run), *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("export-model: ")]
    assert len(lines) == 1 and lines[0].startswith("workbench: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "onnx", "--imgsz", "100"], "--imgsz must be a multiple of 32"),
        (["--format", "torchscript", "--imgsz", "0"], "--imgsz must be a multiple of 32"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, fake_run, args, says):
    before = snapshot(fake_run)
    code, _, err = export_cli(capsys, fake_run, *args)
    assert code == 2 and says in one_error_line(err)
    assert snapshot(fake_run) == before


def test_an_unknown_run_is_one_line(capsys, tmp_path):
    code, _, err = export_cli(capsys, Path("nope"), "--format", "onnx", "--runs-dir", str(tmp_path))
    assert code == 2 and "run 'nope' not found" in one_error_line(err)


def test_missing_weights_name_the_file_and_the_other_checkpoint(capsys, fake_run):
    (fake_run / "weights" / "best.pt").unlink()
    before = snapshot(fake_run)
    code, _, err = export_cli(capsys, fake_run, "--format", "torchscript")
    line = one_error_line(err)
    assert code == 2 and "has no weights/best.pt" in line and "try --weights last" in line
    assert snapshot(fake_run) == before


def test_a_missing_package_names_the_extra_before_anything_is_imported_or_written(capsys, fake_run, monkeypatch):
    real = importlib.metadata.version

    def version(name):
        if name == "onnxslim":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(model_export.importlib.metadata, "version", version)
    before = snapshot(fake_run)
    code, _, err = export_cli(capsys, fake_run, "--format", "onnx")
    line = one_error_line(err)
    assert code == 2 and "onnxslim is not installed" in line and "pip install 'trainer-workbench[export]'" in line
    assert snapshot(fake_run) == before


def test_a_missing_package_fails_fast_without_torch_in_a_fresh_process(fake_run, tmp_path):
    # A package that no environment has: the refusal comes from the check, before ultralytics (or pip) is reached.
    code = (
        "import sys; from trainers.runs import model_export as m;"
        "m.FORMATS['onnx'] = m.ExportFormat('onnx', 'ONNX', '.onnx', (m.Requirement(('no-such-pkg-xyz',), '1'),), 'x');"
        "from trainers import cli; rc = cli.main(['export-model', sys.argv[1], '--format', 'onnx']);"
        "print(rc, sorted(k for k in ('torch', 'ultralytics') if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fake_run)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr
    assert "no-such-pkg-xyz is not installed" in one_error_line(out.stderr)


def test_a_run_without_its_data_yaml_cannot_be_verified(capsys, fake_run):
    (fake_run / DATA_FILE).unlink()
    code, _, err = export_cli(capsys, fake_run, "--format", "torchscript")
    assert code == 2 and "has no data.yaml" in one_error_line(err)


def test_an_exporter_failure_is_one_line_exit_1_and_nothing_is_left_behind(capsys, fake_run, tmp_path, monkeypatch):
    staging_root = tmp_path / "tmp"
    staging_root.mkdir()
    monkeypatch.setattr(model_export.tempfile, "tempdir", str(staging_root))
    before = snapshot(fake_run)
    code, _, err = export_cli(capsys, fake_run, "--format", "torchscript")  # best.pt is no model
    line = one_error_line(err)
    assert code == 1 and line.startswith("workbench: error: the TorchScript export of weights/best.pt failed: ")
    assert snapshot(fake_run) == before and not (fake_run / "export").exists()
    assert list(staging_root.iterdir()) == []  # the staging folder went too


def test_the_default_imgsz_is_the_recipes_rounded_up_as_ultralytics_rounds_it(fake_run):
    assert model_export.default_imgsz(fake_run) == 128  # train.imgsz 100
    (fake_run / RECIPE_FILE).write_text("model: x.pt\n")
    assert model_export.default_imgsz(fake_run) == 640


def test_the_sample_is_16_val_images_spread_over_the_split(fake_run):
    images = model_export.sample_images(fake_run)
    assert len(images) == 16 and len(set(images)) == 16
    assert all("/images/val/" in p for p in images) and images == sorted(images)
    assert Path(images[0]).name == "000.png" and Path(images[-1]).name in {"018.png", "019.png"}


# ---- a real tiny run -----------------------------------------------------------------------------------------------
@pytest.fixture
def run(demo_run_64, tmp_path) -> Path:
    """A copy of the trained run, for a test to export into."""
    return Path(shutil.copytree(demo_run_64, tmp_path / "runs" / "r"))


def exported(capsys, run: Path, *args: str) -> tuple[int, dict]:
    code, out, err = export_cli(capsys, run, *args, "--json")
    lines = [x for x in out.splitlines() if x.startswith("{")]
    assert len(lines) == 1, out + err
    return code, json.loads(lines[0])


def within_tolerance(record: dict, min_boxes: int = 50) -> None:
    t = record["tolerance"]
    assert record["passed"] and record["missing"] == record["extra"] == 0
    assert record["boxes_compared"] >= min_boxes  # the demo's 16 val images hold 72 boxes, found from epoch 1
    assert record["max_box_diff_px"] <= t["box_px"] and record["max_conf_diff"] <= t["conf"]
    assert t == {"box_px": 1.0, "conf": 0.01, "conf_threshold": 0.25, "match_iou": 0.5}
    print(f"{record['file']}: max box diff {record['max_box_diff_px']:.3g} px, conf {record['max_conf_diff']:.3g}")


@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime_and_predicts_the_pts_boxes(capsys, run):
    import onnxruntime as ort
    from PIL import Image

    weights = snapshot(run / "weights")
    code, record = exported(capsys, run, "--format", "onnx")
    assert code == 0
    model = run / MODEL_EXPORT_DIR / "best.onnx"
    assert record["path"] == str(model) and model.is_file()
    assert json.loads((run / MODEL_EXPORT_DIR / f"best.onnx{VERIFY_SUFFIX}").read_text()) == {
        k: v for k, v in record.items() if k not in ("path", "summary")
    }
    within_tolerance(record)
    assert record["format"] == "onnx" and record["imgsz"] == 64 and record["runtime"] == "onnxruntime"
    assert len(record["images"]) == 16 and all("/demo/images/val/" in p for p in record["images"])
    assert "passed" in record["summary"] and "tolerance 1.0 px" in record["summary"]
    assert snapshot(run / "weights") == weights  # the exporter wrote beside a copy, not beside best.pt

    # onnxruntime runs the file on its own: its best class score on an image is the .pt's most confident box there
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and inp.shape == [1, 3, 64, 64]
    image = record["images"][0]  # 128 x 128: the 64 x 64 letterbox is a plain resize
    pixels = np.asarray(Image.open(image).convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32)
    (out,) = session.run(None, {"images": pixels.transpose(2, 0, 1)[None] / 255.0})
    pt_boxes = export_check.predict_boxes(run / "weights" / "best.pt", [image], 64, conf=0.25)[0]
    assert out.shape[0] == 1 and len(pt_boxes.conf) >= 3
    best_score = out[0, 4:, :].max() if out.shape[1] < out.shape[2] else out[0, :, 4].max()
    assert best_score == pytest.approx(pt_boxes.conf.max(), abs=0.02)  # 0.02: cv2 vs PIL resampling of the input


@pytest.mark.slow
def test_torchscript_export_is_verified_the_same_way(capsys, run):
    code, record = exported(capsys, run, "--format", "torchscript", "--weights", "last")
    assert code == 0 and record["file"] == "last.torchscript" and record["runtime"] == "torch"
    within_tolerance(record)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed (export extra)")
def test_openvino_export_is_verified_the_same_way(capsys, run):
    code, record = exported(capsys, run, "--format", "openvino")
    assert code == 0 and record["file"] == "best_openvino_model" and (run / MODEL_EXPORT_DIR / record["file"]).is_dir()
    within_tolerance(record)


@pytest.mark.slow
def test_an_export_of_other_weights_is_caught_kept_and_marked(capsys, run, monkeypatch):
    """The exporter plants a wrong model: the demo's base checkpoint exported in place of the run's own."""
    from ultralytics import YOLO
    from ultralytics.engine.model import Model

    real_export = Model.export

    def wrong_export(self, **kwargs):
        staged = Path(self.ckpt_path)
        other = staged.with_name("other.pt")
        shutil.copy(DEMO_BASE, other)
        made = Path(real_export(YOLO(str(other)), **kwargs))
        return os.replace(made, staged.with_suffix(made.suffix)) or str(staged.with_suffix(made.suffix))

    monkeypatch.setattr(Model, "export", wrong_export)
    code, record = exported(capsys, run, "--format", "onnx")
    assert code == 1 and record["passed"] is False
    assert record["missing"] + record["extra"] > 0 or record["max_box_diff_px"] > 1.0
    assert "OUTSIDE THE TOLERANCE" in record["summary"]
    kept = run / MODEL_EXPORT_DIR / "best.onnx"
    assert kept.is_file() and json.loads(Path(f"{kept}{VERIFY_SUFFIX}").read_text())["passed"] is False


@pytest.mark.slow
def test_non_square_images_get_the_same_letterbox_in_both_models(capsys, run, tmp_path):
    """With ultralytics' rect letterbox the .pt would see a 128 x 56 image as 64 x 32 where the export takes 64 x 64:
    the comparison gives both the same square letterbox."""
    from PIL import Image

    val = tmp_path / "wide" / "images" / "val"
    val.mkdir(parents=True)
    for src in sorted((DEMO_DATA.parent / "images" / "val").iterdir())[:8]:
        Image.open(src).crop((0, 36, 128, 92)).save(val / src.name)
    (run / DATA_FILE).write_text(
        f"path: {tmp_path / 'wide'}\ntrain: images/val\nval: images/val\nnames: [a, b, c, d]\n"
    )
    code, record = exported(capsys, run, "--format", "onnx")
    assert code == 0 and len(record["images"]) == 8
    within_tolerance(record, min_boxes=8)
