"""Helpers shared by the customization tests: telemetry and results.csv of a tiny run, backbone snapshots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch


def events(tmp_path: Path, kind: str | None = None) -> list[dict]:
    lines = (tmp_path / "telemetry.jsonl").read_text().splitlines()
    evs = [json.loads(x) for x in lines]
    return [e for e in evs if kind is None or e["event"] == kind]


def results(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "run" / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def snapshot(trainer, layers: range) -> dict[str, torch.Tensor]:
    """Floating-point state of the given layers (parameters and BatchNorm statistics), cloned."""
    from ultralytics.utils.torch_utils import unwrap_model

    prefixes = tuple(f"model.{i}." for i in layers)
    sd = unwrap_model(trainer.model).state_dict()
    return {k: v.detach().clone() for k, v in sd.items() if k.startswith(prefixes) and v.dtype.is_floating_point}


def changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)
