"""Chart builders (app/charts.py) on recorded telemetry (tests/fixtures/*.jsonl, from make_telemetry.py)."""

from __future__ import annotations

import copy
import pickle
import time

import numpy as np
import pytest

from app import chart_style, charts, class_charts, dataset_charts
from tests.fixtures import make_telemetry as mk
from trainers.telemetry.events import read_events
from trainers.telemetry.run_log import RunLog, drop_superseded
from trainers.telemetry.schema import validate_event
from trainers.telemetry.step_data import minmax_downsample

FIXTURES = mk.FIXTURES
ALL_BUILDERS = (
    class_charts.f1_figure,
    class_charts.f1_heatmap,
    charts.metrics_figure,
    charts.loss_figure,
    charts.lr_figure,
    charts.grad_norm_figure,
)


def load(name: str) -> list[dict]:
    events, _ = read_events(FIXTURES / f"{name}.jsonl")
    return events


def names_of(fig) -> list[str]:
    return [t.name for t in fig.data]


def shape_names(fig) -> list[str]:
    return [s.name for s in fig.layout.shapes]


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


# ---- the recorded fixtures -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["empty", *mk.SCENARIOS])
def test_fixtures_are_schema_valid_and_up_to_date(name, tmp_path):
    events = load(name)
    names = None
    for ev in events:
        names = ev["names"] if ev["event"] == "run_start" else names
        assert validate_event(ev, names) == [], ev
    mk.write_all(tmp_path)  # the generator reproduces the committed bytes exactly
    assert (tmp_path / f"{name}.jsonl").read_bytes() == (FIXTURES / f"{name}.jsonl").read_bytes()


# ---- empty / one epoch / failed ------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", ALL_BUILDERS)
def test_empty_log_gives_an_empty_figure_that_says_so(builder):
    fig = builder(load("empty"))
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == [chart_style.NO_DATA]


def test_run_start_only_log_is_still_empty():
    events = load("one_epoch")[:1]
    assert events[0]["event"] == "run_start"
    log = RunLog.from_events(events)
    assert log.status == "running" and log.n_steps == 0 and log.names == mk.NAMES
    for builder in ALL_BUILDERS:
        assert len(builder(log).data) == 0


def test_one_epoch_log():
    events = load("one_epoch")
    log = RunLog.from_events(events)
    epoch = next(e for e in events if e["event"] == "epoch" and not e["final_eval"])

    f1 = class_charts.f1_figure(log)
    assert names_of(f1) == ["mean F1", *mk.NAMES]  # the mean heads the legend
    for row in epoch["per_class"]:
        assert list(trace(f1, row["name"]).y) == [row["f1"]]
        assert list(trace(f1, row["name"]).x) == [1]
    assert trace(f1, "person").mode == "lines+markers"  # a single point must be visible
    assert shape_names(f1) == ["best epoch 1"]

    metrics = charts.metrics_figure(log)
    assert names_of(metrics) == ["mAP50", "mAP50-95", "precision", "recall"]
    assert list(trace(metrics, "mAP50-95").y) == [epoch["metrics"]["metrics/mAP50-95(B)"]]

    lr = charts.lr_figure(log)
    assert names_of(lr) == mk.STOCK_GROUPS
    steps = [e for e in events if e["event"] == "step"]
    assert list(trace(lr, "bias").y) == [s["lr"]["bias"] for s in steps]

    grad = charts.grad_norm_figure(log)
    assert names_of(grad) == ["total (pre-clip)", *mk.STOCK_GROUPS]  # clipping off: no threshold line
    assert grad.layout.title.text == "Gradient norm (clipping off)"
    assert list(trace(grad, "total (pre-clip)").y) == pytest.approx([s["grad_norm"] for s in steps])

    assert log.final_eval is not None and len(log.epochs) == 1  # the final_eval is not a second epoch
    assert log.status == "completed" and log.failure is None


