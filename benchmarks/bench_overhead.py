"""Training overhead: all seven customizations + per-step telemetry vs the stock ultralytics trainer, side by side.

Both trainers run in this one process, alternating (stock, ours, stock, ours, ...), on the same data, model YAML,
seed and arguments; ours writes its run folder as a real run does (events log, step store, status.json). Each epoch
is timed three ways:

- **epoch**: ultralytics' own ``trainer.epoch_time`` (one epoch's train + val + save + the previous epoch's tail);
  ``median_ratio`` is the median of the per-pair ratios ours / stock, as it always was;
- **per-step** (the training loop): ``on_train_epoch_start`` -> ``on_train_epoch_end``, ratio ours / stock, and the
  difference in microseconds per optimizer step;
- **per-epoch** (the epoch tail): ``on_train_epoch_end`` -> the end of ``on_fit_epoch_end`` (validation, results.csv,
  checkpoint save, our epoch event and status.json write), ours minus stock in milliseconds.

Process CPU time is taken next to wall time: a busy neighbour inflates wall time much more than CPU time.
Only epochs after the unfreeze are compared (a frozen backbone skips backward work and would flatter us), and the
first epoch of each run is dropped (warm-up, dataloader start).

Two sizes: ``tiny`` (imgsz 128, batch 16, the demo set's 48 images: 3 steps an epoch) and ``realistic`` (imgsz 320,
batch 16, the demo images listed 4 times: 12 steps an epoch). ``--json`` prints one document whose top level is
the tiny size (``median_ratio`` ...) with the realistic size under ``"realistic"``.

    python benchmarks/bench_overhead.py [--sizes tiny,realistic] [--repeats 3] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
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

# name -> imgsz, epochs, repeats, copies of the demo train images (more steps per epoch)
SIZES = {
    "tiny": {"imgsz": 128, "epochs": 6, "repeats": 3, "copies": 1, "goal": 1.03},
    "realistic": {"imgsz": 320, "epochs": 4, "repeats": 2, "copies": 4, "goal": 1.01},
}
BATCH = 16


class EpochTimer:
    """Wall and CPU clocks at the epoch's boundaries (the callbacks are added after the trainer's own, so the
    ``on_fit_epoch_end`` reading comes after our epoch event and status write)."""

    def __init__(self, trainer):
        self.rows: list[dict] = []
        self._t: dict[str, tuple[float, float]] = {}
        self._steps = 0
        trainer.add_callback("on_train_epoch_start", self.start)
        trainer.add_callback("on_train_epoch_end", self.loop_end)
        trainer.add_callback("on_fit_epoch_end", self.tail_end)

    @staticmethod
    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def start(self, trainer) -> None:
        self._t = {"start": self.now()}

    def loop_end(self, trainer) -> None:
        self._t["loop_end"] = self.now()
        self._steps = len(trainer.train_loader)

    def tail_end(self, trainer) -> None:
        if "loop_end" not in self._t or not trainer.epoch_time:  # the final evaluation fires it once more
            return
        (w0, c0), (w1, c1), (w2, c2) = self._t["start"], self._t["loop_end"], self.now()
        self.rows.append(
            {
                "epoch_s": trainer.epoch_time,
                "loop_s": w1 - w0,
                "loop_cpu_s": c1 - c0,
                "tail_s": w2 - w1,
                "tail_cpu_s": c2 - c1,
                "steps": self._steps,
            }
        )
        self._t = {}


def make_data(out: Path, copies: int) -> Path:
    """The demo set as a data YAML; with ``copies`` > 1 its train images are listed that many times."""
    import yaml

    from trainers.data_yaml import load_dataset, resolved_data_dict

    data = resolved_data_dict(load_dataset(REPO / "assets" / "demo" / "data.yaml"))
    if copies > 1:
        train = Path(data["path"]) / data["train"] if not Path(data["train"]).is_absolute() else Path(data["train"])
        images = sorted(str(p) for p in train.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        listing = out / f"train_x{copies}.txt"
        listing.write_text("\n".join(images * copies) + "\n", encoding="utf-8")
        data["train"] = str(listing)
    path = out / f"data_x{copies}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run(kind: str, size: dict, data: Path, out: Path, idx: int, model: str, device: str) -> list[dict]:
    from ultralytics.models.yolo.detect import DetectionTrainer

    from trainers.compose import build_trainer_class
    from trainers.recipe import Recipe

    train = {
        "epochs": size["epochs"],
        "imgsz": size["imgsz"],
        "batch": BATCH,
        "nbs": BATCH,
        "seed": 0,
        "plots": False,
        "workers": 0,
        "device": device,
        "amp": False,
        "verbose": False,
    }
    name = f"{kind}{idx}-{size['imgsz']}"
    overrides = {**train, "model": model, "data": str(data), "project": str(out), "name": name, "exist_ok": True}
    if kind == "stock":
        trainer = DetectionTrainer(overrides=overrides)
    else:  # a run folder like a real run's: events log, step store and status.json in the save dir
        run_dir = out / name
        recipe = Recipe.from_dict({"model": model, "data": str(data), "train": train, "customizations": ALL_SEVEN})
        cls = build_trainer_class(
            recipe, telemetry_path=str(run_dir / "telemetry.jsonl"), run_dir=str(run_dir), step_stride=1
        )
        trainer = cls(overrides=overrides)
    timer = EpochTimer(trainer)
    trainer.train()
    return timer.rows[: size["epochs"]]


def _median(values):
    return statistics.median(values) if values else None


def measure(size_name: str, size: dict, out: Path, model: str, device: str) -> dict:
    """Run stock and ours ``repeats`` times each, alternating, and compare the epochs after the unfreeze."""
    data = make_data(out, size["copies"])
    skip = max(2, ALL_SEVEN["freeze"]["frozen_epochs"] + 1)  # drop epoch 1 and the frozen epochs
    stock, ours = [], []
    for i in range(size["repeats"]):
        stock += run("stock", size, data, out, i, model, device)[skip:]
        ours += run("ours", size, data, out, i, model, device)[skip:]
    pairs = list(zip(ours, stock, strict=True))
    steps = stock[0]["steps"] if stock else 0

    def ratio(key):
        return _median([o[key] / s[key] for o, s in pairs])

    def diff(key, scale):
        return _median([(o[key] - s[key]) * scale for o, s in pairs])

    result = {
        "size": size_name,
        "model": model,
        "imgsz": size["imgsz"],
        "batch": BATCH,
        "device": device,
        "steps_per_epoch": steps,
        "epochs_compared": len(pairs),
        "stock_median_s": _median([s["epoch_s"] for s in stock]),
        "ours_median_s": _median([o["epoch_s"] for o in ours]),
        "median_ratio": ratio("epoch_s"),
        "ratio_of_medians": _median([o["epoch_s"] for o in ours]) / _median([s["epoch_s"] for s in stock]),
        "per_step": {
            "stock_loop_median_s": _median([s["loop_s"] for s in stock]),
            "median_ratio": ratio("loop_s"),
            "cpu_median_ratio": ratio("loop_cpu_s"),
            "overhead_us_per_step": diff("loop_s", 1e6 / max(steps, 1)),
            "cpu_overhead_us_per_step": diff("loop_cpu_s", 1e6 / max(steps, 1)),
        },
        "per_epoch": {
            "stock_tail_median_s": _median([s["tail_s"] for s in stock]),
            "median_ratio": ratio("tail_s"),
            "overhead_ms": diff("tail_s", 1e3),
            "cpu_overhead_ms": diff("tail_cpu_s", 1e3),
        },
        "goal": size["goal"],
        "load_average": os.getloadavg()[0],
    }
    result["goal_met"] = result["median_ratio"] <= size["goal"]
    return result


def run_benchmark(
    sizes=("tiny", "realistic"),
    repeats: int | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    model: str = "yolo26n.yaml",
    device: str = "cpu",
    workdir: Path | None = None,
) -> dict:
    """Measure each size; the first one's figures are the document's top level, the others nest under their name."""
    out = Path(workdir or tempfile.mkdtemp(prefix="wb-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    results = {}
    for name in sizes:
        size = {**SIZES[name]}
        size.update({k: v for k, v in (("repeats", repeats), ("epochs", epochs), ("imgsz", imgsz)) if v})
        results[name] = measure(name, size, out, model, device)
    first, *rest = sizes
    doc = {**results[first], "load_average_start": load_start}
    for name in rest:
        doc[name] = results[name]
    return doc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,realistic", help="comma-separated: tiny, realistic")
    p.add_argument("--repeats", type=int, default=None, help="runs of each trainer (default: per size)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: per size)")
    p.add_argument("--imgsz", type=int, default=None, help="override every size's imgsz")
    p.add_argument("--model", default="yolo26n.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        p.error(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    doc = run_benchmark(sizes, args.repeats, args.epochs, args.imgsz, args.model, args.device)
    if args.json:
        print(json.dumps(doc))
        return

    def show(d, indent=""):
        for k, v in d.items():
            if isinstance(v, dict):
                print(f"{indent}{k}:")
                show(v, indent + "  ")
            else:
                print(f"{indent}{k:>26}: {v:.4f}" if isinstance(v, float) else f"{indent}{k:>26}: {v}")

    show(doc)


if __name__ == "__main__":
    main()
