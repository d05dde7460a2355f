"""Generate the demo detection dataset and the base checkpoint's own training set: coloured shapes on noise.

The layout is ultralytics': ``data.yaml`` (``path: .``), ``images/{train,val}/*.jpg``, ``labels/{train,val}/*.txt``.

**The demo set** (``assets/demo/``, committed) is what the New run page fine-tunes by default. Four classes with a 20x
imbalance in the train split (160 circles, 60 squares, 30 triangles, 8 crosses); val has 8 crosses so the rare
class's F1 is measured on more than a handful of boxes. Two train images are pure background (no label file).

**The base set** (``--base``, not committed: ``assets/train_demo_base.py`` generates it into a temporary folder and
trains ``assets/demo_base.pt`` on it) is a different collection: other images (seed 1), the three common classes
balanced, crosses rare there too (12) and **yellow**, where the demo's crosses are **magenta**. So the base checkpoint
already knows circles, squares and triangles (F1 ~0.9-1.0 on the demo from epoch 1) but only half-recognises the
demo's crosses: the rare class starts far behind and has to be learned from 8 examples during the fine-tune. (A base
trained on the demo images themselves scored every class at 0.9-1.0 from the first epoch, so nothing a customization
did was visible; a base that never saw a cross did not learn one within 10 epochs. Both measured: docs/benchmarks.md.)

Everything comes from one seeded generator and is written in a fixed order, so two runs give byte-identical files
(``tests/test_demo_assets.py`` checks this against the committed ``assets/demo/``).

Usage::

    python assets/make_demo_data.py                    # writes assets/demo/
    python assets/make_demo_data.py /tmp/demo          # anywhere else
    python assets/make_demo_data.py --base /tmp/base   # the base checkpoint's training set
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

NAMES = ("circle", "square", "triangle", "cross")
IMG_SIZE = 128
OBJ_MIN, OBJ_MAX = 20, 40  # px: learnable at imgsz 64-128
JPEG_QUALITY = 85
DEFAULT_OUT = Path(__file__).resolve().parent / "demo"
# One hue per class (with jitter) so a nano model learns them within a couple of minutes on a CPU.
RED, BLUE, GREEN, YELLOW, MAGENTA = (220, 60, 50), (50, 90, 220), (40, 170, 70), (230, 200, 40), (200, 60, 200)


@dataclass(frozen=True)
class Spec:
    """What one generated set holds: images and instances per split, and each class's colour."""

    seed: int
    n_train: int
    n_val: int
    train_counts: tuple[int, ...]
    val_counts: tuple[int, ...]
    colors: tuple[tuple[int, int, int], ...]
    n_background: int  # train images without objects (no label file)
    note: str


DEMO = Spec(
    seed=0, n_train=48, n_val=16,
    train_counts=(160, 60, 30, 8),  # most common / rarest = 20
    val_counts=(40, 16, 8, 8),
    colors=(RED, BLUE, GREEN, MAGENTA),
    n_background=2,
    note="The demo set: crosses are magenta and 20x rarer than circles",
)  # fmt: skip
BASE = Spec(
    seed=1, n_train=64, n_val=16,
    train_counts=(100, 100, 100, 12),
    val_counts=(24, 24, 24, 6),
    colors=(RED, BLUE, GREEN, YELLOW),
    n_background=0,
    note="The base checkpoint's set (assets/train_demo_base.py): other images, crosses yellow",
)  # fmt: skip
# Kept for readers of the committed numbers (tests, README).
TRAIN_COUNTS, VAL_COUNTS, N_TRAIN, N_VAL, N_BACKGROUND = (
    DEMO.train_counts, DEMO.val_counts, DEMO.n_train, DEMO.n_val, DEMO.n_background
)  # fmt: skip


