"""Which run won, and with which weights (issue 18 item 5): Compare's final metrics are those of the weights each run
kept (the final evaluation of best.pt when there is one, never the last epoch beside the best one); the winner, by the
metric the runs chose best.pt by and in the metric catalogue's direction, is marked and sortable on Compare, Sweeps
and Runs; identical curves that hide each other are said in one line."""

from __future__ import annotations

import pytest

from app import compare_views, run_views
from tests.doctor.runs import make_run
from tests.doctor.synthetic import epoch
from tests.test_app_pages import open_page
from trainers.metrics import MAP50, MAP50_95
from trainers.runs.compare import compare_runs, ranked, winners
from trainers.runs.folder import end_run
from trainers.runs.status import write_status

BASE = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}}


def final_eval(n: int, map50: float, map50_95: float) -> dict:
    """The final evaluation of best.pt as the trainer writes it: an epoch event with ``final_eval: true``."""
    return {**epoch(n, metrics={MAP50.key: map50, MAP50_95.key: map50_95}), "final_eval": True}


# ---- the metrics of the kept weights ---------------------------------------------------------------------------------
def test_final_metrics_are_those_of_the_final_evaluation_of_best_pt(runs_root):
    # best.pt is epoch 1's (make_run); the last epoch (3) has other metrics, the final evaluation others again
    make_run(runs_root, "evaluated", BASE, [epoch(1), epoch(2), epoch(3), final_eval(4, 0.91, 0.71)])
    make_run(runs_root, "stopped", BASE, [epoch(1), epoch(2), epoch(3)])  # no final evaluation: best epoch 1's
    evaluated, stopped = compare_runs([runs_root / "evaluated", runs_root / "stopped"]).results
    assert (evaluated.map50, evaluated.map50_95) == (pytest.approx(0.91), pytest.approx(0.71))
    assert evaluated.metrics_from == "final evaluation of best.pt (epoch 1)"
    assert (stopped.map50, stopped.map50_95) == (pytest.approx(0.52), pytest.approx(0.31))  # epoch 1, not epoch 3
    assert stopped.metrics_from == "best epoch 1"
    at = open_page("compare", cmp_runs=["evaluated", "stopped"])
    table = at.dataframe[0].value
    assert table[MAP50.label].tolist() == [pytest.approx(0.91), pytest.approx(0.52)]
    assert list(table["metrics of"]) == ["final evaluation of best.pt (epoch 1)", "best epoch 1"]


# ---- the winner ----------------------------------------------------------------------------------------------------
def test_the_winner_follows_the_metric_and_its_direction():
    assert winners({"a": {"name": "fitness", "value": 0.4}, "b": {"name": "fitness", "value": 0.6}})[0] == ["b"]
    loss = {"a": {"name": "val/box_loss", "value": 1.2}, "b": {"name": "val/box_loss", "value": 0.9}}
    best, why = winners(loss)
    assert best == ["b"] and why == "b: the lowest val/box_loss (0.9000) of 2 runs"  # lower is better for a loss
    assert ranked({**loss, "c": None}) == ["b", "a", "c"]
    assert winners({"a": {"name": "fitness", "value": 0.5}, "b": {"name": "fitness", "value": 0.5}})[0] == ["a", "b"]
    mixed = {"a": {"name": "fitness", "value": 0.4}, "b": {"name": "mAP50", "value": 0.6}}
    assert winners(mixed) == ([], "no winner: these runs choose best.pt by different metrics (fitness, mAP50)")
    assert winners({"a": {"name": "fitness", "value": 0.4}, "b": None})[0] == []


def test_compare_marks_the_winner_and_the_best_value_sorts(runs_root):
    for name, value in (("low", 0.3), ("high", 0.6)):
        end_run(make_run(runs_root, name, BASE), "completed", best={"epoch": 1, "name": "fitness", "value": value})
    at = open_page("compare", cmp_runs=["low", "high"])
    table = at.dataframe[0].value
    assert list(table["winner"]) == ["", compare_views.WINNER_MARK]
    assert table["best value"].dtype.kind == "f"  # a number column: the table sorts by it
    assert any("winner: high: the highest fitness (0.6000) of 2 runs" in c.value for c in at.caption)


