"""The Runs page's filters (app/run_filter_bar.py, app/run_filters.py) with AppTest: status, tag, model, dataset and
text, each alone and combined, the count line, and the filters kept in session state and in the URL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app import run_filters
from tests.test_app_pages import open_page
from trainers.run_files import RECIPE_FILE
from trainers.runs import notes
from trainers.runs.folder import create_run_dir
from trainers.runs.status import write_status
from trainers.statuses import RunStatus

# name: status, model, data, tags, note; newest first in this order
RUNS = {
    "alpha": (RunStatus.COMPLETED, "../demo_base.pt", "/d/cones/data.yaml", ["baseline"], "First try with LR 0.01"),
    "beta": (RunStatus.FAILED, "yolo26n.yaml", "coco8.yaml", ["lr-sweep"], ""),
    "gamma": (RunStatus.STOPPED, "yolo11n.pt", "coco8.yaml", ["baseline", "fp16"], "Beta ideas, kept"),
    "delta": (RunStatus.COMPLETED, "rtdetr-l.yaml", "/d/cones/data.yaml", [], ""),
}


def make_run(root: Path, name: str, status, model, data, tags, note, created: datetime) -> Path:
    run_dir = create_run_dir(root, name)
    (run_dir / RECIPE_FILE).write_text(yaml.safe_dump({"model": model, "data": data, "train": {"epochs": 3}}))
    write_status(run_dir, status=status, epoch=3, epochs=3, created=created.isoformat())
    if tags:
        notes.add_tags(run_dir, tags)
    if note:
        notes.set_note(run_dir, note)
    return run_dir


@pytest.fixture
def four_runs(runs_root):
    now = datetime.now().astimezone()
    for i, (name, spec) in enumerate(RUNS.items()):
        make_run(runs_root, name, *spec, created=now - timedelta(minutes=i))
    return runs_root


def shown(at) -> list[str]:
    """The runs drawn, in order (one Delete button per row)."""
    return [str(b.key).removeprefix("runs_delete_") for b in at.button if str(b.key).startswith("runs_delete_")]


def url_values(at, key: str) -> list[str]:
    """A query parameter's values (AppTest keeps a single value unwrapped)."""
    value = at.query_params[key]
    return list(value) if isinstance(value, list) else [value]


def count_line(at) -> str:
    return next(c.value for c in at.caption if " runs" in c.value or c.value.endswith(" run"))


def test_no_filter_shows_every_run_and_offers_what_the_runs_have(four_runs):
    at = open_page("runs")
    assert shown(at) == ["alpha", "beta", "gamma", "delta"]
    assert count_line(at) == "4 runs"
    assert at.multiselect(key="runs_f_tag").options == ["baseline", "fp16", "lr-sweep"]
    assert at.multiselect(key="runs_f_model").options == ["demo_base.pt", "yolo26n.yaml", "yolo11n.pt", "rtdetr-l.yaml"]
    assert at.multiselect(key="runs_f_dataset").options == ["cones", "coco8"]
    assert at.multiselect(key="runs_f_status").options == ["completed", "failed", "stopped"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("runs_f_status", ["failed", "stopped"], ["beta", "gamma"]),
        ("runs_f_status", ["completed"], ["alpha", "delta"]),
        ("runs_f_tag", ["baseline"], ["alpha", "gamma"]),
        ("runs_f_tag", ["fp16", "lr-sweep"], ["beta", "gamma"]),
        ("runs_f_model", ["yolo11n.pt"], ["gamma"]),
        ("runs_f_model", ["demo_base.pt", "rtdetr-l.yaml"], ["alpha", "delta"]),
        ("runs_f_dataset", ["coco8"], ["beta", "gamma"]),
        ("runs_f_dataset", ["cones"], ["alpha", "delta"]),
    ],
)
def test_each_choice_filter_keeps_the_runs_with_any_chosen_value(four_runs, key, value, expected):
    at = open_page("runs")
    at.multiselect(key=key).set_value(value).run()
    assert not at.exception
    assert shown(at) == expected
    assert count_line(at) == f"{len(expected)} of 4 runs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BETA", ["beta", "gamma"]),  # beta's name, gamma's note: any case
        ("lr 0.01", ["alpha"]),  # the note
        ("FP16", ["gamma"]),  # a tag
        ("RTDETR", ["delta"]),  # the model
        ("Cones", ["alpha", "delta"]),  # the dataset
        ("nothing like it", []),
    ],
)
def test_text_filter_matches_name_note_tags_model_and_dataset_in_any_case(four_runs, text, expected):
    at = open_page("runs")
    at.text_input(key="runs_f_text").set_value(text).run()
    assert not at.exception
    assert shown(at) == expected
    assert count_line(at) == f"{len(expected)} of 4 runs"


