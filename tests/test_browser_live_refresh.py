"""A live dashboard in headless Chromium refreshes only while its tab is visible (issue 20, "hidden tabs cost nothing").

Headless Chromium reports every tab as visible, so the page's ``document.visibilityState`` is driven by the test (an
init script overrides it and fires ``visibilitychange``, as the browser does when a tab goes to the background). What
is counted is what reaches the server: the WebSocket messages the page sends (a refresh is one). The "training
process" is this test: the run is ``running`` under this process' pid and the test appends the epochs.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import wait_for
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.test_doctor_ui import DIVERGING
from tests.ui_server import COUNT_SENDS, VISIBILITY, WorkbenchUI, chromium_page
from trainers.run_files import TELEMETRY_FILE
from trainers.runs.status import write_status
from trainers.telemetry.events import TelemetryWriter

pytestmark = pytest.mark.browser  # synthetic run: nothing trains
REFRESH_S = 2.0  # app/app_pages/dashboard.py REFRESH_S (a Streamlit page: not imported here)


def page_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def add_epoch(run, n: int) -> None:
    with TelemetryWriter(run / TELEMETRY_FILE) as out:
        ev = epoch(n)
        out.emit("epoch", **{k: v for k, v in ev.items() if k not in ("v", "event", "t")})
    write_status(run, epoch=n)


@pytest.mark.timeout(300)
def test_a_hidden_dashboard_tab_sends_nothing_and_catches_up_when_shown(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "live", DIVERGING, [epoch(1), epoch(2)])
    write_status(run, status="running", pid=os.getpid(), epoch=2, epochs=6, best_metric=None, best_epoch=None)
    ui = WorkbenchUI(runs).start()
    try:
        with chromium_page(width=1400, height=1200) as page:
            page.context.add_init_script(VISIBILITY)
            page.context.add_init_script(COUNT_SENDS)
            page.goto(f"{ui.url}/dashboard?run=live", wait_until="domcontentloaded")
            wait_for(lambda: "2/6" in (t := page_text(page)) and "Losses" in t, 90, 0.2, "the dashboard at epoch 2")

            # visible: the page follows the run by itself
            add_epoch(run, 3)
            wait_for(lambda: "3/6" in page_text(page), 6 * REFRESH_S, 0.1, "epoch 3 on a visible tab")

            # hidden: three refresh periods and a new epoch, and not one message to the server
            page.evaluate("window.__setHidden(true)")
            time.sleep(REFRESH_S)  # a refresh already on its way when the tab was hidden may still land
            sent = page.evaluate("window.__wsSent")
            add_epoch(run, 4)
            time.sleep(3 * REFRESH_S)
            assert page.evaluate("window.__wsSent") == sent, "a hidden tab asked the server for refreshes"
            assert "3/6" in page_text(page) and "4/6" not in page_text(page)

            # shown again: a refresh is asked for in the visibilitychange handler itself (not at the next period),
            # so the tick count has moved by the time the event's dispatch returns
            ticks = page.evaluate("window.__wbLiveTicks")
            shown = time.monotonic()
            assert page.evaluate("window.__setHidden(false); window.__wbLiveTicks") == ticks + 1
            wait_for(lambda: "4/6" in page_text(page), 5 * REFRESH_S, 0.05, "epoch 4 once the tab is shown")
            print(f"caught up {time.monotonic() - shown:.2f} s after the tab was shown")
            assert page.evaluate("window.__wsSent") > sent
    finally:
        ui.stop()