def sweep_runs(root, values: dict[str, float]) -> None:
    """Variants of a sweep 'lr', with these best fitness values, recorded as the sweep process records them."""
    from trainers.run_files import SWEEP_RECORD_FILE, SWEEPS_DIR, write_json_atomic

    for n, (name, value) in enumerate(values.items(), start=1):
        make_run(root, name, BASE)
        write_status(root / name, sweep="lr", sweep_values={"train.lr0": 0.01 * n},
                     best_metric={"name": "fitness", "value": value})  # fmt: skip
    variants = [{"run": name, "values": {"train.lr0": 0.01 * n}} for n, name in enumerate(values, start=1)]
    doc = {"name": "lr", "base": "b.yaml", "parallel": 1, "cluster": None, "created": "2026-12-07T00:00:00",
           "variants": variants}  # fmt: skip
    (root / SWEEPS_DIR / "lr").mkdir(parents=True)
    write_json_atomic(root / SWEEPS_DIR / "lr" / SWEEP_RECORD_FILE, doc)


def test_sweeps_marks_each_sweeps_winner_with_a_sortable_best_value(runs_root):
    sweep_runs(runs_root, {"lr-1": 0.3, "lr-2": 0.7, "lr-3": 0.5})
    at = open_page("sweeps")
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(table["winner"]) == ["", compare_views.WINNER_MARK, ""]
    assert table["best value"].tolist() == [0.3, 0.7, 0.5]
    assert any("winner: lr-2: the highest fitness" in c.value for c in at.caption)


def test_runs_marks_each_sweeps_winner_and_lists_its_variants_best_first(runs_root):
    sweep_runs(runs_root, {"lr-1": 0.3, "lr-2": 0.7, "lr-3": 0.5})
    rows = run_views.run_rows(runs_root)
    assert run_views.sweep_winners(rows) == {"lr": ["lr-2"]}
    assert [r.name for r in run_views.best_first(rows)] == ["lr-2", "lr-3", "lr-1"]
    at = open_page("runs")
    names = [m.value for m in at.markdown if m.value.startswith("**lr-")]
    assert names == ["**lr-1**", f"**lr-2** {compare_views.WINNER_MARK} best of its sweep", "**lr-3**"]
    at.toggle(key="runs_best_first").set_value(True).run()
    assert [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**lr-")] == ["lr-2", "lr-3", "lr-1"]


# ---- identical curves ----------------------------------------------------------------------------------------------
def test_identical_curves_are_said_in_one_line(runs_root):
    make_run(runs_root, "a", BASE)
    make_run(runs_root, "twin", BASE)  # the same epochs: every curve of one hides the other's
    make_run(runs_root, "other", BASE, [epoch(1), epoch(2, f1=[0.2] * 4)])
    at = open_page("compare", cmp_runs=["a", "twin", "other"])
    said = [c.value for c in at.caption if c.value.startswith("Identical")]
    assert said == [
        "Identical mAP50-95 curves: a and twin (one line hides the other).",
        "Identical F1 of 'circle' curves: a and twin (one line hides the other).",
    ]
    curves = {"x": ([1, 2], [0.1, 0.2]), "y": ([1, 2], [0.1, 0.2]), "z": ([1, 2], [0.1, 0.2]), "w": ([1, 2], [0, 1])}
    assert (
        compare_views.identical_curves(curves, "F1") == "Identical F1 curves: x, y and z (one line hides the others)."
    )
    assert compare_views.identical_curves({"x": ([1], [None]), "y": ([1], [None])}, "F1") is None  # nothing drawn


def test_a_running_runs_best_is_the_epoch_best_pt_was_last_saved_at():
    from tests.doctor.synthetic import log
    from trainers.runs.compare import RunResult

    chosen = {"name": "fitness", "value": 0.42}
    running = log([{**epoch(1), "best_metric": chosen}, {**epoch(2), "best_metric": {"name": "fitness", "value": 0.3}}])
    assert running.run_end is None and running.best_epoch == 1
    assert RunResult.from_log("r", running).best_metric == chosen