def _background(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(90, 160, size=3)
    ramp = np.linspace(-20, 20, IMG_SIZE)[None, :, None] * rng.choice([-1, 1])
    noise = rng.normal(0, 12, size=(IMG_SIZE, IMG_SIZE, 3))
    return np.clip(base[None, None, :] + ramp + noise, 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, taken: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Return a box (x0, y0, x1, y1) that does not overlap the boxes already placed (falls back to overlap)."""
    for _ in range(200):
        size = int(rng.integers(OBJ_MIN, OBJ_MAX + 1))
        x0 = int(rng.integers(0, IMG_SIZE - size))
        y0 = int(rng.integers(0, IMG_SIZE - size))
        box = (x0, y0, x0 + size, y0 + size)
        if all(box[2] <= t[0] or box[0] >= t[2] or box[3] <= t[1] or box[1] >= t[3] for t in taken):
            return box
    return box


def _draw(draw: ImageDraw.ImageDraw, cls: int, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if cls == 0:
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=color)
    elif cls == 1:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    elif cls == 2:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=color)
    else:
        t = (x1 - x0) // 3
        draw.rectangle((x0 + t, y0, x1 - 1 - t, y1 - 1), fill=color)
        draw.rectangle((x0, y0 + t, x1 - 1, y1 - 1 - t), fill=color)


def _split(
    out: Path, split: str, n_images: int, counts: tuple[int, ...], n_background: int, colors: tuple, rng
) -> None:
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    for d in (img_dir, lbl_dir):
        d.mkdir(parents=True, exist_ok=True)
        for old in sorted(d.glob("*.jpg" if d is img_dir else "*.txt")):
            old.unlink()  # only our own file types: the folder may be a user's
    objects = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    labelled = n_images - n_background
    groups = np.array_split(objects, labelled)
    background = set(rng.choice(n_images, size=n_background, replace=False).tolist())
    g = 0
    for i in range(n_images):
        image = Image.fromarray(_background(rng))
        stem = f"{split}_{i:03d}"
        if i not in background:
            draw = ImageDraw.Draw(image)
            taken: list[tuple[int, int, int, int]] = []
            rows = []
            for cls in groups[g].tolist():
                box = _place(rng, taken)
                taken.append(box)
                jitter = rng.integers(-25, 26, size=3)
                color = tuple(int(c) for c in np.clip(np.array(colors[cls]) + jitter, 0, 255))
                _draw(draw, cls, box, color)
                x0, y0, x1, y1 = box
                cx, cy = (x0 + x1) / 2 / IMG_SIZE, (y0 + y1) / 2 / IMG_SIZE
                w, h = (x1 - x0) / IMG_SIZE, (y1 - y0) / IMG_SIZE
                rows.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
            g += 1
            (lbl_dir / f"{stem}.txt").write_text("".join(rows), encoding="utf-8", newline="\n")
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
        (img_dir / f"{stem}.jpg").write_bytes(buf.getvalue())


def generate(out: Path = DEFAULT_OUT, seed: int | None = None, spec: Spec = DEMO) -> Path:
    """Write a generated set under ``out`` and return its ``data.yaml``.

    Args:
        out: Output folder (created if needed). Existing ``.jpg``/``.txt`` files in its split folders are replaced.
        seed: Seed of the single random generator; None: the spec's (the committed demo set uses 0, the base set 1).
        spec: :data:`DEMO` (the committed demo set) or :data:`BASE` (the base checkpoint's training set).

    Returns:
        Path of the written ``data.yaml``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = spec if seed is None else replace(spec, seed=seed)
    rng = np.random.default_rng(spec.seed)
    _split(out, "train", spec.n_train, spec.train_counts, spec.n_background, spec.colors, rng)
    _split(out, "val", spec.n_val, spec.val_counts, 0, spec.colors, rng)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    # ultralytics writes labels/*.cache next to the labels whenever something trains on this folder; keep them out
    # of git so the committed dataset stays exactly what this script generates.
    (out / ".gitignore").write_text("*.cache\n", encoding="utf-8", newline="\n")
    yaml_path = out / "data.yaml"
    flag = "" if spec == replace(DEMO, seed=spec.seed) else " --base"
    yaml_path.write_text(
        f"# Generated by assets/make_demo_data.py{flag} (seed {spec.seed}); regenerate instead of editing.\n"
        f"# {spec.note}. Instances per class, "
        f"train: {', '.join(f'{n} {c}' for n, c in zip(NAMES, spec.train_counts, strict=True))}; "
        f"val: {', '.join(f'{n} {c}' for n, c in zip(NAMES, spec.val_counts, strict=True))}\n"
        "path: .\ntrain: images/train\nval: images/val\nnames:\n" + names,
        encoding="utf-8",
        newline="\n",
    )
    return yaml_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description="Generate the imbalanced demo detection dataset (or the base set).")
    ap.add_argument("out", nargs="?", type=Path, help=f"output folder (default {DEFAULT_OUT}; required with --base)")
    ap.add_argument("--base", action="store_true", help="the base checkpoint's training set instead of the demo set")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: 0 for the demo set, 1 for --base)")
    args = ap.parse_args(argv)
    if args.base and args.out is None:
        ap.error("--base needs an output folder (the base set is not committed)")
    print(generate(args.out or DEFAULT_OUT, args.seed, BASE if args.base else DEMO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
