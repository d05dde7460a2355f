"""An 80-class run in headless Chromium (issue 10): no chart takes more than 900 px of the page, no legend lists more
than 25 entries, and a class chosen in the picker is drawn. Before, the F1 chart had 81 traces and an 80-entry legend
that squeezed the plot, and the heatmap grew to 1,820 px.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import REPO, TINY_TRAIN, wait_for
from tests.ui_server import WorkbenchUI, chart_boxes, chromium_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # trains a model, in Chromium
CLASSES = 80


def many_class_dataset(root: Path, nc: int = CLASSES, n_train: int = 16, n_val: int = 8, size: int = 64) -> Path:
    """Noise images with boxes of ``nc`` classes (every class in train, a few missing from val)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")).save(root / f"images/{split}/{i}.png")
            classes = rng.integers(0, nc, 8) if split == "val" else (np.arange(8) + 8 * i) % nc
            rows = [f"{c} {rng.uniform(0.3, 0.7):.4f} {rng.uniform(0.3, 0.7):.4f} 0.2000 0.2000" for c in classes]
            (root / f"labels/{split}/{i}.txt").write_text("\n".join(rows) + "\n")
    names = [f"class_{i:02d}" for i in range(nc)]
    (root / "data.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                                    "names": names}))  # fmt: skip
    return root / "data.yaml"


@pytest.mark.timeout(600)
def test_an_80_class_run_keeps_every_chart_readable(tmp_path):
    data = many_class_dataset(tmp_path / "data")
    recipe = tmp_path / "classes80.yaml"
    train = {**TINY_TRAIN, "epochs": 2}
    recipe.write_text(yaml.safe_dump({"model": "yolo26n.yaml", "data": str(data), "train": train,
                                      "customizations": {"per_class_f1": {}}}))  # fmt: skip
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(runs), "--name", "c80"],
        capture_output=True, text=True, cwd=REPO, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    ui = WorkbenchUI(runs).start()
    try:
        with chromium_page(width=1400, height=1000) as page:
            page.goto(f"{ui.url}/dashboard?run=c80", wait_until="networkidle")
            wait_for(lambda: "chart_f1_heatmap" in chart_boxes(page), 90, 0.5, "the per-class charts")
            wait_for(lambda: chart_boxes(page)["chart_f1"]["traces"], 30, 0.5, "the F1 chart's traces")
            boxes = chart_boxes(page)
            for key, box in boxes.items():
                assert box["box"] <= 900, f"{key} takes {box['box']:.0f} px of the page"
                assert box["legend"] <= 25, f"{key} has a legend of {box['legend']} entries"
            heat = boxes["chart_f1_heatmap"]
            assert heat["figure"] > heat["box"], "80 classes at a fixed row height: the heatmap scrolls in its box"
            f1 = boxes["chart_f1"]["traces"]
            assert "mean F1" in f1 and len(f1) <= 21
            page.screenshot(path=str(tmp_path / "classes80.png"), full_page=True)

            # choose a class that is not drawn yet: type in the picker's search and pick it
            wanted = next(f"class_{i:02d}" for i in range(CLASSES) if f"class_{i:02d}" not in f1)
            picker = page.locator(".st-key-dash_classes_c80")
            # in the middle of the window, as a person scrolls to it: at the window's bottom edge the list of options
            # does not open (seen once the doctor's findings and the note line pushed the picker down)
            picker.evaluate("e => e.scrollIntoView({block: 'center'})")
            picker.locator("input").fill(wanted)
            page.locator('[role="option"]', has_text=wanted).first.click()
            page.keyboard.press("Escape")
            wait_for(lambda: wanted in chart_boxes(page)["chart_f1"]["traces"], 30, 0.5, f"{wanted} drawn")
            assert wanted in picker.inner_text()
    finally:
        ui.stop()
