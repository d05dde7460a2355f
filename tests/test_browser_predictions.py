"""The dashboard's Predictions tab in headless Chromium (issue 19 item 2): the sample images drawn with their ground
truth and predictions at the threshold, where the evidence puts them, and the legend; for a finished run, for a live
run that gains an epoch while it is watched, and for a real 3-epoch demo run (its screenshot is the README's).

The finished and live runs are evidence folders written by the test (tests/prediction_evidence.py: the demo's real
images, boxes known by construction); the live run is ``running`` under this process, which writes its next epoch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import prediction_evidence as pe
from tests.conftest import REPO, wait_for
from tests.test_browser_layout import settle
from tests.ui_server import WorkbenchUI, chromium_page
from trainers.runs.status import write_status
from trainers.telemetry.evidence import GT, PRED, Evidence

pytestmark = [pytest.mark.browser]
SCREENSHOT = REPO / "assets" / "screenshot-predictions.png"
TALL = 7000  # a window taller than the dashboard, for screenshots of the whole tab (tab_screenshot)
JS_TILES = """() => [...document.querySelectorAll('figure.wb-tile')].filter(f => !f.closest('.wb-large')).map(f => {
    const img = f.querySelector('img'), pic = f.querySelector('.wb-pic').getBoundingClientRect();
    return {image: +f.dataset.image, flagged: f.classList.contains('wb-flagged'),
            loaded: !!img && img.complete && img.naturalWidth > 0, width: pic.width,
            boxes: [...f.querySelectorAll('.wb-box')].map(b => { const r = b.getBoundingClientRect();
                return {kind: b.classList.contains('wb-pred') ? 'pred' : 'gt', dashed: getComputedStyle(b).borderStyle,
                        place: [(r.left - pic.left) / pic.width, (r.top - pic.top) / pic.height,
                                (r.right - pic.left) / pic.width, (r.bottom - pic.top) / pic.height]}; })}; })"""


def tiles(page) -> list[dict]:
    return page.evaluate(JS_TILES)


def legend(page) -> str:
    return page.locator(".wb-legend").inner_text() if page.locator(".wb-legend").count() == 1 else ""


def check_drawn(page, boxes: dict, n_images: int, conf: float, size: tuple[int, int] | None = None) -> None:
    """Every sample image is a loaded picture with the evidence's ground truth and its predictions at ``conf`` drawn:
    ground truth solid, predictions dashed, each where its pixels put it (within 1.5 px of the image)."""
    shown = tiles(page)
    assert sorted(t["image"] for t in shown) == list(range(n_images))
    for t in shown:
        i = t["image"]
        assert t["loaded"] and t["width"] > 100, t
        on = boxes["image"] == i
        want = {
            "gt": on & (boxes["kind"] == GT),
            "pred": on & (boxes["kind"] == PRED) & (boxes["conf"] >= conf),
        }
        for kind, rows in want.items():
            drawn = [b for b in t["boxes"] if b["kind"] == kind]
            assert len(drawn) == int(rows.sum()), (i, kind, len(drawn), int(rows.sum()))
            assert {b["dashed"] for b in drawn} <= {"dashed" if kind == "pred" else "solid"}
            if size is None:
                continue
            w, h = size
            got = sorted(tuple(round(v * s, 1) for v, s in zip(b["place"], (w, h, w, h), strict=True)) for b in drawn)
            xyxy = sorted(zip(*(boxes[k][rows].tolist() for k in ("x1", "y1", "x2", "y2")), strict=True))
            for g, x in zip(got, xyxy, strict=True):
                assert max(abs(a - b) for a, b in zip(g, x, strict=True)) <= 1.5, (i, kind, g, x)


def check_legend(page, conf: float) -> None:
    text = legend(page)
    assert "ground truth (solid, class above)" in text and f"confidence ≥ {conf:.2f}" in text, text
    styles = page.evaluate(
        "() => [...document.querySelectorAll('.wb-legend .wb-swatch')].map(s => getComputedStyle(s).borderStyle)"
    )
    assert styles == ["solid", "dashed"]


def epoch_shown(page, run: str) -> str | None:
    """The epoch slider's value as it reads it out (None: no slider)."""
    return page.evaluate(
        "run => { const i = document.querySelector(`[class*='st-key-pred_epoch_w_${run}_'] input[type='range']`);"
        " return i ? i.getAttribute('aria-valuetext') : null; }",
        run,
    )


def tab_screenshot(page, path: Path) -> Path:
    """The section's title, its tabs and the Predictions tab, whole (the window must be taller than the page:
    Streamlit scrolls inside a box of its own, so a screenshot sees the window only)."""
    top = page.get_by_text("What the model sees").bounding_box()
    panel = page.locator("[role='tabpanel']").first.bounding_box()
    assert top and panel
    assert panel["y"] + panel["height"] < page.viewport_size["height"], "the window is too short for the whole tab"
    clip = {"x": panel["x"] - 8, "y": top["y"] - 8, "width": panel["width"] + 16,
            "height": panel["y"] + panel["height"] - top["y"] + 16}  # fmt: skip
    page.screenshot(path=str(path), clip=clip)
    return path