@pytest.mark.parametrize("epochs", [1, 2])
def test_short_runs_tick_whole_epochs_and_legends_stay_clear_of_the_axis_titles(epochs):
    """A 1-2 epoch heatmap ticked 0.5, 1.5...; a legend below the plot covered the x-axis title (issue 11)."""
    events = [e for e in load("complete") if e["event"] != "epoch" or e["epoch"] <= epochs]
    log = RunLog.from_events(events)
    for build in (class_charts.f1_figure, class_charts.f1_heatmap, charts.metrics_figure, charts.loss_figure):
        fig = build(log)
        assert (fig.layout.xaxis.tickmode, fig.layout.xaxis.dtick) == ("linear", 1), build.__name__
    two = {"a": log, "b": log}
    for fig in (charts.compare_figure(two, "mAP50-95"), class_charts.compare_f1_figure(two, mk.NAMES[0])):
        assert (fig.layout.xaxis.tickmode, fig.layout.xaxis.dtick) == ("linear", 1), fig.layout.title.text
    for build in ALL_BUILDERS:
        legend = build(log).layout.legend
        if legend.orientation is not None:  # a legend beside the plot (x past the right edge), never over an axis
            assert legend.orientation == "v" and legend.x >= 1 and legend.xanchor == "left", build.__name__


def test_failed_run_keeps_its_charts_and_reports_the_error():
    log = RunLog.from_events(load("failed"))
    assert log.status == "failed"
    assert log.failure["error"].startswith("RuntimeError: CUDA out of memory")
    assert log.failure["traceback"][-1] == log.failure["error"]
    assert log.epoch_numbers == [1, 2]
    assert log.n_steps == 20 + 20 + 7  # the steps of the crashed epoch 3 are real and stay
    assert list(log.steps.column("epoch")[-7:]) == [3] * 7
    grad = charts.grad_norm_figure(log)
    assert names_of(grad) == ["total (pre-clip)", "clip threshold", *mk.STOCK_GROUPS]
    assert set(trace(grad, "clip threshold").y) == {10.0}
    assert shape_names(charts.metrics_figure(log)) == ["best epoch 2"]


# ---- the full run --------------------------------------------------------------------------------------------------
def test_complete_run_charts():
    events = load("complete")
    log = RunLog.from_events(events)
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch" and not e["final_eval"]]

    heat = class_charts.f1_heatmap(log, order=mk.NAMES)  # rows in the order asked for
    (hm,) = heat.data
    assert list(hm.y) == mk.NAMES and list(hm.x) == [1, 2, 3, 4, 5, 6]
    z = np.array(hm.z, dtype=float)
    assert z.shape == (4, 6)
    assert z[3, 0] == 0.0  # bicycle scored 0 in epoch 1
    assert z[1, 4] == next(r["f1"] for r in epochs[4]["per_class"] if r["name"] == "car")
    worst_first = class_charts.f1_heatmap(log).data[0]  # by default: the worst F1 at the last epoch first
    last = {r["name"]: r["f1"] for r in epochs[-1]["per_class"]}
    assert list(worst_first.y) == sorted(mk.NAMES, key=lambda n: last[n])

    lr = charts.lr_figure(log)
    assert names_of(lr) == mk.LAYER_LR_GROUPS  # one trace per named group
    head, backbone = np.array(trace(lr, "head/weight").y), np.array(trace(lr, "backbone/weight").y)
    assert backbone[30:] == pytest.approx(0.1 * head[30:])  # after warmup: the 0.1 ratio holds at every step
    assert trace(lr, "head/bias").y[0] > trace(lr, "head/bias").y[25]  # warmup: bias falls from 0.1
    assert shape_names(lr) == ["unfreeze (epoch 3)", "frozen"]
    first_step_epoch3 = next(s["step"] for s in steps if s["epoch"] == 3)
    assert lr.layout.shapes[0].x0 == first_step_epoch3 == 51
    frozen = lr.layout.shapes[1]  # the steps that trained with a frozen backbone are shaded: epochs 1 and 2
    assert (frozen.x0, frozen.x1) == (steps[0]["step"], first_step_epoch3 - 1)
    assert charts.lr_figure(log, log_y=True).layout.yaxis.type == "log"

    grad = charts.grad_norm_figure(log)
    assert names_of(grad) == ["total (pre-clip)", "clip threshold", *mk.LAYER_LR_GROUPS]
    share = sum(s["clipped"] for s in steps) / len(steps)
    assert 0 < share < 1
    assert grad.layout.title.text == f"Gradient norm: {share:.1%} of {len(steps):,} steps clipped"
    assert max(trace(grad, "backbone/weight").y[:50]) == 0.0  # frozen backbone: no gradient for 2 epochs

    losses = charts.loss_figure(log)
    assert set(names_of(losses)) == {f"{s}/{k}_loss" for s in ("train", "val") for k in ("box", "cls", "dfl")}
    assert trace(losses, "val/box_loss").line.dash == "dash" and trace(losses, "train/box_loss").line.dash == "solid"
    assert trace(losses, "val/box_loss").line.color == trace(losses, "train/box_loss").line.color

    f1 = class_charts.f1_figure(log)
    assert shape_names(f1) == ["best epoch 5", "unfreeze (epoch 3)", "frozen"]
    shade = f1.layout.shapes[2]
    assert (shade.x0, shade.x1) == (0.5, 2.5)  # epochs 1-2 frozen, epoch 3 unfrozen
    labels = [a for a in f1.layout.annotations if a.text.startswith(("best", "unfreeze"))]
    assert len({a.yshift for a in labels}) == 2  # the two marker labels sit on different rows: they never overlap
    assert list(trace(f1, "mean F1").y) == [e["mean_f1"] for e in epochs]


