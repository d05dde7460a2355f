"""The Runs page (app/app_pages/runs.py) with AppTest: findings per run, downloads per run, delete."""

from __future__ import annotations

import sys

from tests.conftest import wait_for
from tests.test_app_pages import open_page
from trainers import launcher
from trainers.run_status import read_status


# ---- delete --------------------------------------------------------------------------------------------------------
def test_deleting_a_run_started_on_new_run_removes_its_ui_recipe(runs_root, monkeypatch):
    # a training process that ends at once: the run settles as failed (no run_end), so it can be deleted
    monkeypatch.setattr(launcher, "train_command", lambda recipe, root, name: [sys.executable, "-c", "pass"])
    at = open_page("new_run")
    at.text_input(key="nr_name").set_value("mine").run()
    at.button(key="new_run_start").click().run()
    assert not at.exception
    ui_recipe = runs_root / ".ui-recipes" / "mine.yaml"
    assert ui_recipe.is_file()
    wait_for(lambda: launcher.refresh_status(runs_root / "mine")["status"] == "failed")
    assert read_status(runs_root / "mine")["status"] == "failed"

    at.switch_page("app_pages/runs.py").run()
    at.button(key="runs_delete_mine").click().run()
    at.button(key="runs_confirm_mine").click().run()
    assert not at.exception
    assert not (runs_root / "mine").exists()
    assert not ui_recipe.exists()  # deleting a run leaves nothing of it behind
