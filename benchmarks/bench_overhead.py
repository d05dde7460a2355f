"""Training overhead: all seven customizations + per-step telemetry vs the stock ultralytics trainer, side by side.

Both trainers run in this one process, on the same data, model YAML, seed and arguments, and take turns epoch by
epoch: each trains in its own thread, and a turn (setup, then one epoch: its training loop, validation, save and the
epoch's callbacks) runs only while the other trainer waits, so the two epochs of a pair are measured seconds apart
under the same load, not a whole run apart. Ours writes its run folder as a real run does (events log, step store,
status.json) and keeps the per-validation evidence (``evidence/``: sample boxes, confusion counts, PR curves; its bytes
per validation are reported, and those of one validation at 80 classes with every table at its cap). Each epoch is
timed three ways:

- **epoch**: ``on_train_epoch_start`` -> the end of ``on_fit_epoch_end``: the same work as ultralytics'
  ``trainer.epoch_time`` (train + val + save + the epoch's callbacks), without the other trainer's turn;
  ``median_ratio`` is the median of the per-pair ratios ours / stock;
- **per-step** (the training loop): ``on_train_epoch_start`` -> ``on_train_epoch_end``, ratio ours / stock, and the
  difference in microseconds per optimizer step;
- **per-epoch** (the epoch tail): ``on_train_epoch_end`` -> the end of ``on_fit_epoch_end`` (validation, results.csv,
  checkpoint save, our epoch event and status.json write), ours minus stock in milliseconds.

CPU time is taken next to wall time (the process', so the step store's background thread counts): a busy neighbour
inflates wall time more than CPU time (but on a 2-vCPU VM that shares a core it inflates CPU time too).
Setup's objects are frozen out of the garbage collector (``gc.freeze``) at each trainer's first epoch: otherwise a
full collection (~200 ms over both trainers' ~400k objects) lands every few epochs on whichever trainer triggers it,
and decides pairs. The two trainers draw their augmentation from the same global random state in turn, so a pair's
epochs see different (equally random) mosaics; over the pairs that evens out.
Only epochs after the unfreeze are compared (a frozen backbone skips backward work and would flatter us), and the
first epoch of each run is dropped (warm-up, dataloader start).

Two sizes: ``tiny`` (imgsz 128, batch 16, the demo set's 48 images: 3 steps an epoch) and ``realistic`` (imgsz 320,
batch 16, the demo images listed twice: 6 steps an epoch). ``--json`` prints one document whose top level is
the tiny size (``median_ratio`` ...) with the realistic size under ``"realistic"``.

    python benchmarks/bench_overhead.py [--sizes tiny,realistic] [--repeats 3] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
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
    "realistic": {"imgsz": 320, "epochs": 5, "repeats": 2, "copies": 2, "goal": 1.01},
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
                "epoch_s": w2 - w0,
                "epoch_cpu_s": c2 - c0,
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

    from trainers.datasets.data_yaml import load_dataset, resolved_data_dict

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


class Turns:
    """Strict turn-taking between named threads: ``wait`` blocks until it is that name's turn, ``hand_over`` passes the
    turn to the next name that has not finished, ``finish`` leaves the rotation for good."""

    def __init__(self, names):
        self.names, self.done, self.i = list(names), set(), 0
        self.cond = threading.Condition()

    def _advance(self) -> None:
        for _ in range(len(self.names)):
            self.i = (self.i + 1) % len(self.names)
            if self.names[self.i] not in self.done:
                return

    def wait(self, name: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.names[self.i] == name or len(self.done) == len(self.names))

    def hand_over(self, name: str) -> None:
        with self.cond:
            if self.names[self.i] == name:
                self._advance()
            self.cond.notify_all()

    def finish(self, name: str) -> None:
        with self.cond:
            self.done.add(name)
            if self.names[self.i] == name:
                self._advance()
            self.cond.notify_all()


def make_trainer(kind: str, size: dict, data: Path, out: Path, idx: int, model: str, device: str):
    from ultralytics.models.yolo.detect import DetectionTrainer

    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

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
        return DetectionTrainer(overrides=overrides)
    run_dir = out / name  # a run folder like a real run's: events log, step store and status.json in the save dir
    recipe = Recipe.from_dict({"model": model, "data": str(data), "train": train, "customizations": ALL_SEVEN})
    cls = build_trainer_class(recipe, telemetry_path=str(run_dir / "telemetry.jsonl"), run_dir=str(run_dir))
    return cls(overrides=overrides)


def run_pair(size: dict, data: Path, out: Path, idx: int, model: str, device: str) -> dict[str, list[dict]]:
    """Train stock and ours at the same time in two threads that take turns epoch by epoch; their epoch rows."""
    kinds = ("stock", "ours") if idx % 2 == 0 else ("ours", "stock")  # who goes first alternates between repeats
    turns = Turns(kinds)
    rows: dict[str, list[dict]] = {}
    errors: list[BaseException] = []

    def work(kind: str) -> None:
        try:
            turns.wait(kind)
            trainer = make_trainer(kind, size, data, out, idx, model, device)

            def next_turn(trainer_) -> None:  # registered before the timer, so the timer starts on our turn
                if trainer_.epoch == trainer_.start_epoch:
                    # Both trainers' models, data and imports (~400k objects) would make each full garbage collection
                    # take ~200 ms, landing every few epochs in whichever trainer's turn happens to trigger it: freeze
                    # what setup made, so collections only scan what training allocates since.
                    gc.collect()
                    gc.freeze()
                turns.hand_over(kind)
                turns.wait(kind)

            trainer.add_callback("on_train_epoch_start", next_turn)
            timer = EpochTimer(trainer)
            trainer.train()
            rows[kind] = timer.rows[: size["epochs"]]
            if kind == "ours":  # bytes of evidence each validation wrote (trainers/training/evidence_mixin.py)
                rows["evidence"] = [{"bytes": b} for b in getattr(trainer, "evidence_bytes", [])]
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)
        finally:
            turns.finish(kind)

    threads = [threading.Thread(target=work, args=(k,), name=f"bench-{k}") for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return rows


def _median(values):
    return statistics.median(values) if values else None


def measure(size_name: str, size: dict, out: Path, model: str, device: str) -> dict:
    """Run stock and ours ``repeats`` times each, alternating, and compare the epochs after the unfreeze."""
    data = make_data(out, size["copies"])
    skip = max(2, ALL_SEVEN["freeze"]["frozen_epochs"] + 1)  # drop epoch 1 and the frozen epochs
    stock, ours, evidence = [], [], []
    for i in range(size["repeats"]):
        rows = run_pair(size, data, out, i, model, device)
        stock += rows["stock"][skip:]
        ours += rows["ours"][skip:]
        evidence += [r["bytes"] for r in rows.get("evidence", [])]
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
        "cpu_median_ratio": ratio("epoch_cpu_s"),
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
        "evidence_bytes_per_validation": _median(evidence),
        "goal": size["goal"],
        "load_average": os.getloadavg()[0],
    }
    result["goal_met"] = result["median_ratio"] <= size["goal"]
    return result


def evidence_worst_case(out: Path, nc: int = 80, sample: int = 16) -> dict:
    """Bytes of one validation's evidence at ``nc`` classes with every table at its cap: the default sample, 20 labels
    and the 100 kept predictions per image, every cell of the confusion matrix non-zero, a PR curve per class and
    the 200 unlabelled candidates from 200 files; random values, which compress worst. The goal: <= 200 KB."""
    import numpy as np

    from trainers.telemetry import evidence as ev

    rng = np.random.default_rng(0)
    per_image = 20 + ev.PRED_PER_IMAGE
    n = sample * per_image
    xy = rng.uniform(0, 640, (n, 2)).astype(np.float32)
    wh = rng.uniform(4, 200, (n, 2)).astype(np.float32)
    kind = np.tile(np.r_[np.zeros(20), np.ones(ev.PRED_PER_IMAGE)], sample)
    boxes = {
        "image": np.repeat(np.arange(sample), per_image), "kind": kind, "cls": rng.integers(0, nc, n),
        "conf": np.where(kind == ev.GT, 1.0, rng.uniform(ev.PRED_MIN_CONF, 1, n)),
        "x1": xy[:, 0], "y1": xy[:, 1], "x2": xy[:, 0] + wh[:, 0], "y2": xy[:, 1] + wh[:, 1],
    }  # fmt: skip
    pred, true = np.divmod(np.arange((nc + 1) ** 2), nc + 1)
    confusion = {"pred": pred, "true": true, "count": rng.integers(1, 5000, len(pred))}
    pr = {"cls": np.repeat(np.arange(nc), ev.PR_POINTS), "recall": np.tile(np.linspace(0, 1, ev.PR_POINTS), nc),
          "precision": rng.uniform(0, 1, nc * ev.PR_POINTS)}  # fmt: skip
    k = ev.UNLABELLED_KEEP
    unlabelled = {"file": np.array([f"/data/datasets/some-export/images/val/{i:012d}.jpg" for i in range(k)]),
                  "cls": rng.integers(0, nc, k), "conf": rng.uniform(ev.UNLABELLED_CONF, 1, k),
                  **{c: rng.uniform(0, 640, k) for c in ("x1", "y1", "x2", "y2")}}  # fmt: skip
    size = ev.write_epoch(out / "evidence-worst-case", 1, {"boxes": boxes, "confusion": confusion, "pr": pr,
                                                             "unlabelled": unlabelled})  # fmt: skip
    return {"classes": nc, "sample": sample, "bytes": size, "goal_bytes": 200_000, "goal_met": size <= 200_000}


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
    doc = {**results[first], "load_average_start": load_start, "evidence_80_classes": evidence_worst_case(out)}
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