# ---- superseded steps of a resumed run -----------------------------------------------------------------------------
def test_drop_superseded_on_a_small_log():
    events = [
        {"event": "run_start", "start_epoch": 1},
        {"event": "step", "epoch": 1, "step": 1},
        {"event": "epoch", "epoch": 1},
        {"event": "step", "epoch": 2, "step": 2},  # interrupted epoch 2 ...
        {"event": "epoch", "epoch": 2},  # ... even an epoch event written before last.pt was saved
        {"event": "unfreeze", "epoch": 2},
        {"event": "run_end", "status": "stopped"},
        {"event": "run_start", "start_epoch": 2, "resumed": True},
        {"event": "step", "epoch": 2, "step": 2},
        {"event": "epoch", "epoch": 2},
    ]
    kept = drop_superseded(events)
    assert kept == [events[i] for i in (0, 1, 2, 6, 7, 8, 9)]
    assert drop_superseded(events[:7]) == events[:7]  # nothing is superseded before a resume


def test_resumed_run_drops_the_interrupted_epoch_steps():
    events = load("resumed")
    superseded = [e for e in events if e["event"] == "step" and e["grad_norm"] == mk.SUPERSEDED_GRAD_NORM]
    assert len(superseded) == 10
    kept = drop_superseded(events)
    assert [e for e in events if e not in kept] == superseded

    log = RunLog.from_events(events)
    steps = log.steps.column("step")
    assert log.n_steps == 80 and list(steps) == list(range(1, 81))  # contiguous, no duplicates
    assert mk.SUPERSEDED_GRAD_NORM not in log.steps.column("grad_norm")
    assert mk.SUPERSEDED_GRAD_NORM not in trace(charts.grad_norm_figure(log), "total (pre-clip)").y
    assert log.epoch_numbers == [1, 2, 3, 4]
    assert log.status == "completed" and len(log.run_starts) == 2
    assert log.best_epoch == 4


@pytest.mark.parametrize("chunk", [1, 7, 33, 1000])
def test_incremental_folding_equals_one_shot(chunk):
    events = load("resumed") + load("complete")[1:]  # a resumed run, then more epochs of another shape
    whole = RunLog.from_events(events)
    parts = RunLog()
    for i in range(0, len(events), chunk):
        parts.extend(events[i : i + chunk])
    for col in ("epoch", "step", "grad_norm", "clipped", "max_norm"):
        np.testing.assert_array_equal(parts.steps.column(col), whole.steps.column(col))
    for g in whole.groups:
        np.testing.assert_array_equal(parts.steps.column(f"lr/{g}"), whole.steps.column(f"lr/{g}"))
        np.testing.assert_array_equal(parts.steps.column(f"grad_norm/{g}"), whole.steps.column(f"grad_norm/{g}"))
    assert parts.epochs == whole.epochs and parts.run_end == whole.run_end and parts.n_events == len(events)
    # and both agree with the pure function
    kept_steps = [e["step"] for e in drop_superseded(events) if e["event"] == "step"]
    assert list(whole.steps.column("step")) == kept_steps


