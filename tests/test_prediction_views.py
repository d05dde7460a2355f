"""The dashboard's Predictions tab (AppTest; issue 19 item 2) on evidence written directly (no training).

What each tile must show is known by construction (the boxes of each image, its missed and false boxes at 0.25 and
0.5), so the tests read the drawn HTML and compare it with those numbers, not with the view's own helpers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from app import prediction_grid, prediction_views
from tests import prediction_evidence as pe
from tests.test_app_pages import open_page
from trainers.telemetry.evidence import FINAL, GT, PRED, SAMPLE_FILE, write_epoch

RUN = "ev"
TILE = re.compile(r'<figure class="([^"]*)" data-image="(\d+)" data-missed="(\d+)" data-false="(\d+)">')


def tiles(at, large: bool = False) -> list[dict]:
    """The tiles drawn, in page order: image, missed, false, and the boxes drawn (GT, predictions, dimmed)."""
    out = []
    for el in at.get("html"):
        body = el.proto.body
        m = TILE.search(body)
        if m is None or ('class="wb-large"' in body) != large:
            continue
        out.append({
            "image": int(m[2]), "missed": int(m[3]), "false": int(m[4]), "flagged": "wb-flagged" in m[1],
            "open": "wb-open" in m[1], "gt": len(re.findall(r'class="wb-box wb-gt', body)),
            "pred": len(re.findall(r'class="wb-box wb-pred', body)), "dim": body.count(" wb-dim"),
            "note": re.findall(r'<div class="wb-note">([^<]*)</div>', body),
        })  # fmt: skip
    return out


def order(at) -> list[int]:
    return [t["image"] for t in tiles(at)]


def legend(at) -> str:
    bodies = [el.proto.body for el in at.get("html") if 'class="wb-legend"' in el.proto.body]
    assert len(bodies) == 1, bodies
    return bodies[0]


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def epoch_slider(at):
    (slider,) = [s for s in at.select_slider if s.key.startswith(f"pred_epoch_w_{RUN}_")]
    return slider


def at_epoch(runs, epochs=(1, 2, FINAL), running=False, epoch=1):
    pe.evidence_run(runs, RUN, epochs, running=running)
    at = open_page("dashboard", query={"run": RUN})
    if epoch != epochs[-1]:
        epoch_slider(at).set_value(epoch).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_legend_says_which_boxes_are_ground_truth_and_which_predictions(runs_root):
    at = at_epoch(runs_root)
    text = legend(at)
    assert "ground truth (solid" in text and "prediction (dashed" in text and "confidence ≥ 0.25" in text
    assert 'class="wb-swatch"' in text and 'class="wb-swatch wb-pred"' in text
    assert re.findall(r'wb-key-class"><span class="wb-chip"[^>]*></span>(\w+)<', text) == pe.NAMES  # all drawn
    at.slider(key=f"pred_conf_w_{RUN}").set_value(0.5).run()
    assert "confidence ≥ 0.50" in legend(at)


def test_every_sample_image_is_drawn_with_its_boxes_at_the_threshold(runs_root):
    at = at_epoch(runs_root)
    assert at.slider(key=f"pred_conf_w_{RUN}").value == pytest.approx(0.25)  # the default
    for conf, errors in ((0.25, pe.ERRORS_025), (0.5, pe.ERRORS_050), (0.05, None)):
        at.slider(key=f"pred_conf_w_{RUN}").set_value(conf).run()
        shown = {t["image"]: t for t in tiles(at)}
        assert sorted(shown) == list(range(len(pe.IMAGES))), conf
        for i, t in shown.items():
            assert (t["gt"], t["pred"]) == pe.counts(pe.EPOCH1, i, conf), (conf, i)
            if errors is not None:
                assert (t["missed"], t["false"]) == errors[i], (conf, i)
                assert t["flagged"] == any(errors[i])
            assert not t["dim"] and not t["note"]
    assert shown[7]["pred"] == 2  # the 0.1 prediction appears only at 0.05


def test_boxes_are_placed_in_percent_of_the_image(runs_root):
    at = at_epoch(runs_root)
    (body,) = [el.proto.body for el in at.get("html") if 'data-image="0"' in el.proto.body]
    places = re.findall(r'class="wb-box (wb-gt|wb-pred)[^"]*"[^>]*style="left:([\d.]+)%;top:([\d.]+)%;width:([\d.]+)%;'
                        r'height:([\d.]+)%', body)  # fmt: skip
    (x1, y1, x2, y2), size = pe.SLOTS[0], pe.SIZE / 100  # image 0: a circle in slot 0, predicted 1 px lower right
    assert ("wb-gt", x1 / size, y1 / size, (x2 - x1) / size, (y2 - y1) / size) in [
        (k, *map(float, v)) for k, *v in places
    ]
    assert ("wb-pred", round((x1 + 1) / size, 2), round((y1 + 1) / size, 2)) in [
        (k, float(a), float(b)) for k, a, b, *_ in places
    ]


def test_a_wide_image_places_boxes_by_its_own_width_and_height():
    row = {"kind": PRED, "cls": 1, "conf": 0.5, "x1": 20.0, "y1": 10.0, "x2": 60.0, "y2": 95.0}
    html = prediction_grid.boxes_html([row], 200, 100, pe.NAMES, None)
    assert "left:10.00%;top:10.00%;width:20.00%;height:85.00%" in html
    assert 'class="wb-box wb-pred wb-low"' in html and ">square 0.50<" in html  # tag inside: the box nears the bottom


def test_worst_first_orders_by_missed_and_false_boxes_at_the_threshold(runs_root):
    at = at_epoch(runs_root)
    assert at.toggle(key=f"pred_worst_w_{RUN}").value is True
    assert order(at) == pe.WORST_025
    assert "8 of 8 sample images at epoch 1, worst first" in captions(at)
    at.slider(key=f"pred_conf_w_{RUN}").set_value(0.5).run()
    assert order(at) == pe.WORST_050
    at.toggle(key=f"pred_worst_w_{RUN}").set_value(False).run()
    assert order(at) == list(range(len(pe.IMAGES)))


def test_the_class_filter_shows_the_images_with_that_class_and_dims_the_others(runs_root):
    at = at_epoch(runs_root)
    at.toggle(key=f"pred_worst_w_{RUN}").set_value(False).run()
    at.selectbox(key=f"pred_class_w_{RUN}").set_value(pe.CROSS).run()
    assert order(at) == pe.WITH_CROSS_025
    for t in tiles(at):
        gt, preds = pe.EPOCH1[t["image"]]
        others = sum(c != pe.CROSS for _, c in gt) + sum(c != pe.CROSS and p >= 0.25 for _, c, p in preds)
        assert t["dim"] == others, t
    at.slider(key=f"pred_conf_w_{RUN}").set_value(0.5).run()
    assert order(at) == pe.WITH_CROSS_050
    at.selectbox(key=f"pred_class_w_{RUN}").set_value(prediction_views.ALL).run()
    assert len(tiles(at)) == len(pe.IMAGES)


def test_the_epoch_slider_lists_the_validations_and_final(runs_root):
    at = at_epoch(runs_root, epoch=FINAL)
    slider = epoch_slider(at)
    assert list(slider.options) == ["epoch 1", "epoch 2", "final (best.pt)"] and slider.value == FINAL  # newest
    assert all((t["missed"], t["false"]) == (0, 0) for t in tiles(at))
    slider.set_value(1).run()
    assert [(t["missed"], t["false"]) for t in sorted(tiles(at), key=lambda t: t["image"])] == pe.ERRORS_025
    epoch_slider(at).set_value(2).run()
    assert not any(t["flagged"] for t in tiles(at))
    assert "8 of 8 sample images at epoch 2, worst first" in captions(at)


def test_a_live_run_adds_epochs_and_keeps_the_choices(runs_root):
    at = at_epoch(runs_root, epochs=(1,), running=True)
    assert "Showing epoch 1, the only validation so far." in captions(at)
    at.slider(key=f"pred_conf_w_{RUN}").set_value(0.5).run()
    at.toggle(key=f"pred_worst_w_{RUN}").set_value(False).run()
    run = runs_root / RUN
    pe.add_epoch(run, 2)
    at.run()
    assert epoch_slider(at).value == 2  # was at the newest: follows it
    assert at.slider(key=f"pred_conf_w_{RUN}").value == pytest.approx(0.5)
    assert at.toggle(key=f"pred_worst_w_{RUN}").value is False
    pe.add_epoch(run, 3)
    at.run()
    assert epoch_slider(at).value == 3  # the slider drawn before moves on too
    epoch_slider(at).set_value(1).run()
    at.selectbox(key=f"pred_class_w_{RUN}").set_value(pe.CROSS).run()
    for n in (4, 5):
        pe.add_epoch(run, n)
        at.run()
        slider = epoch_slider(at)
        assert list(slider.options)[-1] == f"epoch {n}" and slider.value == 1  # chose an older one: stays there
        assert order(at) == pe.WITH_CROSS_050
        assert at.slider(key=f"pred_conf_w_{RUN}").value == pytest.approx(0.5)
    at.switch_page("app_pages/runs.py").run()  # not drawn there: Streamlit drops the widgets' state
    at.switch_page("app_pages/dashboard.py").run()
    assert epoch_slider(at).value == 1 and order(at) == pe.WITH_CROSS_050  # kept under keys of the tab's own
    assert at.selectbox(key=f"pred_class_w_{RUN}").value == pe.CROSS


def test_open_shows_the_image_large_beside_another_epoch_with_its_boxes(runs_root):
    at = at_epoch(runs_root)
    at.button(key=f"pred_open_{RUN}_5").click().run()
    assert [t["image"] for t in tiles(at) if t["open"]] == [5]
    large = tiles(at, large=True)
    assert [t["image"] for t in large] == [5, 5]
    assert [(t["missed"], t["false"]) for t in large] == [pe.ERRORS_025[5], (0, 0)]  # epoch 1, beside epoch 2
    gt, preds = pe.EPOCH1[5]
    first, second = (t.value for t in at.dataframe if "box" in t.value.columns)
    assert list(first["box"]).count("ground truth") == len(gt) and list(first["box"]).count("prediction") == len(preds)
    assert sorted(first["class"]) == sorted([pe.NAMES[c] for _, c in gt] + [pe.NAMES[c] for _, c, _ in preds])
    verdicts = list(first["verdict"])  # each box's verdict, counted as the tile counts them
    missed, false = pe.ERRORS_025[5]
    assert verdicts.count("missed") == missed and verdicts.count("found") == len(gt) - missed
    assert verdicts.count("wrong class") + verdicts.count("background") == false
    predicted = [v for v, box in zip(verdicts, first["box"], strict=True) if box == "prediction"]
    assert all(v in ("correct", "wrong class", "background") for v in predicted)
    assert len(second) == 2 * len(gt)
    at.button(key=f"pred_open_{RUN}_4").click().run()  # no labels, three false boxes at epoch 1, none at epoch 2
    assert [len(t.value) for t in at.dataframe if "box" in t.value.columns] == [3]
    assert "No labelled box and no prediction at this threshold." in captions(at)
    at.selectbox(key=f"pred_compare_w_{RUN}").set_value(prediction_views.NO_EPOCH).run()
    assert len(tiles(at, large=True)) == 1
    at.button(key=f"pred_close_{RUN}").click().run()
    assert not tiles(at, large=True) and not any(t["open"] for t in tiles(at))


def test_a_missing_image_is_a_tile_that_says_so(runs_root):
    run = pe.evidence_run(runs_root, RUN)
    images = [{"file": f, "width": pe.SIZE, "height": pe.SIZE} for f in pe.IMAGES]
    images[3]["file"] = str(runs_root / "gone.jpg")
    pe.write_sample(run, images, pe.NAMES)
    at = open_page("dashboard", query={"run": RUN})
    notes = {t["image"]: t["note"] for t in tiles(at)}
    assert notes.pop(3) == ["image not shown: image not found"]
    assert not any(notes.values())
    assert {t["image"]: t["gt"] for t in tiles(at)}[3] == 2  # its boxes are still drawn


@pytest.mark.parametrize(
    ("status", "sample", "want"),
    [
        ("completed", False, "this run predates per-epoch evidence"),
        ("completed", True, "the run ended before its first validation"),
        ("running", True, "No validation yet"),
    ],
)
def test_a_run_without_evidence_says_why_in_one_line(runs_root, status, sample, want):
    run = pe.evidence_run(runs_root, RUN, epochs=(), running=status == "running")
    if not sample:
        (run / "evidence" / SAMPLE_FILE).unlink()
    at = open_page("dashboard", query={"run": RUN})
    assert [c for c in captions(at) if want in c], captions(at)
    assert not tiles(at) and not any(s.key.startswith("pred_") for s in at.slider)


def test_an_unreadable_epoch_is_one_line_not_a_traceback(runs_root):
    run = pe.evidence_run(runs_root, RUN)
    (run / "evidence" / "final" / "boxes.parquet").write_bytes(b"not parquet")
    at = open_page("dashboard", query={"run": RUN})
    (warning,) = [w.value for w in at.warning if "final" in w.value]
    assert warning.startswith("Cannot read the evidence of final (best.pt): ") and "\n" not in warning
    epoch_slider(at).set_value(1).run()
    assert len(tiles(at)) == len(pe.IMAGES)


def test_a_refresh_with_nothing_new_reads_and_draws_nothing_again(runs_root, monkeypatch):
    from trainers.telemetry import evidence

    at = at_epoch(runs_root)
    at.button(key=f"pred_open_{RUN}_5").click().run()
    reads, thumbs, drawn = [], [], []
    real_read, real_thumbs, real_tile = (
        evidence.pq.read_table,
        prediction_views.make_thumbnails,
        prediction_grid.tile_html,
    )
    # the tab reads boxes only (the other tabs read the other tables)
    monkeypatch.setattr(
        evidence.pq,
        "read_table",
        lambda p, **k: (str(p).endswith("boxes.parquet") and reads.append(p)) or real_read(p, **k),
    )
    monkeypatch.setattr(prediction_views, "make_thumbnails", lambda *a, **k: thumbs.append(a) or real_thumbs(*a, **k))
    monkeypatch.setattr(prediction_grid, "tile_html", lambda *a, **k: drawn.append(a) or real_tile(*a, **k))
    before = [el.proto.body for el in at.get("html")]
    at.run()
    assert (reads, thumbs, drawn) == ([], [], []) and [el.proto.body for el in at.get("html")] == before
    assert len(tiles(at, large=True)) == 2  # the opened image too
    pe.add_epoch(runs_root / RUN, 3)  # a new epoch: listed, and read only when shown
    at.run()
    assert list(epoch_slider(at).options)[-2] == "epoch 3" and epoch_slider(at).value == 1
    assert (reads, thumbs) == ([], [])
    epoch_slider(at).set_value(3).run()
    assert reads and not thumbs


def test_at_80_classes_the_filter_lists_them_all_and_the_legend_only_those_drawn(runs_root):
    from tests.test_browser_layout import LONG_NAMES

    run = pe.evidence_run(runs_root, RUN, epochs=())
    pe.write_sample(run, [{"file": pe.IMAGES[0], "width": pe.SIZE, "height": pe.SIZE}], LONG_NAMES)
    rows = [(0, GT, 71, 1.0, *pe.SLOTS[0]), (0, PRED, 71, 0.9, *pe.SLOTS[0]), (0, PRED, 5, 0.3, *pe.SLOTS[1])]
    columns = np.asarray(rows, dtype=float).T
    names = ("image", "kind", "cls", "conf", "x1", "y1", "x2", "y2")
    write_epoch(run, 1, {"boxes": dict(zip(names, columns, strict=True))})
    at = open_page("dashboard", query={"run": RUN})
    assert len(at.selectbox(key=f"pred_class_w_{RUN}").options) == 81
    assert re.findall(r'wb-chip"[^>]*></span>([^<]+)<', legend(at)) == [LONG_NAMES[5], LONG_NAMES[71]]
    ((tile),) = tiles(at)
    assert (tile["gt"], tile["pred"], tile["missed"], tile["false"]) == (1, 2, 0, 1)
