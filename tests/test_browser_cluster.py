"""The real browser on a cluster run: ``workbench ui --cluster ADDRESS`` in headless Chromium, Start on New run with
"Run on: cluster", the dashboard follows the Ray job live, and Stop reaches the trainer through Ray.

The Ray head is the session's (tests/ray_cluster.py: real, on loopback). Chromium as in tests/test_browser_e2e.py:
never skipped, a missing browser fails with the install command.
"""

from __future__ import annotations

import time

import pytest

from tests import test_browser_e2e as e2e
from tests.conftest import wait_for
from tests.ui_server import WorkbenchUI, chromium_page
from trainers.runs.backends import ray_cluster as cluster

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # trains a model, in Chromium


@pytest.mark.timeout(420)
def test_a_cluster_run_started_in_the_browser_is_followed_live_and_stopped(ray_head, tmp_path):
    from trainers.runs.folder import list_runs
    from trainers.runs.status import read_status

    runs = tmp_path / "runs"
    ui = WorkbenchUI(runs, extra=("--cluster", ray_head)).start()
    try:
        with chromium_page() as page:
            page.goto(ui.url, wait_until="networkidle")
            page.wait_for_selector(".st-key-new_run_start button", timeout=60_000)
            # the cluster given to `workbench ui` is offered, and chosen
            assert page.locator(".st-key-nr_cluster input").input_value() == ray_head
            assert page.locator(".st-key-nr_run_on input[type=radio]").nth(1).is_checked()
            page.locator(".st-key-nr_epochs input").fill("30")
            page.locator(".st-key-nr_epochs input").press("Enter")
            page.wait_for_timeout(1500)
            page.locator(".st-key-new_run_start button").click()

            # the dashboard opens on the new run and its charts grow while the Ray job trains
            wait_for(lambda: e2e.points(page, "chart_grad_norm") > 0, 240, 0.5, "the gradient-norm chart")
            wait_for(lambda: e2e.points(page, "chart_f1") > 0, 240, 0.5, "the F1 chart")
            first = (e2e.points(page, "chart_grad_norm"), e2e.points(page, "chart_f1"))
            wait_for(
                lambda: e2e.points(page, "chart_grad_norm") > first[0] and e2e.points(page, "chart_f1") > first[1],
                120, 0.5, "the charts to grow",
            )  # fmt: skip
            (name,) = [r.name for r in list_runs(runs)]
            status = read_status(runs / name)
            assert status["backend"] == "ray" and status["cluster"] == ray_head and status["status"] == "running"
            assert cluster.job_status(ray_head, status["job_id"]) == "RUNNING"

            # Stop on the dashboard: Ray's stop_job, the trainer's clean stop
            t0 = time.monotonic()
            page.locator(".st-key-run_stop button").click()
            wait_for(lambda: read_status(runs / name)["status"] == "stopped", 60, 0.5, "the run to stop")
            took = time.monotonic() - t0
            wait_for(lambda: "stopped" in page.locator("body").inner_text().lower(), 30, 0.5, "'stopped' on the page")
            wait_for(lambda: cluster.job_status(ray_head, status["job_id"]) == "STOPPED", 30, 0.5, "Ray: STOPPED")
            print(f"browser stop -> stopped in {took:.1f} s")
    finally:
        if ui.proc is not None:
            ui.stop()
