"""Compare, overlaid (app/compare_overlays.py, app/overlay_charts.py): the train loss, mAP50-95 and LR of every run on
one chart each without choosing anything, and one sample image as each run predicted it, side by side; on runs made
from synthetic telemetry and evidence written by the evidence module's own writer."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from app import overlay_charts as oc
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.evidence_runs import diagonal, sample_images, write_evidence
from tests.fixtures.make_telemetry import FIXTURES
from tests.test_app_pages import charts_by_key, open_page
from trainers.metrics import MAP50_95
from trainers.telemetry.evidence import GT, PRED
from trainers.telemetry.run_log import RunLog

RECIPE = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}, "customizations": {}}
NAMES = ["circle", "square", "triangle", "cross"]


def gt(image, cls, x1, y1, x2, y2):
    return (image, GT, cls, 1.0, x1, y1, x2, y2)


def pred(image, cls, conf, x1, y1, x2, y2):
    return (image, PRED, cls, conf, x1, y1, x2, y2)


@pytest.fixture
def runs(runs_root, tmp_path):
    """``a``, ``b`` (lr 0.002, losses doubled, mAP50-95 +0.1) and ``c``: a and b share both sample images, c's sample
    is other files. In image 1, a finds the circle (0.9) and predicts a false square (0.3); b misses the circle; image
    0 has a triangle that a finds."""
    shared = sample_images(tmp_path / "val")
    other = sample_images(tmp_path / "other", n=1)
    loss2 = {"box_loss": (4.0, 4.8), "cls_loss": (2.0, 2.4)}
    make_run(runs_root, "a", RECIPE)
    make_run(runs_root, "b", RECIPE, [epoch(n, loss=loss2, lr=dict.fromkeys(("weight", "bn", "bias"), 0.002),
                                            metrics={MAP50_95.key: 0.4 + 0.01 * n}) for n in (1, 2, 3)])  # fmt: skip
    make_run(runs_root, "c", RECIPE)
    circle = gt(1, 0, 10, 10, 30, 30)
    at = (5, 5, 20, 20)
    triangle = gt(0, 2, *at)  # image 0's: never drawn on image 1
    write_evidence(runs_root / "a", NAMES, {1: diagonal(4), 2: diagonal(4)}, images=shared, boxes={
        1: [circle, pred(1, 0, 0.9, 11, 10, 30, 31), pred(1, 1, 0.3, 40, 20, 60, 40), triangle, pred(0, 2, 0.8, *at)],
        2: [circle],  # epoch 2 is not the best (make_run's best epoch is 1): never drawn
    })  # fmt: skip
    write_evidence(
        runs_root / "b", NAMES, {2: diagonal(4), 3: diagonal(4)}, images=shared, boxes={3: [circle, triangle]}
    )
    write_evidence(runs_root / "c", NAMES, {1: diagonal(4)}, images=other, boxes={1: []})
    return runs_root


def test_loss_map_and_lr_are_overlaid_one_trace_per_run_without_choosing(runs):
    at = open_page("compare", cmp_runs=["a", "b"])
    figs = charts_by_key(at)
    loss, precision, lr = figs["chart_cmp_loss"], figs["chart_cmp_map"], figs["chart_cmp_lr"]
    assert [t["name"] for t in loss["data"]] == ["a", "b"]
    assert [t["name"] for t in precision["data"]] == ["a", "b"]
    assert [t["name"] for t in lr["data"]] == ["a (weight)", "b (weight)"]  # the group drawn is named
    assert "box + cls" in loss["layout"]["yaxis"]["title"]["text"]
    assert "chart_compare_f1" in figs  # the class F1 overlay stays


def test_the_overlays_draw_each_runs_own_values(runs):
    logs = {r: RunLog.from_events(_events(runs / r)) for r in ("a", "b")}
    loss = oc.loss_figure(logs)
    # synthetic epoch n: box (2.0-0.05n + 2.4-0.05n)/2, cls (1.0-0.02n + 1.2-0.02n)/2; b's are (4.4, 2.2) flat
    assert np.asarray(loss.data[0].y) == pytest.approx([2.2 - 0.05 * n + 1.1 - 0.02 * n for n in (1, 2, 3)])
    assert np.asarray(loss.data[1].y) == pytest.approx([4.4 + 2.2] * 3)
    lr = oc.lr_figure(logs)
    assert np.asarray(lr.data[0].y) == pytest.approx([0.001] * 3) and np.asarray(lr.data[1].y) == pytest.approx(
        [0.002] * 3)  # fmt: skip


def _events(run_dir):
    return [json.loads(line) for line in (run_dir / "telemetry.jsonl").read_text().splitlines() if line.strip()]


def test_lr_per_step_is_placed_on_the_epoch_axis_and_names_the_main_group():
    lines = (FIXTURES / "complete.jsonl").read_text().splitlines()
    log = RunLog.from_events([json.loads(line) for line in lines if line.strip()])
    assert oc.main_group(log) == "head/weight"  # per-layer LR: the head's weights, at the base LR
    x, y = oc.lr_points(log, "head/weight")
    steps = log.steps.series(["lr/head/weight"])["lr/head/weight"][0]
    assert len(x) == len(steps) == 150 and x[0] == pytest.approx(1 / 25)  # 25 steps an epoch: step 1 ends 1/25 in
    assert x[24] == pytest.approx(1.0) and x[25] == pytest.approx(1 + 1 / 25) and x[-1] == pytest.approx(6.0)


def test_the_same_image_side_by_side_at_each_runs_best_or_last_epoch(runs):
    at = open_page("compare", cmp_runs=["a", "b", "c"])
    assert at.selectbox(key="cmp_image").value.endswith("img_0.jpg")  # in both samples; c's image is in one only
    at.selectbox(key="cmp_image").set_value(str(runs.parent / "val" / "img_1.jpg")).run()
    (body,) = [h.proto.body for h in at.get("html") if "wb-side" in h.proto.body]
    tiles = re.findall(r'<figure class="wb-tile" data-run="(\w+)" data-missed="(\d+)" data-false="(\d+)"', body)
    assert tiles == [("a", "0", "1"), ("b", "1", "0")]  # a: circle found, one false square; b: the circle missed
    assert "best epoch 1" in body and "last evidence: epoch 3" in body  # b has no evidence of its best epoch (1)
    assert body.count("wb-box wb-pred") == 2 and body.count("wb-box wb-gt") == 2
    assert 'title="prediction: circle 0.90"' in body and "<img" in body
    assert any("Not in the evidence sample of c" in c.value for c in at.caption)


def test_the_confidence_slider_hides_the_less_confident_predictions(runs):
    at = open_page("compare", cmp_runs=["a", "b"])
    at.selectbox(key="cmp_image").set_value(str(runs.parent / "val" / "img_1.jpg")).run()
    at.slider(key="cmp_conf").set_value(0.5).run()
    (body,) = [h.proto.body for h in at.get("html") if "wb-side" in h.proto.body]
    assert body.count("wb-box wb-pred") == 1 and "square 0.30" not in body  # the false square (0.3) is gone
    assert 'data-run="a" data-missed="0" data-false="0"' in body


def test_a_damaged_boxes_file_leaves_the_other_runs_tiles(runs):
    (runs / "a" / "evidence" / "epoch-0001" / "boxes.parquet").write_bytes(b"damaged")
    at = open_page("compare", cmp_runs=["a", "b"])
    (body,) = [h.proto.body for h in at.get("html") if "wb-side" in h.proto.body]
    assert 'data-run="b"' in body and 'data-run="a"' not in body
    assert [w.value for w in at.warning] == ["The evidence of a cannot be read."]


def test_runs_without_a_shared_image_or_one_run_say_so(runs):
    at = open_page("compare", cmp_runs=["a", "c"])
    assert any("share no sample image" in c.value for c in at.caption)
    at.multiselect(key="cmp_runs").set_value(["a"]).run()
    assert any("Choose a second run to see an image" in i.value for i in at.info)
