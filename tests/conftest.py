"""Shared fixtures: offline ultralytics, a tiny generated detection dataset, a helper to train for real (tiny)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# ultralytics reads these at import time: set them before any test imports it.
from trainers.offline import apply_offline_env  # noqa: E402

apply_offline_env(Path(os.environ.get("WORKBENCH_TEST_CONFIG", "/tmp/workbench-test-yolo-config")))
os.environ.setdefault("YOLO_VERBOSE", "False")

# The markers (slow, browser, cluster) and their guard; one private Ray head for the whole session, shared by every
# test that asks for it (started on first use only).
from tests import markers  # noqa: E402
from tests.ray_cluster import ray_head, ray_head_process  # noqa: E402, F401


@pytest.hookimpl(tryfirst=True)  # before -m deselects: a test that uses a Ray head is deselected by "not cluster"
def pytest_collection_modifyitems(items):
    markers.mark_by_fixtures(items)


@pytest.hookimpl(tryfirst=True)  # before fixtures are set up: the head fixture itself checks the test's marker
def pytest_runtest_setup(item):
    markers.now_running(item)


NAMES = ["disc", "block", "ring"]


def make_dataset(root: Path, n_train: int = 16, n_val: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Write a small 3-class dataset (coloured shapes) in ultralytics layout and return its data.yaml."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    colours = [(230, 40, 40), (40, 220, 40), (40, 80, 240)]
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.fromarray((rng.random((size, size, 3)) * 50).astype("uint8"))
            draw, lines = ImageDraw.Draw(im), []
            for k in range(3):
                c = k if i % 2 == 0 else int(rng.integers(0, 3))
                s = int(rng.integers(size // 4, size // 2))
                x, y = int(rng.integers(0, size - s)), int(rng.integers(0, size - s))
                (draw.ellipse if c != 1 else draw.rectangle)([x, y, x + s, y + s], fill=colours[c])
                lines.append(f"{c} {(x + s / 2) / size:.5f} {(y + s / 2) / size:.5f} {s / size:.5f} {s / size:.5f}")
            im.save(root / "images" / split / f"{i:03d}.png")
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    return data


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    """An empty runs root that the UI pages (and the CLI) use through $WORKBENCH_RUNS_DIR."""
    root = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tiny"))


TINY_TRAIN = {
    "epochs": 1,
    "imgsz": 64,
    "batch": 8,
    "nbs": 8,  # one optimizer step per batch, so steps are countable
    "workers": 0,
    "plots": False,
    "val": True,
    "seed": 0,
    "deterministic": True,
}


def run_trainer(recipe: dict, tmp_path: Path, callbacks: dict | None = None, family: str | None = None, **kw):
    """Build the composed trainer for ``recipe`` in ``tmp_path`` and train; returns the trainer."""
    import yaml

    from trainers.datasets.data_yaml import load_dataset, resolved_data_dict
    from trainers.offline import quiet_integrations
    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    quiet_integrations()  # as the training process does: no Ray Tune / MLflow callbacks in the trainer
    r = Recipe.from_dict(recipe)
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data.yaml"  # as the runner does: absolute paths, so ultralytics never resolves against CWD
    data.write_text(yaml.safe_dump(resolved_data_dict(load_dataset(r.data))))
    cls = build_trainer_class(r, family, telemetry_path=str(tmp_path / "telemetry.jsonl"), **kw)
    trainer = cls(
        overrides={
            **r.train,
            "model": r.model,
            "data": str(data),
            "project": str(tmp_path),
            "name": "run",
            "exist_ok": True,
        }
    )
    for event, fns in (callbacks or {}).items():
        for fn in fns if isinstance(fns, list) else [fns]:
            trainer.add_callback(event, fn)
    trainer.train()
    return trainer


def recipe_for(data: Path, model: str = "yolo26n.yaml", train: dict | None = None, **customizations) -> dict:
    return {
        "model": model,
        "data": str(data),
        "train": {**TINY_TRAIN, **(train or {})},
        "customizations": customizations,
    }


DEMO_DATA = REPO / "assets" / "demo" / "data.yaml"
DEMO_BASE = REPO / "assets" / "demo_base.pt"


@pytest.fixture(scope="session")
def demo() -> tuple[Path, Path]:
    """The bundled demo dataset and its base checkpoint (trained on other images: a fine-tune shows P/R/F1 ~0.99 for
    circles, squares and triangles from epoch 1, and 0 for the rare magenta crosses at first)."""
    assert DEMO_DATA.is_file() and DEMO_BASE.is_file(), "run assets/make_demo_data.py and assets/train_demo_base.py"
    return DEMO_DATA, DEMO_BASE


def step_rows(run_dir: Path) -> list[dict]:
    """Every standing step a run wrote to its step store (``<run>/steps``), shaped like a documented ``step`` event:
    ``{"epoch", "step", "t", "lr": {group}, "grad_norm", "grad_norms": {group}, "clipped", "max_norm", "loss": {}}``.
    """
    import math

    from trainers.telemetry.steps import StepStore

    folder = Path(run_dir) / "steps"
    if not folder.is_dir():
        return []
    table = StepStore(folder).to_table().to_pydict()
    rows = []
    for i in range(len(table["step"])):
        row: dict = {"epoch": table["epoch"][i], "step": table["step"][i], "t": table["t"][i]}
        row.update(lr={}, grad_norms={}, loss={})
        for name, values in table.items():
            v = values[i]
            if name.startswith("lr/"):
                row["lr"][name[3:]] = v
            elif name.startswith("grad_norm/"):
                row["grad_norms"][name[10:]] = v
            elif name.startswith("loss/"):
                row["loss"][name[5:]] = v
        row["grad_norm"] = table["grad_norm"][i]
        row["clipped"] = bool(table["clipped"][i])
        mx = table["max_norm"][i]
        row["max_norm"] = None if mx is None or math.isnan(mx) else mx
        rows.append(row)
    return rows


def fake_last_pt(run_dir: Path) -> Path:
    """A ``weights/last.pt`` that passes the resume checks (a readable zip), for runs that never really trained."""
    import zipfile

    path = Path(run_dir) / "weights" / "last.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"not a model")
    return path


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout`` seconds.

    A deadline, not a delay: it returns as soon as the condition holds, so the default is generous for a loaded
    2-core machine (a Python process that imports the trainer can take 10 s there to get going)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")


@pytest.fixture(scope="session")
def demo_run_64(tmp_path_factory, demo) -> Path:
    """A finished run folder: one epoch at imgsz 64 on the demo, fine-tuned from its base checkpoint (confident boxes
    from epoch 1), trained by ``workbench train`` in a subprocess. Read-only: copy it to change it."""
    import subprocess

    import yaml

    root = tmp_path_factory.mktemp("demo-run-64")
    recipe = root / "recipe.yaml"
    train = {"epochs": 1, "imgsz": 64, "batch": 16, "nbs": 16, "workers": 0, "plots": False}
    recipe.write_text(yaml.safe_dump({"model": str(demo[1]), "data": str(demo[0]), "train": train}))
    out = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(root), "--name", "r"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return root / "r"
