"""The dashboard's Confusions, PR curves and Run files tabs (app/confusion_views.py, app/confusion_charts.py) on
evidence written directly by the evidence module's own writer: the matrix with its background row and column at 4
classes, the top pairs and one class's row at 80, the PR curves at the best epoch, ultralytics' plots as a gallery."""

from __future__ import annotations

import base64
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app import confusion_charts as cc
from app.confusion_views import NO_EVIDENCE
from tests.evidence_runs import diagonal, names_of, taken_for, write_evidence
from tests.test_app_pages import charts_by_key, make_run, open_page
from trainers.runs.status import process_start_time, write_status

A, B = 5, 17  # at 80 classes: class_05 is taken for class_17


def decoded(array: dict) -> np.ndarray:
    """A plotly typed array as the page receives it (``{"dtype", "bdata", "shape"}``)."""
    shape = tuple(int(n) for n in array["shape"].split(","))
    return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).reshape(shape)


def pairs_shown(at) -> list[list[str]]:
    """The top-pairs table as drawn (a Markdown table): its header, then its rows, cells unescaped."""
    (text,) = [m.value for m in at.markdown if m.value.startswith(f"| {cc.PAIR_COLUMNS[0]}")]
    lines = [line for line in text.splitlines() if not set(line) <= set("|- ")]  # not the |---|---| line
    cells = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in lines]
    return [[re.sub(r"\\(.)", r"\1", c.strip()) for c in row] for row in cells]


def dashboard(run: str):
    return open_page("dashboard", query={"run": run})


@pytest.fixture
def small(runs_root):
    """4 classes, epochs 1-2 and final; at epoch 2 a quarter of class_01's boxes go to class_02 and 2 are missed."""
    run = make_run(runs_root, "small", "complete", status="completed", epoch=2, epochs=2, best_epoch=2)
    m2 = taken_for(diagonal(4, boxes=8), 1, 2, 2)
    m2[4, 1], m2[1, 1] = 2, m2[1, 1] - 2  # 2 of class_01's boxes missed (background row)
    m2[0, 4] = 3  # 3 predictions of class_00 where there was no box (background column)
    write_evidence(run, names_of(4), {1: diagonal(4, 8), 2: m2, "final": m2})
    return run


@pytest.fixture
def wide(runs_root):
    """80 classes over 3 epochs: class_05 -> class_17 at 20%, 5%, 40% of class_05's 10 boxes; class_30 -> class_31
    at 30% in epoch 3; best epoch 2, whose PR curves differ from epoch 3's."""
    run = make_run(runs_root, "wide", "complete", status="completed", epoch=3, epochs=3, best_epoch=2)
    base = diagonal(80)
    matrices = {
        1: taken_for(base, A, B, 2),
        2: taken_for(diagonal(80, boxes=20), A, B, 1),  # 1 of 20: under the 10% line
        3: taken_for(taken_for(base, A, B, 4), 30, 31, 3),
    }
    precision = {2: {c: 0.9 - 0.01 * c for c in range(80)}, 3: {c: 0.5 for c in range(80)}}
    write_evidence(run, names_of(80), matrices, precision)
    return run


def test_up_to_20_classes_the_whole_normalized_matrix_with_background(small):
    at = dashboard("small")
    heat = charts_by_key(at)["chart_ev_matrix"]["data"][0]
    labels = [*names_of(4), "background"]
    assert heat["x"] == labels and heat["y"] == labels
    z = decoded(heat["z"])
    assert z[:, :4].sum(axis=0) == pytest.approx([1, 1, 1, 1])  # each true class's boxes add up to 1
    assert z[1, 1] == pytest.approx(0.5) and z[2, 1] == pytest.approx(0.25) and z[4, 1] == pytest.approx(0.25)
    assert z[0, 4] == pytest.approx(1.0)  # the background column: every false box was a class_00
    assert at.select_slider(key="ev_conf_epoch").value == "final"  # the newest validation first


def test_the_matrix_follows_the_epoch_slider(small):
    at = dashboard("small")
    at.select_slider(key="ev_conf_epoch").set_value(1).run()
    heat = charts_by_key(at)["chart_ev_matrix"]["data"][0]
    assert np.array(heat["customdata"])[2, 1] == 0  # epoch 1: nothing confused
    assert "epoch 1" in charts_by_key(at)["chart_ev_matrix"]["layout"]["title"]["text"]


def test_the_epoch_slider_follows_new_epochs_until_moved_away(small):
    shutil.rmtree(small / "evidence" / "final")
    at = dashboard("small")
    assert at.select_slider(key="ev_conf_epoch").value == 2
    write_evidence(small, names_of(4), {3: diagonal(4, 8)})  # a live run validates epoch 3
    at.run()
    assert at.select_slider(key="ev_conf_epoch").value == 3  # it was on the newest: it moves on
    at.select_slider(key="ev_conf_epoch").set_value(1).run()
    write_evidence(small, names_of(4), {4: diagonal(4, 8)})
    at.run()
    assert at.select_slider(key="ev_conf_epoch").value == 1  # moved away by the user: it stays
    assert "epoch 1" in charts_by_key(at)["chart_ev_matrix"]["layout"]["title"]["text"]