def epoch_series(log: RunLog) -> tuple:
    keys = log.metric_keys()
    return log.epoch_numbers, keys, [log.epoch_metric(k) for k in [*keys, "mean_f1", "epoch_time"]], log.best_epoch


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_epoch_series_kept_between_refreshes_equal_a_fresh_fold(chunk):
    # a resumed run (its interrupted epoch logged again: the kept series start over), an epoch re-logged out of
    # order, then epochs with more metrics; read after every chunk as a live dashboard does
    events = load("resumed") + load("complete")[1:]
    events.insert(len(events) - 3, {**next(e for e in events if e["event"] == "epoch"), "metrics": {"late": 1.0}})
    live = RunLog()
    for i in range(0, len(events), chunk):
        live.extend(events[i : i + chunk])
        seen = epoch_series(live)
        seen[0].append(-1)  # a caller changing what it got changes nothing kept
        assert epoch_series(live) == epoch_series(RunLog.from_events(events[: i + chunk]))
        saved = [e["epoch"] for e in live.epochs if e.get("best_saved")]
        assert live.best_epoch == (live.run_end or {}).get("best_epoch", saved[-1] if saved else None)
    frozen = live.snapshot()
    before = epoch_series(frozen)
    last = [e for e in events if e["event"] == "epoch" and not e.get("final_eval")][-1]
    live.extend([{**last, "epoch": 99, "metrics": {"extra": 2.0}}])
    assert epoch_series(live)[0][-1] == 99 and "extra" in epoch_series(live)[1]
    assert epoch_series(frozen) == before  # a snapshot keeps its own epochs


def test_nulls_and_missing_fields_become_gaps():
    events = [
        {"event": "run_start", "param_groups": ["a", "b"], "names": ["x"], "start_epoch": 1},
        {"event": "step", "epoch": 1, "step": 1, "lr": {"a": 0.1, "b": None}, "grad_norm": None, "clipped": False},
        {"event": "step", "epoch": 1, "step": 2, "lr": {"a": 0.2}, "grad_norm": 3.0, "loss": None, "max_norm": 1.0},
        {"event": "mystery", "epoch": 1},  # unknown event types are ignored
    ]
    log = RunLog.from_events(events)
    assert log.n_steps == 2 and log.n_events == 4
    np.testing.assert_array_equal(log.steps.column("lr/a"), [0.1, 0.2])
    np.testing.assert_array_equal(log.steps.column("lr/b"), [np.nan, np.nan])
    np.testing.assert_array_equal(log.steps.column("grad_norm"), [np.nan, 3.0])
    assert names_of(charts.lr_figure(log)) == ["a"]  # a group with no values draws nothing


# ---- downsampling --------------------------------------------------------------------------------------------------
def test_minmax_downsample_keeps_extremes_order_and_bound():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100_003)
    y[777], y[99_000] = 50.0, -50.0
    x = np.arange(y.size)
    dx, dy = minmax_downsample(x, y, max_points=1000)
    assert len(dx) <= 1000 and len(dx) == len(dy)
    assert np.all(np.diff(dx) > 0)
    assert dy.max() == 50.0 and dx[dy.argmax()] == 777
    assert dy.min() == -50.0 and dx[dy.argmin()] == 99_000
    np.testing.assert_array_equal(dy, y[dx])
    small_x, small_y = minmax_downsample(x[:500], y[:500], max_points=1000)
    np.testing.assert_array_equal(small_y, y[:500])


def test_minmax_downsample_prefers_numbers_over_nans():
    y = np.full(10_000, np.nan)
    y[5000:] = 1.0
    y[7000] = 9.0
    dx, dy = minmax_downsample(np.arange(y.size), y, max_points=100)
    assert 9.0 in dy
    assert np.isnan(dy[dx < 5000]).all() and not np.isnan(dy[dx >= 5000]).any()


# ---- 300k steps ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_events():
    return mk.long_run(n_steps=300_000, spike_at=123_457, spike=1e4)


def build_all(events) -> list:
    log = RunLog.from_events(events)
    return [builder(log) for builder in ALL_BUILDERS]


def test_300k_step_log_builds_in_under_a_second(long_events):
    build_all(long_events[:5000])  # warm plotly's validators once
    cpu, wall = [], []
    for _ in range(3):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        figs = build_all(long_events)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    # Single-threaded work, so CPU time is the wall time of an idle machine; unlike wall time, it does not grow
    # when other processes share the cores (this suite runs next to trainings).
    assert min(cpu) < 1.0, f"cpu {cpu}, wall {wall}"
    lr, grad = figs[4], figs[5]
    assert names_of(lr) == mk.LAYER_LR_GROUPS
    for fig in (lr, grad):
        assert all(len(t.x) <= charts.MAX_POINTS for t in fig.data)


