"""Sign-in in Chromium (issue 20 item 1): ``workbench ui --host 0.0.0.0`` shows a browser only the sign-in form until
the token is given; the printed URL signs in, leaves no token in the address bar, keeps an HttpOnly cookie, and the
app works through the proxy (its websocket included): the Runs page lists the run placed in the runs folder."""

from __future__ import annotations

import pytest

from tests.test_app_pages import make_run
from tests.test_ui_auth import GatedUI
from tests.ui_server import chromium_page
from trainers.cli import ui_gate
from trainers.statuses import RunStatus

pytestmark = pytest.mark.browser

RUN_NAME = "shared-box-run-51c2"


def test_chromium_sees_only_the_form_until_the_token_then_the_app(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, RUN_NAME, "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)
    ui = GatedUI(runs, extra=("--host", "0.0.0.0")).start(timeout=180)
    try:
        with chromium_page() as page:
            for path in (f"/dashboard?run={RUN_NAME}", "/runs"):
                page.goto(f"{ui.url}{path}", wait_until="networkidle")
                assert page.locator("#token").is_visible()
                # nothing of the app: no run name shown, no Streamlit on the page (its address stays in the form)
                assert RUN_NAME not in page.inner_text("body") and "stApp" not in page.content()
            # a wrong token in the form is refused, the right one signs in and lands where the user was going
            page.fill("#token", "w" * 43)
            page.fill("#name", "Ada L.")
            page.click("button[type=submit]")
            page.wait_for_selector("text=That token is not valid", timeout=60_000)
            assert page.context.cookies() == []
            page.fill("#token", ui.token)
            page.fill("#name", "Ada L.")
            page.click("button[type=submit]")
            page.wait_for_selector(f"text={RUN_NAME}", timeout=120_000)  # the Runs page, over the relayed websocket
            assert page.url.startswith(f"{ui.url}/runs")  # where the form was opened
            (cookie,) = [c for c in page.context.cookies() if c["name"] == ui_gate.SESSION_COOKIE]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and ui.token not in cookie["value"]
            readable = page.evaluate("document.cookie")  # the name (and Streamlit's XSRF), never the session
            assert f"{ui_gate.USER_COOKIE}=Ada%20L." in readable and ui_gate.SESSION_COOKIE not in readable

        with chromium_page() as page:  # a fresh browser: the printed URL signs in and the token leaves the address
            page.goto(f"{ui.url}/runs?token={ui.token}", wait_until="domcontentloaded")
            page.wait_for_selector(f"text={RUN_NAME}", timeout=120_000)
            assert page.url == f"{ui.url}/runs" and ui.token not in page.url
        log = ui.log.read_text()
        assert log.count(ui.token) == 1  # the start line only: neither Streamlit nor the proxy logged a request URL
        files = [p for p in runs.rglob("*") if p.is_file()]
        assert not [p for p in files if ui.token.encode() in p.read_bytes()]
    finally:
        ui.stop()
