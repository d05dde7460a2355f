"""The Runs page's "Note & tags" popover and filters in headless Chromium: opening the popover reruns the page and
draws its form (``on_change="rerun"``; that a closed one draws none is tests/test_run_notes_ui.py's, since the browser
keeps a closed popover's content out of the DOM either way), Save writes notes.json, and a shared filter URL opens the
filtered view."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.conftest import wait_for
from tests.test_runs_filters import RUNS, make_run
from tests.ui_server import chromium_page, running_ui
from trainers.run_files import NOTES_FILE

pytestmark = pytest.mark.browser  # synthetic runs: nothing trains


def finished(page) -> bool:
    return page.evaluate(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
        "!document.querySelector('[data-stale=\"true\"]')"
    )


def test_note_and_tags_saved_from_the_popover_and_a_filter_url_shared(tmp_path):
    runs = tmp_path / "runs"
    now = datetime.now().astimezone()
    make_run(runs, "alpha", *RUNS["alpha"], created=now)
    make_run(runs, "delta", *RUNS["delta"], created=now)
    with running_ui(runs) as ui, chromium_page() as page:
        page.goto(f"{ui.url}/runs", timeout=90_000)
        page.wait_for_selector(".st-key-runs_notes_pop_delta button", timeout=90_000)
        wait_for(lambda: finished(page), 60, 0.25, "the Runs page to finish rendering")
        page.locator(".st-key-runs_notes_pop_delta button").first.click()
        note = page.locator(".st-key-runs_note_delta textarea")
        note.wait_for(timeout=60_000)
        note.fill("Chromium wrote this")
        page.locator(".st-key-runs_tags_delta input").fill("From-Browser, e2e")
        page.locator(".st-key-runs_notes_save_delta button").click()
        saved = runs / "delta" / NOTES_FILE
        wait_for(lambda: saved.is_file() and json.loads(saved.read_text())["tags"] == ["from-browser", "e2e"], 60)
        assert json.loads(saved.read_text())["note"] == "Chromium wrote this"

        page.goto(f"{ui.url}/runs?tag=e2e", timeout=90_000)
        page.get_by_text("1 of 2 runs").wait_for(timeout=90_000)
        wait_for(lambda: finished(page), 60, 0.25, "the filtered page to finish rendering")
        assert page.locator(".st-key-runs_row_delta").count() == 1
        assert page.locator(".st-key-runs_row_alpha").count() == 0
        assert "tag=e2e" in page.url  # the view stays shareable