def test_300k_spike_is_still_drawn(long_events):
    log = RunLog.from_events(long_events)
    assert log.n_steps == 300_000
    grad = charts.grad_norm_figure(log)
    total = trace(grad, "total (pre-clip)")
    assert len(total.x) <= charts.MAX_POINTS
    assert max(total.y) == 1e4 and total.x[int(np.argmax(total.y))] == 123_457
    share = float(np.mean([e["clipped"] for e in long_events if e["event"] == "step"]))
    assert grad.layout.title.text == f"Gradient norm: {share:.1%} of 300,000 steps clipped"


# ---- compare and counts --------------------------------------------------------------------------------------------
def test_compare_figures_overlay_runs():
    logs = {"a": load("complete"), "b": load("one_epoch"), "empty": load("empty")}
    fig = charts.compare_figure(logs, "mAP50-95")
    assert names_of(fig) == ["a", "b"]
    assert len(trace(fig, "a").y) == 6 and len(trace(fig, "b").y) == 1
    f1 = class_charts.compare_f1_figure(logs, "car")
    assert names_of(f1) == ["a", "b"]
    epoch = next(e for e in load("one_epoch") if e["event"] == "epoch")
    assert list(trace(f1, "b").y) == [next(r["f1"] for r in epoch["per_class"] if r["name"] == "car")]
    assert len(charts.compare_figure({"empty": []}, "mean F1").data) == 0


def test_counts_and_weights_figures():
    fig = dataset_charts.counts_figure(["a", "b"], [10, 0], [5, 0], log_y=True)
    assert names_of(fig) == ["instances", "images"] and list(fig.data[0].y) == [10, 0]
    assert fig.layout.yaxis.type == "log"
    w = dataset_charts.weights_figure(["a", "b"], [0.5, 1.5])
    assert list(w.data[0].y) == [0.5, 1.5]


# ---- what st.plotly_chart serializes -------------------------------------------------------------------------------
def stock_json(fig) -> str:
    import plotly.graph_objects as go
    import plotly.io

    return plotly.io.to_json(go.Figure.to_dict(fig), validate=False)


def fast_json(fig) -> str:
    import plotly.io

    return plotly.io.to_json(fig.to_dict(), validate=False)


@pytest.mark.parametrize("name", ["complete", "resumed", "one_epoch", "empty"])
def test_every_chart_serializes_as_plotly_itself_would(name):
    log = RunLog.from_events(load(name))
    figs = [builder(log) for builder in ALL_BUILDERS]
    figs += [charts.compare_figure({"a": log, "b": load("complete")}, "mAP50"), class_charts.f1_heatmap(log, [])]
    figs += [dataset_charts.counts_figure(["a", "b"], [10, 0], [5, 0]), dataset_charts.weights_figure(["a"], [0.5])]
    for fig in figs:
        assert isinstance(fig, chart_style.Figure) and not fig.built
        unbuilt = fast_json(fig)  # from the chart's dicts, as st.plotly_chart serializes it
        assert not fig.built
        assert unbuilt == stock_json(fig) == fast_json(fig)  # stock_json builds plotly's objects: both paths
        assert fig.built


@pytest.mark.parametrize("template", [None, "plotly_dark", "streamlit"])
def test_an_unbuilt_figure_carries_the_default_template_plotly_would(template, monkeypatch):
    import plotly.io as pio

    if template == "streamlit":
        from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

        configure_streamlit_plotly_theme()  # what importing st.plotly_chart does in the UI process
    monkeypatch.setattr(pio.templates, "default", template)
    fig = charts.metrics_figure(RunLog.from_events(load("complete")))
    unbuilt = fast_json(fig)
    assert unbuilt == stock_json(fig)
    assert (template is None) == ('"template"' not in unbuilt)
    for own in (None, {"layout": {"font": {"size": 9}, "colorway": np.array(["#000", "#111"])}}):  # a chart's own
        chart = chart_style.figure("t", "x", "y")
        chart.update_layout(template=own)
        chart.add_trace(chart_style.scatter(x=np.arange(3), y=np.arange(3.0)))
        fig = chart.figure()
        assert fast_json(fig) == stock_json(fig)