def test_filters_combine_and_go_to_the_url(four_runs):
    at = open_page("runs")
    at.multiselect(key="runs_f_tag").set_value(["baseline"]).run()
    at.multiselect(key="runs_f_status").set_value(["completed", "stopped"]).run()
    assert shown(at) == ["alpha", "gamma"]
    at.multiselect(key="runs_f_dataset").set_value(["coco8"]).run()
    assert shown(at) == ["gamma"]
    at.text_input(key="runs_f_text").set_value("kept").run()
    assert shown(at) == ["gamma"] and count_line(at) == "1 of 4 runs"
    at.multiselect(key="runs_f_model").set_value(["rtdetr-l.yaml"]).run()
    assert shown(at) == [] and count_line(at) == "0 of 4 runs"
    query = {k: url_values(at, k) for k in ("status", "tag", "dataset", "model", "q")}
    assert query == {
        "status": ["completed", "stopped"], "tag": ["baseline"], "dataset": ["coco8"], "model": ["rtdetr-l.yaml"],
        "q": ["kept"],
    }  # fmt: skip
    at.multiselect(key="runs_f_model").set_value([]).run()
    assert "model" not in at.query_params and shown(at) == ["gamma"]


def test_a_shared_url_opens_the_filtered_view(four_runs):
    at = open_page("runs", query={"tag": "Baseline", "q": "first"})
    assert not at.exception
    assert shown(at) == ["alpha"] and count_line(at) == "1 of 4 runs"
    assert at.multiselect(key="runs_f_tag").value == ["baseline"] and at.text_input(key="runs_f_text").value == "first"


def test_a_url_naming_a_tag_no_run_has_shows_none_rather_than_failing(four_runs):
    at = open_page("runs", query={"tag": "gone"})
    assert not at.exception
    assert shown(at) == [] and count_line(at) == "0 of 4 runs"


def test_filters_stay_in_the_session_across_pages(four_runs):
    at = open_page("runs")
    at.multiselect(key="runs_f_status").set_value(["failed"]).run()
    at.switch_page("app_pages/compare.py").run()
    at.query_params.clear()  # a page change drops the query parameters
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    assert shown(at) == ["beta"]
    assert url_values(at, "status") == ["failed"]  # given back to the URL, ready to share


def test_a_note_saved_elsewhere_is_filtered_on_at_the_next_render(four_runs):
    at = open_page("runs")
    at.text_input(key="runs_f_text").set_value("later").run()
    assert shown(at) == []
    notes.set_note(four_runs / "delta", "Later: try a LATER schedule")
    at.run()
    assert shown(at) == ["delta"]


def test_kept_keeps_the_first_and_last_rows_and_their_order():
    class Row:
        def __init__(self, name, status):
            self.name, self.status, self.path = name, status, f"/nowhere/{name}"

    rows = [Row(f"r{i}", RunStatus.FAILED if i in (0, 4) else RunStatus.COMPLETED) for i in range(5)]
    metas = {r.name: run_filters.RunMeta() for r in rows}
    kept = run_filters.kept(rows, run_filters.Filters(status=("failed",)), metas)
    assert [r.name for r in kept] == ["r0", "r4"]
    assert run_filters.count_line(2, 5) == "2 of 5 runs" and run_filters.count_line(1, 1) == "1 run"


def test_dataset_and_model_labels():
    assert run_filters.dataset_label("/data/sets/cones/data.yaml") == "cones"
    assert run_filters.dataset_label("coco8.yaml") == "coco8"
    assert run_filters.dataset_label(None) == ""
    assert run_filters.model_label("../weights/yolo11n.pt") == "yolo11n.pt"


# ---- paging: the page draws 50 rows at a time (issue 20: the Runs page at 500 runs) --------------------------------
def test_the_page_draws_the_newest_50_and_shows_50_more_per_click(runs_root):
    now = datetime.now().astimezone()
    for i in range(120):
        tags = ["rare"] if i % 40 == 0 else []
        make_run(runs_root, f"r{i:03d}", RunStatus.COMPLETED, "yolo26n.yaml", "coco8.yaml", tags, "",
                 created=now - timedelta(minutes=i))  # fmt: skip
    at = open_page("runs")
    assert shown(at) == [f"r{i:03d}" for i in range(50)]  # newest first
    assert count_line(at) == "120 runs · the first 50 shown"
    at.button(key="runs_more").click().run()
    assert shown(at) == [f"r{i:03d}" for i in range(100)]
    assert at.button(key="runs_more").label == "Show 20 more"
    at.button(key="runs_more").click().run()
    assert shown(at) == [f"r{i:03d}" for i in range(120)] and count_line(at) == "120 runs"
    assert not [b for b in at.button if b.key == "runs_more"]  # nothing left to show
    # a filter reaches runs past the first page: r040 and r080 were not drawn at first
    at.session_state["runs_limit"] = 50
    at.multiselect(key="runs_f_tag").set_value(["rare"]).run()
    assert shown(at) == ["r000", "r040", "r080"] and count_line(at) == "3 of 120 runs"
    assert not [b for b in at.button if b.key == "runs_more"]
