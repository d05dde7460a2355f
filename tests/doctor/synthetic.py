"""Synthetic telemetry for the doctor's rule tests: event dicts in the writer's shape, folded into a RunLog.

A healthy baseline (stable norms, falling losses, every class learned) that each test bends in one place.
"""

from __future__ import annotations

from typing import Any

from trainers.doctor.dataset_facts import DatasetFacts, SplitFacts
from trainers.recipe import Recipe
from trainers.telemetry.run_log import RunLog

NAMES = ["circle", "square", "triangle", "cross"]
STEPS_PER_EPOCH = 10
TRAIN_COUNTS = [160, 60, 30, 8]


def recipe(train: dict | None = None, **customizations: Any) -> dict[str, Any]:
    """A recipe as run_start records it (``Recipe.to_dict()``)."""
    return Recipe.from_dict(
        {"model": "yolo26n.yaml", "data": "/data/demo/data.yaml", "train": {"epochs": 10, **(train or {})},
         "customizations": customizations}
    ).to_dict()  # fmt: skip


def run_start(rec: dict | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "v": 1, "event": "run_start", "t": 0.0, "recipe": rec or recipe(), "names": NAMES,
        "param_groups": ["weight", "bn", "bias"], "epochs": 10, "start_epoch": 1, "resumed": False, **fields,
    }  # fmt: skip


def stats(lo: float, hi: float, **more: Any) -> dict[str, Any]:
    return {"min": lo, "max": hi, "mean": (lo + hi) / 2, "last": hi, "nonfinite": 0, **more}


def epoch(
    n: int,
    *,
    grad: tuple[float, float] = (180.0, 230.0),
    clipped: float = 0.0,
    max_norm: float | None = None,
    loss: dict[str, tuple[float, float]] | None = None,
    f1: list[float] | None = None,
    present: list[bool] | None = None,
    metrics: dict[str, Any] | None = None,
    lr: dict[str, float] | None = None,
    step_lr: dict[str, tuple[float, float]] | None = None,
    system: dict[str, Any] | None = None,
    frozen: int = 0,
    grad_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One standing epoch event; defaults are a healthy epoch ``n`` (losses falling slowly with ``n``)."""
    lo, hi = grad
    loss = loss or {"box_loss": (2.0 - 0.05 * n, 2.4 - 0.05 * n), "cls_loss": (1.0 - 0.02 * n, 1.2 - 0.02 * n)}
    f1 = f1 if f1 is not None else [min(0.9, 0.5 + 0.03 * n)] * len(NAMES)
    present = present if present is not None else [True] * len(NAMES)
    train_loss = {f"train/{k}": (a + b) / 2 for k, (a, b) in loss.items()}
    val_loss = {f"val/{k}": (a + b) / 2 + 0.1 for k, (a, b) in loss.items()}
    groups = ["weight", "bn", "bias"]
    lr = lr or dict.fromkeys(groups, 0.001)
    step_lr = step_lr or {g: (v, v) for g, v in lr.items()}
    return {
        "v": 1, "event": "epoch", "t": float(n), "epoch": n, "final_eval": False,
        "metrics": {"metrics/mAP50(B)": 0.5 + 0.02 * n, "metrics/mAP50-95(B)": 0.3 + 0.01 * n,
                    **train_loss, **val_loss, **(metrics or {})},
        "per_class": [{"id": i, "name": name, "precision": v, "recall": v, "f1": v, "ap50": v, "ap": v, "present": p}
                      for i, (name, v, p) in enumerate(zip(NAMES, f1, present, strict=True))],
        "mean_f1": sum(f1) / len(f1), "params": {"trainable": 2_500_000 - frozen, "frozen": frozen},
        "lr": lr, "epoch_time": 1.0, "best_saved": n == 1,
        "steps": {
            "n": STEPS_PER_EPOCH, "recorded": STEPS_PER_EPOCH, "first": (n - 1) * STEPS_PER_EPOCH + 1,
            "last": n * STEPS_PER_EPOCH,
            "grad_norm": stats(lo, hi, p50=(lo + hi) / 2, p90=lo + 0.9 * (hi - lo), p99=hi, **(grad_extra or {})),
            "clipped": clipped, "max_norm": max_norm,
            "loss": {k: stats(a, b) for k, (a, b) in loss.items()},
            "grad_norms": {}, "lr": {g: stats(a, b) for g, (a, b) in step_lr.items()},
        },
        "system": system or {"batches": STEPS_PER_EPOCH, "data_s": 0.1, "compute_s": 0.9, "data_share": 0.1,
                             "cpu_percent": 100.0, "rss_mb": 1000.0, "gpu_mem_mb": None, "gpu_util": None},
    }  # fmt: skip


def log(epochs: list[dict[str, Any]], start: dict[str, Any] | None = None, extra: list[dict] | None = None) -> RunLog:
    return RunLog.from_events([start or run_start(), *(extra or []), *epochs])


def facts(train: list[int] | None = None, val: list[int] | None = None, **train_split: Any) -> DatasetFacts:
    """Dataset facts with the demo's counts; ``train_split`` overrides fields of the train split."""
    return DatasetFacts(
        "/data/demo/data.yaml", list(NAMES),
        {"train": SplitFacts("train", list(train or TRAIN_COUNTS), 48, images_checked=48, **train_split),
         "val": SplitFacts("val", list(val or [40, 16, 8, 5]), 16, images_checked=16)},
    )  # fmt: skip


def ids(findings) -> list[str]:
    return [f.id for f in findings]


def check_fix(finding, rec: dict[str, Any]):
    """Apply the finding's fix to ``rec``: the result validates and differs from it in exactly the changed keys."""
    from trainers.doctor import apply_fix
    from trainers.recipe.dotted import diff, flatten, leaves
    from trainers.train_args import train_default

    assert finding.evidence and finding.fix and finding.recipe_change
    old = Recipe.from_dict(rec)
    new = apply_fix(old, finding)
    before = leaves(old)
    missing = lambda k: train_default(k[6:]) if k.startswith("train.") else None  # noqa: E731
    expected = {k for k, v in flatten(finding.recipe_change).items() if before.get(k, missing(k)) != v}
    assert expected, "the fix changes nothing"
    assert set(diff({"old": old, "new": new})) == expected
    return new