def test_80_classes_the_top_pairs_with_share_and_epochs(wide):
    at = dashboard("wide")
    assert "chart_ev_matrix" not in charts_by_key(at)
    header, *rows = pairs_shown(at)
    assert header == list(cc.PAIR_COLUMNS)
    assert rows[0] == ["class_05", "class_17", "40.0%", "4 of 10", "1, 3"]  # epoch 2's 5% is under the 10% line
    assert rows[1] == ["class_30", "class_31", "30.0%", "3 of 10", "3"]
    assert len(rows) == 2
    assert any("**class_05** taken for **class_17** in 40.0%" in m.value for m in at.markdown)


def test_80_classes_one_class_row_defaults_to_the_top_pair(wide):
    at = dashboard("wide")
    assert at.selectbox(key="ev_conf_class").value == "class_05"
    bars = charts_by_key(at)["chart_ev_class_row"]["data"][0]
    assert bars["y"] == ["class_05", "class_17"] and bars["x"] == pytest.approx([0.6, 0.4])
    at.selectbox(key="ev_conf_class").set_value("class_31").run()
    bars = charts_by_key(at)["chart_ev_class_row"]["data"][0]
    assert bars["y"] == ["class_31"] and bars["x"] == pytest.approx([1.0])


def test_pr_curves_at_the_best_epoch_worst_ap50_first(wide):
    at = dashboard("wide")
    names = [t["name"] for t in charts_by_key(at)["chart_ev_pr"]["data"]]
    # epoch 2's curves (precision 0.9 - 0.01 c): the three lowest are the last three classes; epoch 3 is flat 0.5
    assert names == ["class_79 (AP50 0.11)", "class_78 (AP50 0.12)", "class_77 (AP50 0.13)"]
    assert any("The best epoch, 2" in c.value for c in at.caption)


def test_pr_curves_without_a_best_epoch_say_they_show_the_last(wide):
    write_status(wide, best_epoch=None)
    at = dashboard("wide")
    names = [t["name"] for t in charts_by_key(at)["chart_ev_pr"]["data"]]
    assert names[0].endswith("(AP50 0.50)")
    assert any("No best epoch yet: the last validation with evidence, epoch 3" in c.value for c in at.caption)


def _tab(run_dir: str, tab: str) -> None:  # an AppTest script: one tab alone
    from pathlib import Path

    from app import confusion_views

    getattr(confusion_views, tab)(Path(run_dir), "small")


def test_a_damaged_evidence_file_is_one_line_not_a_traceback(small):
    (small / "evidence" / "final" / "confusion.parquet").write_bytes(b"not parquet")
    (small / "evidence" / "epoch-0002" / "pr.parquet").write_bytes(b"")
    for tab in ("confusions_tab", "pr_tab"):  # Confusions opens at the final epoch, PR curves at the best (2)
        at = AppTest.from_function(_tab, args=(str(small), tab), default_timeout=30).run()
        assert not at.exception, [e.value for e in at.exception]
        (said,) = [w.value for w in at.warning]
        assert said.startswith("This run's evidence cannot be read (") and "\n" not in said
    at = AppTest.from_function(_tab, args=(str(small), "confusions_tab"), default_timeout=30).run()
    at.select_slider(key="ev_conf_epoch").set_value(2).run()  # the other epochs still open
    assert not at.warning and at.get("plotly_chart")


def test_no_evidence_is_one_caption_in_each_tab(runs_root):
    make_run(runs_root, "bare", "complete", status="completed", epoch=2, epochs=2)
    at = dashboard("bare")
    said = [c.value for c in at.caption]
    assert said.count(NO_EVIDENCE) == 2 and any("No ultralytics plots" in c for c in said)


def test_run_files_gallery_lists_ultralytics_plots_in_reading_order(small):
    for file in ("val_batch0_pred.jpg", "BoxPR_curve.png", "results.png", "confusion_matrix.png", "labels.jpg"):
        Image.new("RGB", (80, 60), (200, 30, 30)).save(small / file)
    (small / "notes.txt").write_text("not a plot")
    at = dashboard("small")
    buttons = {int(b.proto.id.rsplit("ev_download_", 1)[1]): b.proto.label
               for b in at.get("download_button") if "ev_download_" in b.proto.id}  # fmt: skip
    downloads = [buttons[i] for i in sorted(buttons)]  # the gallery's order (AppTest lists column by column)
    assert downloads == ["results.png", "confusion_matrix.png", "BoxPR_curve.png", "val_batch0_pred.jpg",
                         "labels.jpg"]  # fmt: skip
    images = at.get("image")
    assert len(images) == 5


def test_while_the_run_trains_the_gallery_is_drawn_on_request(runs_root):
    me = os.getpid()  # a run owned by a live process: the dashboard keeps it running and refreshes
    run = make_run(runs_root, "live", "complete", status="running", pid=me, pid_start=process_start_time(me), epochs=6)
    Image.new("RGB", (80, 60)).save(run / "labels.jpg")
    at = dashboard("live")
    assert not at.get("image") and any("the gallery opens then" in c.value for c in at.caption)
    at.toggle(key="ev_show_plots").set_value(True).run()
    assert len(at.get("image")) == 1


def test_class_names_are_escaped_in_the_pairs_table():
    text = cc.markdown_table(pd.DataFrame([["a|b", "*x*", "$5"]], columns=["A", "B", "C"]))
    assert text.splitlines()[2] == "| a\\|b | \\*x\\* | \\$5 |"  # a | would split the cell, * set italics, $ math


def test_plot_names_and_epoch_ranges():
    assert cc.plot_caption("BoxPR_curve.png") == "Box PR curve"
    assert cc.epochs_text([1, 2, 3, 5, 7, 8, "final"]) == "1-3, 5, 7-8, final"
    assert cc.epochs_text([]) == ""
