"""Early stop of weak sweep variants (trainers/sweeps/early_stop.py): the rule on scores, the rung read from real
telemetry files, and a real local sweep in which the weaker variant is stopped at the rung.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import DEMO_BASE, DEMO_DATA, REPO, recipe_for
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status
from trainers.sweeps.early_stop import EarlyStopper, keeps, rung_score
from trainers.telemetry.events import TelemetryWriter, read_events


@pytest.mark.parametrize(
    ("score", "earlier", "keep", "expected"),
    [
        (0.1, [], 0.5, True),  # the first at the rung always goes on
        (0.1, [0.2], 0.5, False),  # 2 there, keep 1: the weaker stops
        (0.3, [0.2], 0.5, True),
        (0.2, [0.2], 0.5, True),  # a tie goes on
        (0.15, [0.2, 0.1], 0.5, True),  # 3 there, keep 2: second best goes on
        (0.05, [0.2, 0.1], 0.5, False),
        (0.15, [0.2, 0.1, 0.3], 0.5, False),  # 4 there, keep 2: third best stops
        (None, [0.2], 0.9, True),  # keep ceil(1.8) = 2 of 2
        (None, [0.2], 0.5, False),  # no score ranks last
        (0.0, [None], 0.5, True),
    ],
)
def test_keeps(score, earlier, keep, expected):
    assert keeps(score, earlier, keep) is expected


def epoch(n: int, fitness, final: bool = False) -> dict:
    return {"event": "epoch", "epoch": n, "fitness": fitness, "final_eval": final}


def test_rung_score_is_the_best_fitness_up_to_the_rung():
    assert rung_score([epoch(1, 0.2)], 2) == (False, 0.2)
    assert rung_score([epoch(1, 0.2), epoch(2, 0.1), epoch(3, 0.9)], 2) == (True, 0.2)
    assert rung_score([epoch(1, float("nan")), epoch(2, None)], 2) == (True, None)
    assert rung_score([epoch(1, 0.1), epoch(1, 0.8, final=True)], 1) == (True, 0.1)  # best.pt's re-evaluation is not
    assert rung_score([{"event": "step", "epoch": 5}], 1) == (False, None)


def test_stopper_reads_telemetry_as_it_grows_and_decides_once(tmp_path):
    runs = {name: create_run_dir(tmp_path, name) for name in ("a", "b", "c")}
    writers = {name: TelemetryWriter(d / "telemetry.jsonl") for name, d in runs.items()}
    stopper = EarlyStopper(epoch=2, keep=0.5)
    for name, scores in (("a", [0.3, 0.5]), ("b", [0.1, 0.2]), ("c", [0.6, 0.4])):
        writers[name].emit("epoch", epoch=1, fitness=scores[0], final_eval=False)
        assert stopper.observe(runs[name]) is None  # not at the rung yet
        writers[name].emit("epoch", epoch=2, fitness=scores[1], final_eval=False)
    go_a, _ = stopper.observe(runs["a"])
    go_b, why_b = stopper.observe(runs["b"])
    go_c, why_c = stopper.observe(runs["c"])
    assert (go_a, go_b, go_c) == (True, False, True)  # c: 0.6 (its best by epoch 2) is the best of 3
    assert why_b == "fitness 0.2000 at epoch 2: outside the best 1 of 2 variants there so far"
    assert why_c == "fitness 0.6000 at epoch 2: within the best 2 of 3 variants there so far"
    assert stopper.observe(runs["b"]) is None  # decided once
    assert stopper.scores == {"a": 0.5, "b": 0.2, "c": 0.6}
    for w in writers.values():
        w.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_local_sweep_stops_the_weaker_variant_at_the_rung(tmp_path):
    """lr0 0 keeps the demo base's fitness; a huge SGD step wrecks it at once. One at a time: the second variant
    reaches the rung knowing the first's score, and is stopped there if it is worse."""
    train = {"epochs": 4, "imgsz": 64, "batch": 16, "nbs": 16, "optimizer": "SGD", "warmup_epochs": 0, "lr0": 0.0}
    base = recipe_for(DEMO_DATA, model=str(DEMO_BASE), train=train, per_class_f1={})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    doc = {"base": "base.yaml", "grid": {"train.lr0": [0.0, 0.9]}, "early_stop": {"epoch": 1, "keep": 0.5}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_RUNS_DIR", "WORKBENCH_CLUSTER")}
    runs = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "sweep", str(tmp_path / "sweep.yaml"), "--name", "es", "--runs-dir",
         str(runs)], capture_output=True, text=True, cwd=REPO, timeout=380, env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

    def score(name: str) -> float:
        fit = [e["fitness"] for e in read_events(runs / name / "telemetry.jsonl")[0] if e["event"] == "epoch"]
        return fit[0] if fit[0] is not None and math.isfinite(fit[0]) else -math.inf

    first, second = read_status(runs / "es-1"), read_status(runs / "es-2")
    assert first["status"] == "completed" and first["epoch"] == 4 and not first.get("early_stop")
    assert score("es-2") != score("es-1"), (score("es-1"), score("es-2"))
    if score("es-2") < score("es-1"):
        assert second["status"] == "stopped" and second["epoch"] < 4, second
        assert second["early_stop"].startswith("fitness ") and "outside the best 1 of 2" in second["early_stop"]
        assert "es-2  early stop: fitness" in result.stdout and "stopped (early)" in result.stdout
    else:  # the rule still holds the other way round
        assert second["status"] == "completed" and not second.get("early_stop")
    print(f"rung scores: es-1 {score('es-1'):.4f}, es-2 {score('es-2'):.4f}; es-2 {second['status']}")
