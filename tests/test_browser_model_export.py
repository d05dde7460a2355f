"""Export from the Runs page in headless Chromium (issue 19, "the same from the Runs page"): the Export popover starts
``workbench export-model`` on a real tiny run, the page shows it running and then the verification line, and the
download button hands over the very file the command wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.ui_server import chromium_page, running_ui
from trainers.run_files import MODEL_EXPORT_DIR, VERIFY_SUFFIX

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow: the run it exports is trained first (demo_run_64)


def page_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


@pytest.mark.timeout(600)
def test_export_onnx_from_the_runs_page_and_download_the_verified_file(tmp_path, demo_run_64):
    import json

    runs = tmp_path / "runs"
    run = Path(shutil.copytree(demo_run_64, runs / "r"))
    with running_ui(runs) as ui, chromium_page(width=1400, height=1200) as page:
        page.goto(f"{ui.url}/runs", wait_until="domcontentloaded")
        popover = page.locator('[data-testid="stPopover"]').filter(has_text="Export")
        popover.wait_for(timeout=90_000)
        start = page.locator(".st-key-runs_export_r button:visible").first  # the fragment keeps a stale copy too

        def export_open() -> bool:
            """Click Export until its controls show. While the doctor's first scan of the run refreshes the list
            (CI, loaded), a click can land as the row redraws and open nothing, or the Note & tags popover beside it;
            Escape closes whatever opened, and the next look clicks again."""
            if start.is_visible():
                return True
            page.keyboard.press("Escape")
            popover.locator("button").first.click()
            return start.is_visible()

        wait_for(lambda: "checking the dataset" not in page_text(page), 90, 0.5, "the doctor's first scan to end")
        wait_for(export_open, 60, 2.0, "the Export popover's controls")
        assert "ONNX" in page_text(page) and "best.pt" in page_text(page)  # the defaults: ONNX, best.pt
        start.click()

        def result_shown() -> bool:
            text = page_text(page)
            if "passed" in text or "OUTSIDE" in text or "error" in text.lower():
                return True
            if not start.is_visible() and "Exporting best.pt of r" not in text:  # a rerun closed the popover
                popover.locator("button").first.click()
            return False

        wait_for(result_shown, 300, 1.0, "the export's result on the page")
        text = page_text(page)
        record = json.loads((run / MODEL_EXPORT_DIR / f"best.onnx{VERIFY_SUFFIX}").read_text())
        assert record["passed"], record
        assert "best.onnx: verified on 16 val images with onnxruntime" in text and "passed" in text
        assert "tolerance 1.0 px" in text

        download = page.get_by_role("button", name="best.onnx (verified)")
        with page.expect_download(timeout=60_000) as got:
            download.click()
        saved = tmp_path / "downloaded.onnx"
        got.value.save_as(saved)
        assert got.value.suggested_filename == "r-best.onnx"
        assert saved.read_bytes() == (run / MODEL_EXPORT_DIR / "best.onnx").read_bytes()
