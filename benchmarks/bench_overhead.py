"""Epoch time: all seven customizations + per-step telemetry vs the stock ultralytics trainer, side by side.

Both trainers run in this one process, alternating (stock, ours, stock, ours, ...), on the same data, model YAML,
seed and arguments. Epoch times come from ultralytics' own ``trainer.epoch_time`` (train + val of one epoch).
Only epochs after the unfreeze are compared (a frozen backbone skips backward work and would flatter us), and
the first epoch of each run is dropped (warm-up, dataloader start). Reports the median of the per-pair ratios.

    python benchmarks/bench_overhead.py [--repeats 3] [--epochs 6] [--imgsz 128] [--model yolo26n.yaml] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainers.offline import apply_offline_env  # noqa: E402

apply_offline_env()

ALL_SEVEN = {
    "per_class_f1": {},
    "class_weights": {"scheme": "effective_number", "beta": 0.99},
    "best_metric": {"metric": "f1"},
    "freeze": {"layers": "backbone", "frozen_epochs": 1},
    "layer_lr": {"backbone_ratio": 0.1},
    "sync_bn": {},
    "grad_clip": {"max_norm": 10.0},
}


def run(kind: str, args, data: str, out: Path, idx: int) -> list[float]:
    import yaml
    from ultralytics.models.yolo.detect import DetectionTrainer

    from trainers.compose import build_trainer_class
    from trainers.recipe import Recipe

    train = {
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": 16,
        "nbs": 16,
        "seed": 0,
        "plots": False,
        "workers": 0,
        "device": args.device,
        "amp": False,
        "verbose": False,
    }
    overrides = {
        **train,
        "model": args.model,
        "data": data,
        "project": str(out),
        "name": f"{kind}{idx}",
        "exist_ok": True,
    }
    if kind == "stock":
        trainer = DetectionTrainer(overrides=overrides)
    else:
        recipe = Recipe.from_dict({"model": args.model, "data": data, "train": train, "customizations": ALL_SEVEN})
        cls = build_trainer_class(recipe, telemetry_path=str(out / f"{kind}{idx}.jsonl"), step_stride=1)
        trainer = cls(overrides=overrides)
    times: list[float] = []
    trainer.add_callback("on_fit_epoch_end", lambda t: times.append(t.epoch_time) if t.epoch_time else None)
    trainer.train()
    del yaml
    return times[: args.epochs]  # the final evaluation fires the callback once more


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--model", default="yolo26n.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import yaml

    from trainers.data_yaml import load_dataset, resolved_data_dict

    out = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    data = out / "data.yaml"
    data.write_text(yaml.safe_dump(resolved_data_dict(load_dataset(REPO / "assets" / "demo" / "data.yaml"))))
    skip = max(2, ALL_SEVEN["freeze"]["frozen_epochs"] + 1)  # drop epoch 1 and the frozen epochs
    stock, ours = [], []
    for i in range(args.repeats):
        stock += run("stock", args, str(data), out, i)[skip:]
        ours += run("ours", args, str(data), out, i)[skip:]
    ratios = [o / s for o, s in zip(ours, stock, strict=True)]
    result = {
        "model": args.model,
        "imgsz": args.imgsz,
        "device": args.device,
        "epochs_compared": len(ratios),
        "stock_median_s": statistics.median(stock),
        "ours_median_s": statistics.median(ours),
        "median_ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(ours) / statistics.median(stock),
        "goal": 1.03,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>18}: {v:.4f}" if isinstance(v, float) else f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