def open_dashboard(page, ui, run: str) -> None:
    # not "networkidle": a live page refreshes every 2 s and need not go quiet
    page.goto(f"{ui.url}/dashboard?run={run}", wait_until="domcontentloaded", timeout=120_000)
    wait_for(lambda: len(tiles(page)) > 0, 120, 0.25, "the Predictions tiles")


@pytest.mark.timeout(300)
def test_a_finished_run_shows_every_sample_image_with_both_kinds_of_boxes(tmp_path):
    runs = tmp_path / "runs"
    run = pe.evidence_run(runs, "done")
    ui = WorkbenchUI(runs).start()
    try:
        with chromium_page(width=1400, height=TALL) as page:
            open_dashboard(page, ui, "done")
            settle(page, "figure.wb-tile")
            check_drawn(page, Evidence(run).epoch("final").boxes, len(pe.IMAGES), 0.25, (pe.SIZE, pe.SIZE))
            check_legend(page, 0.25)
            assert not any(t["flagged"] for t in tiles(page))  # final: every box predicted right
            page.locator(f".st-key-pred_open_done_{pe.WORST_025[0]} button").first.click()
            wait_for(lambda: page.locator(".wb-large").count() == 2, 60, 0.25, "the image large at two epochs")
            tab_screenshot(page, tmp_path / "predictions-done.png")
    finally:
        ui.stop()


@pytest.mark.timeout(300)
def test_a_live_run_gains_an_epoch_and_keeps_the_threshold(tmp_path):
    runs = tmp_path / "runs"
    run = pe.evidence_run(runs, "live", epochs=(1,), running=True)
    boxes1 = Evidence(run).epoch(1).boxes
    ui = WorkbenchUI(runs).start()
    try:
        with chromium_page(width=1400, height=TALL) as page:
            open_dashboard(page, ui, "live")
            wait_for(lambda: sum(t["flagged"] for t in tiles(page)) == 5, 60, 0.25, "epoch 1's five wrong images")
            check_drawn(page, boxes1, len(pe.IMAGES), 0.25, (pe.SIZE, pe.SIZE))
            check_legend(page, 0.25)
            thumb = page.locator(".st-key-pred_conf_w_live input[type='range']")
            thumb.focus()
            for _ in range(5):  # 0.25 -> 0.50 in steps of 0.05
                thumb.press("ArrowRight")
            wait_for(lambda: "≥ 0.50" in legend(page), 60, 0.25, "the threshold at 0.50")
            wait_for(lambda: [t["image"] for t in tiles(page)] == pe.WORST_050, 60, 0.25, "worst first at 0.50")
            check_drawn(page, boxes1, len(pe.IMAGES), 0.5)

            pe.add_epoch(run, 2)  # the training process validates epoch 2
            write_status(run, epoch=2)
            wait_for(lambda: epoch_shown(page, "live") == "epoch 2", 60, 0.25, "the epoch slider at the new epoch")
            wait_for(lambda: not any(t["flagged"] for t in tiles(page)), 60, 0.25, "epoch 2's tiles")
            check_drawn(page, Evidence(run).epoch(2).boxes, len(pe.IMAGES), 0.5, (pe.SIZE, pe.SIZE))
            check_legend(page, 0.5)  # the user's threshold survived the new epoch
            tab_screenshot(page, tmp_path / "predictions-live.png")
    finally:
        ui.stop()


@pytest.mark.slow  # trains the demo for 3 epochs (~30 s)
@pytest.mark.timeout(600)
def test_a_real_demo_run_shows_its_predictions(tmp_path):
    runs = tmp_path / "runs"
    recipe = tmp_path / "demo.yaml"
    recipe.write_text(
        f"model: {REPO / 'assets' / 'demo_base.pt'}\ndata: {REPO / 'assets' / 'demo' / 'data.yaml'}\n"
        "train: {epochs: 3, imgsz: 128, batch: 16, workers: 0}\ncustomizations:\n  per_class_f1: {}\n"
    )
    cmd = [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(runs), "--name", "demo"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    ev = Evidence(runs / "demo")
    assert ev.epochs == [1, 2, 3, "final"] and ev.images
    ui = WorkbenchUI(runs).start()
    try:
        with chromium_page(width=1400, height=TALL) as page:
            open_dashboard(page, ui, "demo")
            settle(page, "figure.wb-tile")
            sizes = {(im["width"], im["height"]) for im in ev.images}
            check_drawn(page, ev.epoch("final").boxes, len(ev.images), 0.25, sizes.pop() if len(sizes) == 1 else None)
            check_legend(page, 0.25)
            worst = tiles(page)[0]["image"]
            page.locator(f".st-key-pred_open_demo_{worst} button").first.click()
            wait_for(lambda: page.locator(".wb-large").count() == 2, 60, 0.25, "the image large at two epochs")
            settle(page, ".wb-large")
            shot = tab_screenshot(page, tmp_path / "screenshot-predictions.png")
            if os.environ.get("WORKBENCH_UPDATE_SCREENSHOT"):  # 256 colours: a third of the size, for the README
                from PIL import Image

                with Image.open(shot) as im:
                    im.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(SCREENSHOT, optimize=True)
    finally:
        ui.stop()
