"""Run folders written from synthetic telemetry (no training), for the compare and CLI tests."""

from __future__ import annotations

from pathlib import Path

from tests.doctor.synthetic import epoch, run_start
from trainers.recipe import Recipe
from trainers.run_files import RECIPE_FILE, TELEMETRY_FILE
from trainers.runs.folder import create_run_dir, end_run
from trainers.telemetry.events import TelemetryWriter


def make_run(root: Path, name: str, recipe: dict, epochs: list[dict] | None = None) -> Path:
    """A completed run: status.json, recipe.yaml and a telemetry log of ``epochs`` (default: 3 healthy ones)."""
    run = create_run_dir(root, name)
    r = Recipe.from_dict(recipe)
    (run / RECIPE_FILE).write_text(r.to_yaml())
    with TelemetryWriter(run / TELEMETRY_FILE) as out:
        for ev in [run_start(r.to_dict()), *(epochs or [epoch(i) for i in range(1, 4)])]:
            out.emit(ev["event"], **{k: v for k, v in ev.items() if k not in ("v", "event", "t")})
    end_run(run, "completed", best={"epoch": 1, "name": "fitness", "value": 0.4})
    return run