def test_the_dashboard_serializes_a_figure_without_building_plotlys_objects():
    import plotly.io
    import plotly.tools

    fig = charts.grad_norm_figure(RunLog.from_events(load("complete")))
    spec = plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)  # as st does
    assert not fig.built and '"total (pre-clip)"' in spec
    assert names_of(fig)[0] == "total (pre-clip)" and fig.built  # any plotly attribute builds it, then works
    fig.update_layout(height=567)
    assert fig.layout.height == 567 and '"height":567' in fast_json(fig)
    with pytest.raises(AttributeError):
        fig.no_such_attribute  # noqa: B018
    other = charts.grad_norm_figure(RunLog.from_events(load("complete")))
    twin = copy.deepcopy(other)
    assert not other.built and not twin.built and fast_json(twin) == fast_json(other) == spec
    assert fast_json(pickle.loads(pickle.dumps(other))) == spec


def test_typed_arrays_match_plotly_for_every_dtype_and_place():
    pd = pytest.importorskip("pandas")
    f64 = np.linspace(0, 1, 12)
    arrays = {
        "f8": f64, "f4": f64.astype(np.float32), "f2": f64.astype(np.float16), "nan": np.array([np.nan, 1.0]),
        "i8 small": np.arange(5), "i8 int16": np.array([-300, 300]), "i8 int32": np.array([0, 70_000]),
        "i8 wide": np.array([0, 2**40]), "u8": np.array([1, 2], dtype=np.uint64),
        "u8 wide": np.array([0, 2**40], dtype=np.uint64), "i4": np.arange(3, dtype=np.int32),
        "bool": np.array([True, False]), "empty": np.array([]), "2-D": f64.reshape(3, 4),
        "strided": f64[::3], "text": np.array(["a", "b"]),
        "object": np.array([1, "a"], dtype=object), "dates": np.array(["2026-01-01", "2026-01-02"], "datetime64[D]"),
    }  # fmt: skip
    chart = chart_style.figure("t", "x", "y")
    for label, a in arrays.items():
        chart.add_trace(chart_style.scatter(x=a, y=a, name=label, customdata=[a, {"z": a}]))
    chart.add_trace(chart_style.heatmap(z=f64.reshape(3, 4), x=pd.Series([1, 2, 3, 4]), y=["a", "b", "c"]))
    chart.update_yaxes(range=np.array([0.0, 1.0]))  # a skipped key: plotly leaves arrays under it as they are
    fig = chart.figure()
    assert fast_json(fig) == stock_json(fig) == fast_json(fig)  # unbuilt, then built by stock_json
    assert fig.to_dict()["data"][0]["x"]["dtype"] == "f8"  # encoded, not passed through


def test_serializing_the_dashboard_figures_is_several_times_cheaper_than_plotlys_own():
    events = mk.long_run(n_steps=20_000, spike_at=1234, spike=1e4)
    log = RunLog.from_events(events)
    import plotly.graph_objects as go

    def cpu(fn, built: bool) -> float:
        best = []
        for _ in range(5):
            figs = [builder(log) for builder in ALL_BUILDERS]  # new figures, as after a refresh changed their data
            if built:
                [fig.data for fig in figs]
            t0 = time.process_time()
            for fig in figs:
                fn(fig)
            best.append(time.process_time() - t0)
        return min(best)

    cpu(stock_json, False), cpu(fast_json, False)  # warm both paths
    stock = cpu(go.Figure.to_dict, False)  # plotly: build its objects, then its to_dict
    built, unbuilt = cpu(chart_style.Figure.to_dict, True), cpu(chart_style.Figure.to_dict, False)
    ms = f"plotly {stock * 1e3:.1f} ms, ours built {built * 1e3:.1f} ms, ours unbuilt {unbuilt * 1e3:.1f} ms"
    print(f"building and to_dict of the six dashboard figures: {ms} CPU")
    assert stock / unbuilt >= 3 and stock / built >= 1.5, ms  # measured 4-7x


def test_the_metric_charts_name_the_catalogue_metrics():
    """The detection chart's traces and the compare chart's choices, by label, read from trainers.metrics."""
    assert charts.DETECTION_METRICS == {
        "metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50-95",
        "metrics/precision(B)": "precision", "metrics/recall(B)": "recall",
    }  # fmt: skip
    assert list(charts.COMPARE_METRICS) == ["mAP50", "mAP50-95", "precision", "recall", "mean F1", "fitness"]
    assert charts.COMPARE_METRICS["mean F1"] == "mean_f1" and charts.COMPARE_METRICS["fitness"] == "fitness"
