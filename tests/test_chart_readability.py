"""Charts a person can read (issue 18 item 5, defects seen in Chromium): 20 F1 lines in 20 colours that tell apart,
shaded bands named in the legend, a Compare axis that says when there is nothing to draw, and model sizes in order.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from app import chart_style, charts, class_charts, recipe_form
from tests.doctor import synthetic
from tests.fixtures import make_telemetry as mk
from tests.test_browser_layout import LONG_NAMES
from tests.test_browser_live_classes import f1_epoch
from trainers.runs.model_zoo import CHECKPOINTS, SCALES
from trainers.telemetry.events import read_events
from trainers.telemetry.run_log import RunLog

MIN_DELTA_E = 25  # CIE76 distance below which two line colours are easily taken for each other


def lab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a ``#rrggbb`` colour."""
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colours) -> float:
    return min(float(np.linalg.norm(lab(a) - lab(b))) for a, b in itertools.combinations(colours, 2))


def test_the_palette_has_20_colours_that_tell_apart_and_from_the_black_mean_line():
    first = chart_style.PALETTE[:20]
    assert len(set(first)) == 20 and closest_pair(first) >= MIN_DELTA_E
    assert min(float(np.linalg.norm(lab(c) - lab("#000000"))) for c in first) >= MIN_DELTA_E


def coco_log(epochs: int = 3) -> RunLog:
    rng = random.Random(0)
    return RunLog.from_events(
        [synthetic.run_start(names=LONG_NAMES), *(f1_epoch(n, rng) for n in range(1, epochs + 1))]
    )


def test_twenty_f1_lines_have_twenty_colours_person_and_fire_hydrant_included():
    # person (id 0) and fire hydrant (id 10) were both blue: colours went by class id, round a 10-colour palette
    shown = [LONG_NAMES[i] for i in (0, 10, 20, 30, 40, 50, 60, 70, *range(1, 10), 11, 12, 13)]
    fig = class_charts.f1_figure(coco_log(), shown)
    colours = {t.name: t.line.color for t in fig.data if t.name in shown}
    assert len(colours) == 20 and len(set(colours.values())) == 20
    assert closest_pair(list(colours.values())) >= MIN_DELTA_E
    assert colours["person"] != colours["fire hydrant"]


@pytest.mark.parametrize("builder", [charts.lr_figure, charts.grad_norm_figure, charts.loss_figure])
def test_shaded_bands_are_named_in_the_legend(builder):
    events, _ = read_events(mk.FIXTURES / "complete.jsonl")  # backbone frozen in epochs 1-2: shaded
    bands = [s for s in builder(events).layout.shapes if s.type == "rect"]
    assert bands and all(s.showlegend and s.name for s in bands)


def test_a_doctor_band_on_a_step_chart_is_named_in_the_legend():
    events, _ = read_events(mk.FIXTURES / "complete.jsonl")
    mark = chart_style.Mark("clip saturation", "orange", epoch=4, steps=(76, 100))
    bands = {s.name: s for s in charts.grad_norm_figure(events, marks=[mark]).layout.shapes if s.type == "rect"}
    assert bands["doctor: clip saturation"].showlegend


def two_runs(metric_key: str, values: tuple[float | None, float | None]) -> dict[str, list[dict]]:
    """Two runs of 3 epochs whose ``metric_key`` is the given constant (None: not logged)."""
    runs = {}
    for name, v in zip(("a", "b"), values, strict=True):
        metrics = {} if v is None else {metric_key: v}
        epochs = [synthetic.epoch(n, metrics=metrics) for n in (1, 2, 3)]
        if v is None:
            for e in epochs:
                e["metrics"].pop(metric_key, None)
        runs[name] = [synthetic.run_start(), *epochs]
    return runs


def y_range(fig) -> list[float] | None:
    r = fig.layout.yaxis.range
    return list(r) if r is not None else None


def test_compare_scores_stay_on_0_1_even_when_flat_at_zero():
    fig = charts.compare_figure(two_runs("metrics/mAP50-95(B)", (0.0, 0.0)), "mAP50-95")
    assert y_range(fig) == [0, 1.02]  # plotly's autorange spans -1..1 around a flat 0


def test_compare_says_so_when_no_run_has_the_metric():
    fig = charts.compare_figure(two_runs("metrics/mAP50-95(B)", (None, None)), "mAP50-95")
    assert [a.text for a in fig.layout.annotations] == ["No mAP50-95 in these runs yet"] and not fig.data


def test_compare_gives_a_constant_other_metric_a_range_around_it():
    fig = charts.compare_figure(two_runs("val/box_loss", (2.0, 2.0)), "val/box_loss")
    low, high = y_range(fig)
    assert low < 2.0 < high and high - low < 1.0


def test_model_sizes_are_listed_smallest_first_everywhere():
    assert SCALES == "nsmlx"
    for family in ("yolo26", "yolo11"):
        archs = [m for m in recipe_form.BUILTIN_MODELS if m.startswith(family)]
        assert archs == [f"{family}{s}.yaml" for s in SCALES]  # it read n, s, l, m, x
        ckpts = [c.name for c in CHECKPOINTS if c.name.startswith(family)]
        assert ckpts == [f"{family}{s}.pt" for s in SCALES]
