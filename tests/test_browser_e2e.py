"""One real-browser end-to-end test: `workbench ui` in headless Chromium, start a customized demo run, watch the
live charts grow, restart the UI server mid-run and reattach, stop the run.

Needs Debian's chromium (`apt-get install -y chromium`; `.ci/run` installs it) and Python playwright. It is never
skipped: a missing browser fails the test with the install command.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import REPO, step_rows, wait_for
from tests.ui_server import WorkbenchUI, chromium_page, points, trace_names

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # trains a model, in Chromium
SCREENSHOT = REPO / "assets" / "screenshots" / "dashboard.png"


def test_launch_watch_restart_reattach_and_stop_in_chromium(tmp_path):
    from trainers.runs.folder import list_runs
    from trainers.runs.status import read_status

    runs = tmp_path / "runs"
    ui = WorkbenchUI(runs).start()
    port = ui.port
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.wait_for_selector(".st-key-new_run_start button", timeout=60_000)
            # per-class F1 and gradient clipping are on by default (the form's ON_BY_DEFAULT); turn on per-layer LR
            assert page.locator(".st-key-nr_per_class_f1_on input").is_checked()
            assert page.locator(".st-key-nr_grad_clip_on input").is_checked()
            page.locator(".st-key-nr_layer_lr_on label").first.click()
            page.wait_for_function("() => document.querySelector('.st-key-nr_layer_lr_on input').checked")
            page.locator(".st-key-nr_epochs input").fill("40")
            page.locator(".st-key-nr_epochs input").press("Enter")
            page.wait_for_timeout(1500)
            page.locator(".st-key-new_run_start button").click()

            # the dashboard opens on the new run; charts appear and grow while it is live
            wait_for(lambda: points(page, "chart_grad_norm") > 0, 180, 0.5, "the gradient-norm chart")
            wait_for(lambda: points(page, "chart_f1") > 0, 180, 0.5, "the F1 chart")
            # the charts draw one by one: on a loaded machine the LR chart was still empty here once; wait for it too
            named = lambda: [n for n in trace_names(page, "chart_lr") if n.startswith(("head/", "backbone/"))]  # noqa: E731
            wait_for(lambda: len(named()) >= 2, 60, 0.5, "the LR chart's per-layer groups")
            first = (points(page, "chart_grad_norm"), points(page, "chart_f1"))
            wait_for(
                lambda: points(page, "chart_grad_norm") > first[0] and points(page, "chart_f1") > first[1],
                120,
                0.5,
                "the charts to grow",
            )
            assert "clip" in " ".join(trace_names(page, "chart_grad_norm")).lower() or page.locator(
                ".st-key-chart_grad_norm"
            ).inner_text().lower().count("clip")
            (name,) = [r.name for r in list_runs(runs)]
            run_dir = runs / name
            assert read_status(run_dir)["status"] == "running"
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            if os.environ.get("WORKBENCH_UPDATE_SCREENSHOT"):
                shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)

            # restart the UI server mid-run: the run goes on, and the dashboard reattaches to every event
            ui.stop()
            assert read_status(run_dir)["status"] == "running"
            ui.start()
            page.goto(f"http://127.0.0.1:{port}/dashboard?run={name}", wait_until="networkidle")
            wait_for(lambda: points(page, "chart_grad_norm") > 0, 60, 0.5, "the reattached gradient-norm chart")
            steps_on_disk = len(step_rows(run_dir))
            wait_for(lambda: points(page, "chart_grad_norm") >= steps_on_disk, 30, 0.5, "every logged step to show")

            # stop from the dashboard; the status shows stopped
            page.locator(".st-key-run_stop button").click()
            wait_for(lambda: read_status(run_dir)["status"] == "stopped", 60, 0.5, "the run to stop")
            wait_for(lambda: "stopped" in page.locator("body").inner_text().lower(), 30, 0.5, "'stopped' on the page")
    finally:
        if ui.proc is not None:
            ui.stop()
