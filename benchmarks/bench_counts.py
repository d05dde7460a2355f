"""Time ``trainers.datasets.label_counts.count_labels`` on a big synthetic split and ultralytics' label cache on the
same files.

Generates (once, then reused) ``--n`` images with one label file each (``--boxes`` boxes, ``--nc`` classes, the
``%.6f`` coordinates most exporters write) and runs every measurement in a fresh Python process, so nothing is
cached in-process ("cold" process; the OS page cache is warm unless ``--drop-caches`` is given, which needs root).

Figures printed:

- ``count_labels``: our fast path (every coordinate written ``0.ddd``/``1.000``, no float parsing).
- ``count_labels (general path)``: the same files with the fast path disabled, i.e. every value parsed by numpy;
  what a dataset with ``%g`` coordinates (``1e-05``, ``1``) costs.
- ``summarize_split``: the counts plus the orphan label files and the images without a label file (what
  ``workbench counts`` and the dataset summary run): one extra scan of the labels folder.
- ``ultralytics cache``: ``YOLODataset`` construction with no ``.cache`` file, which scans and verifies every
  image/label pair (it also opens each image, which we do not need for counting).

Usage::

    python benchmarks/bench_counts.py                      # 100k files, 8 boxes, 80 classes
    python benchmarks/bench_counts.py --n 20000 --no-ultralytics
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_OURS = """
import json, sys, time
t0 = time.perf_counter()
import trainers.datasets.label_counts as label_counts
from trainers.datasets.data_yaml import load_dataset
if {general}:
    label_counts._fast_class_ids = lambda *a, **k: None  # benchmark only: force the numpy float-parsing path
ds = load_dataset({yaml!r})
t1 = time.perf_counter()
counts = label_counts.count_labels(ds, "train", require_labels=True)
t2 = time.perf_counter()
print(json.dumps({{"import_load_s": t1 - t0, "count_s": t2 - t1, "boxes": sum(counts.instances),
                  "n_images": counts.n_images}}))
"""

_SUMMARY = """
import json, sys, time
t0 = time.perf_counter()
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.summary import summarize_split
ds = load_dataset({yaml!r})
t1 = time.perf_counter()
summary = summarize_split(ds, "train", require_labels=True)
t2 = time.perf_counter()
print(json.dumps({{"import_load_s": t1 - t0, "count_s": t2 - t1, "boxes": sum(summary.counts.instances),
                  "orphans": len(summary.orphan_labels), "n_images": summary.counts.n_images}}))
"""

_ULTRALYTICS = """
import json, sys, time
from trainers.offline import apply_offline_env
apply_offline_env()
import os
os.environ["YOLO_VERBOSE"] = "False"
from ultralytics.data.dataset import YOLODataset
t0 = time.perf_counter()
ds = YOLODataset(img_path={images!r}, imgsz=128, augment=False, data={{"names": {names!r}, "nc": {nc}, "channels": 3}},
                 task="detect", batch_size=16)
t1 = time.perf_counter()
boxes = sum(len(lb["cls"]) for lb in ds.labels)
print(json.dumps({{"cache_s": t1 - t0, "boxes": boxes, "n_images": len(ds.labels)}}))
"""


def generate(root: Path, n: int, boxes: int, nc: int, seed: int = 0) -> Path:
    """Write ``n`` images and label files under ``root`` (skipped when a matching dataset is already there)."""
    marker = root / "bench.json"
    params = {"n": n, "boxes": boxes, "nc": nc, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return root / "data.yaml"
    from PIL import Image

    img_dir, lbl_dir = root / "images" / "train", root / "labels" / "train"
    for d in (img_dir, lbl_dir):
        d.mkdir(parents=True, exist_ok=True)
        for f in os.scandir(d):
            os.unlink(f.path)
    jpg = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 80, 40)).save(jpg, "JPEG")  # ultralytics needs a real image of >= 10 px
    jpg_bytes = jpg.getvalue()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for i in range(n):
        (img_dir / f"{i:07d}.jpg").write_bytes(jpg_bytes)
        rows = (
            f"{rng.randrange(nc)} {rng.random():.6f} {rng.random():.6f} {rng.random() * 0.5:.6f} "
            f"{rng.random() * 0.5:.6f}\n"
            for _ in range(boxes)
        )
        (lbl_dir / f"{i:07d}.txt").write_text("".join(rows))
    names = ", ".join(f"{i}: class_{i}" for i in range(nc))
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/train\nnames: {{{names}}}\n")
    marker.write_text(json.dumps(params))
    print(f"generated {n} images + labels in {time.perf_counter() - t0:.1f} s under {root}")
    return root / "data.yaml"


def _drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _run(code: str, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="images / label files")
    ap.add_argument("--boxes", type=int, default=8, help="boxes per label file")
    ap.add_argument("--nc", type=int, default=80, help="classes")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_counts"), help="where the dataset is generated")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process runs per measurement")
    ap.add_argument("--drop-caches", action="store_true", help="drop the OS page cache before each run (root)")
    ap.add_argument("--no-ultralytics", action="store_true", help="skip the ultralytics label-cache comparison")
    args = ap.parse_args(argv)

    yaml_path = generate(args.dir, args.n, args.boxes, args.nc)
    print(f"{args.n} label files x {args.boxes} boxes, {args.nc} classes, {os.cpu_count()} CPU cores")

    def measure(code: str, key: str, label: str, timeout: float) -> float:
        times = []
        for _ in range(args.repeat):
            if args.drop_caches and not _drop_caches():
                print("  (could not drop caches: not root)")
            result = _run(code, timeout)
            times.append(result[key])
        print(
            f"{label:<32} median {statistics.median(times):6.2f} s  (min {min(times):.2f}, runs {len(times)})  "
            f"boxes={result['boxes']}"
        )
        return statistics.median(times)

    ours = measure(_OURS.format(yaml=str(yaml_path), general=False), "count_s", "count_labels", 120)
    measure(_OURS.format(yaml=str(yaml_path), general=True), "count_s", "count_labels (general path)", 120)
    measure(_SUMMARY.format(yaml=str(yaml_path)), "count_s", "summarize_split (+ orphan scan)", 120)
    if not args.no_ultralytics:
        cache = args.dir / "labels" / "train.cache"
        names = {i: f"class_{i}" for i in range(args.nc)}
        code = _ULTRALYTICS.format(images=str(args.dir / "images" / "train"), names=names, nc=args.nc)
        times = []
        for _ in range(1 if args.n > 20_000 else args.repeat):  # one run at 100k takes minutes
            cache.unlink(missing_ok=True)
            if args.drop_caches:
                _drop_caches()
            times.append(_run(code, 900)["cache_s"])
        cache.unlink(missing_ok=True)
        theirs = statistics.median(times)
        print(
            f"{'ultralytics cache (no .cache)':<32} median {theirs:6.2f} s  (runs {len(times)})  -> "
            f"count_labels is {theirs / ours:.0f}x faster"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
