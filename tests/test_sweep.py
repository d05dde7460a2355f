"""Sweeps (trainers/sweeps/sweep_file.py, trainers/sweeps/runner.py): the file's checks and expansion, and real sweeps:
two
variants at a time on this machine, and a 2x2 grid on a real Ray head (the session's, tests/ray_cluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, recipe_for
from trainers.cli import commands as cli
from trainers.errors import RunError
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status
from trainers.sweeps.runner import short_keys
from trainers.sweeps.sweep_file import MAX_VARIANTS, SweepError, load_sweep, read_records
from trainers.telemetry.events import read_events


def write_yaml(path: Path, doc) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def base(tmp_path) -> Path:
    """A base recipe: the demo fine-tune, tiny, with per-class F1 only (layer_lr and grad_clip left off)."""
    train = {"epochs": 2, "imgsz": 64, "batch": 16, "nbs": 16}
    return write_yaml(tmp_path / "base.yaml", recipe_for(DEMO_DATA, model=str(DEMO_BASE), train=train, per_class_f1={}))


def sweep_file(tmp_path: Path, grid, **extra) -> Path:
    return write_yaml(tmp_path / "sweep.yaml", {"base": "base.yaml", "grid": grid, **extra})


def recipe_diff(recipes: list[dict]) -> dict[str, list]:
    """Dotted key -> the value in each recipe, for the keys whose values differ (a stand-in for run_compare)."""

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    flats = [flat(r) for r in recipes]
    keys = dict.fromkeys(k for f in flats for k in f)
    return {k: [f.get(k) for f in flats] for k in keys if len({json.dumps(f.get(k)) for f in flats}) > 1}


# ---- the file ------------------------------------------------------------------------------------------------------
def test_grid_expands_into_named_variants_and_turns_customizations_on(base, tmp_path):
    grid = {"customizations.layer_lr.backbone_ratio": [0.05, 0.3], "customizations.grad_clip.max_norm": [5.0, 10.0]}
    sweep = load_sweep(sweep_file(tmp_path, grid), root=tmp_path / "runs", name="lr")
    assert [v.run for v in sweep.variants] == ["lr-1", "lr-2", "lr-3", "lr-4"]
    assert [tuple(v.values.values()) for v in sweep.variants] == [(0.05, 5.0), (0.05, 10.0), (0.3, 5.0), (0.3, 10.0)]
    third = sweep.variants[2].recipe
    assert third.customizations.layer_lr.backbone_ratio == 0.3  # off in the base: turned on with the value
    assert third.customizations.grad_clip.max_norm == 5.0
    assert third.customizations.per_class_f1 is not None  # the base's blocks stay
    assert third.data == str(DEMO_DATA)  # the base's paths, resolved against the base recipe's folder
    assert recipe_diff([v.recipe.to_dict() for v in sweep.variants]) == {
        "customizations.layer_lr.backbone_ratio": [0.05, 0.05, 0.3, 0.3],
        "customizations.grad_clip.max_norm": [5.0, 10.0, 5.0, 10.0],
    }
    assert short_keys(sweep.grid) == {
        "customizations.layer_lr.backbone_ratio": "backbone_ratio",
        "customizations.grad_clip.max_norm": "max_norm",
    }


def test_a_block_can_be_switched_off_and_on_and_train_args_varied(base, tmp_path):
    grid = {"customizations.per_class_f1": [False, {}], "train.lr0": [0.01, None]}
    sweep = load_sweep(sweep_file(tmp_path, grid, name="onoff", early_stop={"epoch": 1}), root=tmp_path)
    recipes = [v.recipe for v in sweep.variants]
    assert [r.customizations.per_class_f1 is not None for r in recipes] == [False, False, True, True]
    assert [r.train.get("lr0") for r in recipes] == [0.01, None, 0.01, None]  # None: ultralytics' default
    assert sweep.name == "onoff" and sweep.early_stop.epoch == 1 and sweep.early_stop.keep == 0.5


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"grid": {"train.lr00": [1]}}, "grid.train.lr00: unknown key; not an ultralytics training argument"),
        ({"grid": {"customizations.layer_lr.ratio": [1]}}, "grid.customizations.layer_lr.ratio: unknown key; layer_lr"),
        ({"grid": {"customizations.nope": [{}]}}, "grid.customizations.nope: unknown key; customizations are"),
        ({"grid": {"optimizer": ["SGD"]}}, "grid.optimizer: unknown key; use model, data, train.<argument>"),
        ({"grid": {"train.name": ["x"]}}, "grid.train.name: set by the workbench"),
        ({"grid": {}}, "grid: empty; map dotted recipe keys to lists of values"),
        ({"grid": None}, "grid: empty"),
        ({"grid": {"train.lr0": 0.1}}, "grid.train.lr0: must be a list of values, got 0.1"),
        ({"grid": {"train.lr0": []}}, "grid.train.lr0: empty list"),
        ({"grid": {"train.epochs": [2, 0]}}, "grid.train.epochs = 0: train.epochs must be an integer >= 1, got 0"),
        ({"grid": {"customizations.grad_clip.max_norm": [-1]}}, "grid.customizations.grad_clip.max_norm = -1: "),
        ({"grid": {"train.lr0": [0.1]}, "typo": 1}, "typo: unknown key; allowed: base, grid, name, parallel"),
        ({"grid": {"train.lr0": [0.1]}, "early_stop": {"epoch": 0}}, "early_stop.epoch: must be an integer >= 1"),
        ({"grid": {"train.lr0": [0.1]}, "name": "a b"}, "sweep name 'a b-256' is not allowed"),
    ],
)
def test_bad_sweep_files_exit_2_with_one_line_naming_the_key(doc, message, base, tmp_path, capsys):
    path = write_yaml(tmp_path / "sweep.yaml", {"base": "base.yaml", **doc})
    assert cli.main(["sweep", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"workbench: error: {path}: "), err
    assert message in err
    assert not (tmp_path / "runs").exists()  # nothing was started or recorded


def test_more_than_256_variants_is_refused(base, tmp_path, capsys):
    grid = {"train.lr0": [0.001 * i for i in range(1, 18)], "train.momentum": [0.5 + 0.01 * i for i in range(16)]}
    assert cli.main(["sweep", str(sweep_file(tmp_path, grid)), "--runs-dir", str(tmp_path)]) == 2
    assert f"grid: 17 x 16 = 272 variants, over the limit of {MAX_VARIANTS}" in capsys.readouterr().err
    assert len(load_sweep(sweep_file(tmp_path, {"train.lr0": [i / 1000 for i in range(1, 257)]})).variants) == 256


def test_a_base_that_is_missing_or_invalid_is_named(tmp_path):
    with pytest.raises(SweepError, match=r"base: .*recipe file not found"):
        load_sweep(write_yaml(tmp_path / "s.yaml", {"base": "nope.yaml", "grid": {"train.lr0": [1]}}))
    with pytest.raises(SweepError, match="sweep file not found"):
        load_sweep(tmp_path / "missing.yaml")


def test_variant_names_in_use_are_refused_before_anything_starts(base, tmp_path):
    create_run_dir(tmp_path / "runs", "lr-2")
    with pytest.raises(RunError, match="run name 'lr-2' is already in use"):
        load_sweep(sweep_file(tmp_path, {"train.lr0": [0.01, 0.02]}), root=tmp_path / "runs", name="lr")


# ---- real sweeps ---------------------------------------------------------------------------------------------------
def workbench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_RUNS_DIR", "WORKBENCH_CLUSTER")}
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=timeout,
        env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def spans(run_dir: Path) -> tuple[float, float]:
    events = read_events(run_dir / "telemetry.jsonl")[0]
    return events[0]["t"], events[-1]["t"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_local_sweep_runs_parallel_variants_at_a_time(base, tmp_path):
    runs = tmp_path / "runs"
    path = sweep_file(tmp_path, {"train.lr0": [0.01, 0.002]})
    result = workbench("sweep", str(path), "--parallel", "2", "--name", "two", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "sweep two: 2 variants of base.yaml, 2 at a time on this machine" in result.stdout
    assert "2 completed" in result.stdout.splitlines()[-1]
    (a_start, a_end), (b_start, b_end) = spans(runs / "two-1"), spans(runs / "two-2")
    assert a_start < b_end and b_start < a_end  # both trained at the same time
    for n, lr0 in ((1, 0.01), (2, 0.002)):
        status = read_status(runs / f"two-{n}")
        assert status["status"] == "completed" and status["sweep"] == "two"
        assert status["sweep_values"] == {"train.lr0": lr0} and status.get("backend") in (None, "local")
    (record,) = read_records(runs)
    assert record["name"] == "two" and [v["run"] for v in record["variants"]] == ["two-1", "two-2"]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sweep_2x2_on_the_cluster_four_runs_named_grouped_and_differing_in_two_keys(ray_head, base, tmp_path):
    from streamlit.testing.v1 import AppTest

    runs = tmp_path / "runs"
    grid = {"customizations.layer_lr.backbone_ratio": [0.05, 0.3], "customizations.grad_clip.max_norm": [5.0, 10.0]}
    path = sweep_file(tmp_path, grid)
    result = workbench("sweep", str(path), "--cluster", ray_head, "--parallel", "2", "--name", "sw", "--runs-dir",
                       str(runs))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    names = [f"sw-{n}" for n in range(1, 5)]
    statuses = {n: read_status(runs / n) for n in names}
    assert all(s["status"] == "completed" and s["backend"] == "ray" and s["sweep"] == "sw" for s in statuses.values())
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == names
    recipes = [yaml.safe_load((runs / n / "recipe.yaml").read_text()) for n in names]
    assert set(recipe_diff(recipes)) == set(grid)  # the recipes as written differ in the two grid keys
    from trainers.runs.compare import compare_runs

    assert compare_runs([runs / n for n in names]).diff == {  # what Compare and `workbench compare` show
        "customizations.layer_lr.backbone_ratio": [0.05, 0.05, 0.3, 0.3],
        "customizations.grad_clip.max_norm": [5.0, 10.0, 5.0, 10.0],
    }
    assert "4 completed" in result.stdout.splitlines()[-1]

    os.environ["WORKBENCH_RUNS_DIR"] = str(runs)
    try:
        create_run_dir(runs, "alone")  # a run of no sweep, listed on its own
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60).run()
        at.switch_page("app_pages/runs.py").run()
    finally:
        del os.environ["WORKBENCH_RUNS_DIR"]
    assert not at.exception
    text = [m.value for m in at.markdown]
    header = next(i for i, t in enumerate(text) if t.startswith("Sweep **sw**"))
    assert (
        "4 variants (4 completed); grid: customizations.layer_lr.backbone_ratio, customizations.grad_clip."
        in (text[header])
    )
    rows = [t for t in text if t.startswith("**")]
    assert [t.split()[0] for t in rows] == ["**alone**", *[f"**{n}**" for n in names]]  # together, in order
    assert sum(t.endswith("★ best of its sweep") for t in rows) >= 1  # its winner marked (all of them on a tie)
    assert "backbone_ratio=0.3 · max_norm=5.0" in " ".join(c.value for c in at.caption)

    os.environ["WORKBENCH_RUNS_DIR"] = str(runs)
    try:  # the Compare page on the four variants: its "what differs" table is the two grid keys
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
        at.session_state["cmp_runs"] = names
        at.run()
        at.switch_page("app_pages/compare.py").run()
    finally:
        del os.environ["WORKBENCH_RUNS_DIR"]
    assert not at.exception
    (table,) = at.table
    assert sorted(table.value.index) == sorted(grid) and list(table.value.columns) == names
