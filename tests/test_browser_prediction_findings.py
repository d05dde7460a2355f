"""The prediction findings in headless Chromium: the dashboard lists them with the other findings, and the
missing-labels finding's Show images opens the Dataset page on just the images it names, in its order.

Synthetic run (telemetry and evidence written by the test, nothing trains); the images are a generated dataset's.
``WORKBENCH_SHOT_DIR=DIR`` saves the two screenshots there.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import make_dataset, wait_for
from tests.test_prediction_findings_ui import run_with_evidence
from tests.ui_server import WorkbenchUI, chromium_page

pytestmark = pytest.mark.browser

NAMES = "() => [...document.querySelectorAll('.st-key-ds_grid .wb-tile .wb-name')].map(n => n.textContent)"


def page_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def shot(page, name: str) -> None:
    if folder := os.environ.get("WORKBENCH_SHOT_DIR"):
        page.screenshot(path=os.path.join(folder, name), full_page=True)


@pytest.mark.timeout(300)
def test_show_images_opens_the_dataset_page_on_the_missing_label_candidates(tmp_path):
    data = make_dataset(tmp_path / "data")
    runs = tmp_path / "runs"
    run_with_evidence(runs, data)
    ui = WorkbenchUI(runs, env={"WORKBENCH_DATASETS_DIR": str(tmp_path / "datasets")}).start()
    try:
        with chromium_page(width=1400, height=1100) as page:
            page.goto(f"{ui.url}/dashboard?run=seen")
            wait_for(lambda: "Likely missing labels in 2 val images" in page_text(page), 90, 0.2, "the findings")
            text = page_text(page)
            assert "'square' predicted as 'circle' for 50% of its boxes" in text
            link = page.get_by_role("link", name="Show images")
            wait_for(lambda: link.count() == 1, 90, 0.2, "the Show images link")  # the page may still be drawing
            link.scroll_into_view_if_needed()
            shot(page, "dashboard-prediction-findings.png")
            link.click()
            wait_for(lambda: page.evaluate(NAMES), 90, 0.2, "the Dataset page's grid")
            wait_for(lambda: len(page.evaluate(NAMES)) == 2, 30, 0.2, "only the linked images")
            names = [n.split(" · ")[0].rsplit("/", 1)[-1] for n in page.evaluate(NAMES)]
            assert names == ["005.png", "002.png"], names
            assert "Showing the 2 images the link names (split val)" in page_text(page)
            assert "image=" in page.url and "split=val" in page.url
            shot(page, "dataset-linked-images.png")
    finally:
        ui.stop()
