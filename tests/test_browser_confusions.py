"""The dashboard's Confusions tab at 80 classes in headless Chromium (issue 19's acceptance: "Confusions shows top pairs
at 80 classes"): the top pair, its share and its epochs are read off the page as a user sees them. Evidence written
by the evidence module's own writer (no training)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.evidence_runs import diagonal, names_of, taken_for, write_evidence
from tests.test_app_pages import make_run
from tests.ui_server import chromium_page, running_ui

pytestmark = pytest.mark.browser

JS_PAIRS = """() => [...document.querySelectorAll('.st-key-ev_pairs tbody tr')]
                      .map(tr => [...tr.querySelectorAll('td, th')].map(td => td.innerText.trim()))"""


@pytest.mark.timeout(300)
def test_confusions_at_80_classes_show_the_top_pair_in_the_browser(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "c80", "complete", status="completed", epoch=3, epochs=3, best_epoch=2)
    base = diagonal(80)
    write_evidence(run, names_of(80), {
        1: taken_for(base, 5, 17, 2),
        2: base,
        3: taken_for(taken_for(base, 5, 17, 4), 30, 31, 3),
    })  # fmt: skip
    with running_ui(runs) as ui, chromium_page(width=1400, height=1000) as page:
        page.goto(f"{ui.url}/dashboard?run=c80")
        tab = page.get_by_role("tab", name="Confusions")
        tab.wait_for(timeout=90_000)
        tab.click()
        wait_for(lambda: page.evaluate(JS_PAIRS), 60, 0.25, "the top pairs table")
        rows = page.evaluate(JS_PAIRS)
        assert rows[0][-5:] == ["class_05", "class_17", "40.0%", "4 of 10", "1, 3"]
        assert rows[1][-5:-1] == ["class_30", "class_31", "30.0%", "3 of 10"] and len(rows) == 2
        said = page.get_by_text("Most confused at epoch 3").inner_text()
        assert "class_05 taken for class_17 in 40.0% of class_05's boxes" in said
        wait_for(lambda: page.locator(".st-key-chart_ev_class_row .js-plotly-plot").count(), 30, 0.25, "class row")
        page.locator(".st-key-ev_pairs").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "confusions80.png"))
